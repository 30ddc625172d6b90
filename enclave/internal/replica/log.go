package replica

import (
	"context"
	"io"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// hclogFor returns an hclog.Logger for raft that writes to l: raft's Info
// (routine elections, snapshots) as Debug, Warn and Error as they are,
// Debug and Trace dropped.
func hclogFor(l *slog.Logger) hclog.Logger {
	il := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "raft", Output: io.Discard, Level: hclog.Off})
	if l != nil {
		il.RegisterSink(slogSink{l})
	}
	return il
}

type slogSink struct{ l *slog.Logger }

func (s slogSink) Accept(name string, level hclog.Level, msg string, args ...any) {
	var lvl slog.Level
	switch {
	case level >= hclog.Error:
		lvl = slog.LevelError
	case level == hclog.Warn:
		lvl = slog.LevelWarn
	case level == hclog.Info:
		lvl = slog.LevelDebug
	default:
		return
	}
	if !s.l.Enabled(context.Background(), lvl) {
		return
	}
	s.l.Log(context.Background(), lvl, name+": "+msg, args...)
}

package main

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"time"
)

// A node process keeps little live heap (a few hundred KiB): the defaults
// let the heap grow to twice that, then to the 4 MiB minimum heap goal, and
// keep the binary's start-up pages resident. nodeMemory trims both, unless
// the user set GOGC or GOMEMLIMIT.
const (
	nodeGCPercent   = 50
	nodeMemoryLimit = 6 << 20 // soft: the GC works harder near it, never fails an allocation
	// nodeTrimAfter is when the start-up pages are released: after the
	// node joined and the first certificates arrived.
	nodeTrimAfter = 10 * time.Second
)

// nodeMemory sets the node command's GC settings and, once the node has
// started, releases the pages of the executable that only start-up
// touched (see releaseStartupPages).
func nodeMemory(ctx context.Context, logger *slog.Logger) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(nodeGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(nodeMemoryLimit)
	}
	if os.Getenv("VOUCH_NODE_KEEP_PAGES") != "" {
		return
	}
	go func() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(nodeTrimAfter):
		}
		n, err := releaseStartupPages()
		if err != nil {
			logger.Debug("could not release the start-up pages of the executable", "err", err)
			return
		}
		debug.FreeOSMemory()
		logger.Debug("released the executable's resident pages; the ones in use fault back in from the page cache", "bytes", n)
	}()
}

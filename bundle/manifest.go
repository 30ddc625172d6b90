package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/vouch-dev/vouch/internal/strictjson"
	"regexp"
	"time"
)

// Manifest is the optional vouch.json in a bundle.
//
//	{
//	  "name": "leader",
//	  "allow_plaintext_input": true,
//	  "limits": {"timeout": "5s", "memory_mib": 64, "max_input_bytes": 1048576,
//	             "max_output_bytes": 1048576, "max_log_bytes": 65536}
//	}
//
// Every field is optional. Unknown fields are an error, so that a typo does
// not silently leave a default in place.
type Manifest struct {
	// Name is a human-readable label, 1–64 of [A-Za-z0-9._-].
	Name string `json:"name,omitempty"`
	// AllowPlaintextInput lets callers send inputs without sealing them to
	// the runtime's attested key.
	AllowPlaintextInput bool `json:"allow_plaintext_input,omitempty"`
	// Limits overrides the runtime's defaults for this function.
	Limits Limits `json:"limits,omitzero"`
}

// Limits bound one invocation. A zero field means "the runtime's default".
type Limits struct {
	Timeout        Duration `json:"timeout,omitzero"`
	MemoryMiB      uint32   `json:"memory_mib,omitempty"`
	MaxInputBytes  int64    `json:"max_input_bytes,omitempty"`
	MaxOutputBytes int64    `json:"max_output_bytes,omitempty"`
	MaxLogBytes    int64    `json:"max_log_bytes,omitempty"`
}

// DefaultLimits are the limits a function gets when its manifest is silent.
var DefaultLimits = Limits{
	Timeout:        Duration(5 * time.Second),
	MemoryMiB:      64,
	MaxInputBytes:  1 << 20,
	MaxOutputBytes: 1 << 20,
	MaxLogBytes:    64 << 10,
}

// MaxLimits are the largest values a manifest may ask for.
var MaxLimits = Limits{
	Timeout:        Duration(5 * time.Minute),
	MemoryMiB:      4096,
	MaxInputBytes:  64 << 20,
	MaxOutputBytes: 64 << 20,
	MaxLogBytes:    1 << 20,
}

// Resolve fills zero fields of l from defaults.
func (l Limits) Resolve(defaults Limits) Limits {
	if l.Timeout == 0 {
		l.Timeout = defaults.Timeout
	}
	if l.MemoryMiB == 0 {
		l.MemoryMiB = defaults.MemoryMiB
	}
	if l.MaxInputBytes == 0 {
		l.MaxInputBytes = defaults.MaxInputBytes
	}
	if l.MaxOutputBytes == 0 {
		l.MaxOutputBytes = defaults.MaxOutputBytes
	}
	if l.MaxLogBytes == 0 {
		l.MaxLogBytes = defaults.MaxLogBytes
	}
	return l
}

func (l Limits) check() error {
	switch {
	case l.Timeout < 0 || l.Timeout > MaxLimits.Timeout:
		return fmt.Errorf("%w: limits.timeout %s is outside 0..%s", ErrInvalid, l.Timeout, MaxLimits.Timeout)
	case l.Timeout != 0 && l.Timeout < Duration(time.Millisecond):
		return fmt.Errorf("%w: limits.timeout %s is shorter than 1ms", ErrInvalid, l.Timeout)
	case l.MemoryMiB > MaxLimits.MemoryMiB:
		return fmt.Errorf("%w: limits.memory_mib %d is more than %d", ErrInvalid, l.MemoryMiB, MaxLimits.MemoryMiB)
	case l.MaxInputBytes < 0 || l.MaxInputBytes > MaxLimits.MaxInputBytes:
		return fmt.Errorf("%w: limits.max_input_bytes %d is outside 0..%d", ErrInvalid, l.MaxInputBytes, MaxLimits.MaxInputBytes)
	case l.MaxOutputBytes < 0 || l.MaxOutputBytes > MaxLimits.MaxOutputBytes:
		return fmt.Errorf("%w: limits.max_output_bytes %d is outside 0..%d", ErrInvalid, l.MaxOutputBytes, MaxLimits.MaxOutputBytes)
	case l.MaxLogBytes < 0 || l.MaxLogBytes > MaxLimits.MaxLogBytes:
		return fmt.Errorf("%w: limits.max_log_bytes %d is outside 0..%d", ErrInvalid, l.MaxLogBytes, MaxLimits.MaxLogBytes)
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidName reports whether s is a valid function name.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// ErrManifest is wrapped, with ErrInvalid, by every error about an
// invalid vouch.json.
var ErrManifest = errors.New("invalid " + ManifestFile)

// manifestError is an invalid manifest: it wraps both its cause (which
// wraps ErrInvalid) and ErrManifest.
type manifestError struct{ error }

func (e *manifestError) Unwrap() []error { return []error{e.error, ErrManifest} }

// ParseManifest decodes a vouch.json strictly. Its errors wrap ErrInvalid
// and ErrManifest.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := strictjson.Unmarshal(data, &m); err != nil {
		return nil, &manifestError{fmt.Errorf("%w: %s: %v", ErrInvalid, ManifestFile, err)}
	}
	if m.Name != "" && !ValidName(m.Name) {
		return nil, &manifestError{fmt.Errorf("%w: %s: name %q must be 1-64 characters of A-Z a-z 0-9 . _ -", ErrInvalid, ManifestFile, truncate(m.Name, 80))}
	}
	if err := m.Limits.check(); err != nil {
		return nil, &manifestError{fmt.Errorf("%s: %w", ManifestFile, err)}
	}
	return &m, nil
}

// Duration is a time.Duration that reads and writes JSON as "5s".
type Duration time.Duration

// String formats the duration like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"5s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

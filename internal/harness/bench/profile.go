package bench

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Breakdown splits a CPU profile of `vouch-bench run` (client and
// in-process runtime) into where the time goes. Every sample is charged to
// the first frame, from the root of its stack towards the leaf, that belongs
// to a component; samples in no component are charged to the HTTP and
// runtime rest of the client or the server side, whichever they ran under.
type Breakdown struct {
	// Total is the CPU time of all samples.
	Total float64 `json:"total_seconds"`
	// Runs is the number of runs the profile covers (for per-run costs).
	Runs  int             `json:"runs"`
	Parts []BreakdownPart `json:"parts"`
}

// BreakdownPart is one component's share of a profile.
type BreakdownPart struct {
	Name    string  `json:"name"`
	Group   string  `json:"group"`
	Seconds float64 `json:"seconds"`
}

// Groups of components.
const (
	GroupWasm   = "wasm"
	GroupCrypto = "crypto"
	GroupHTTP   = "HTTP+JSON"
	GroupToken  = "token check"
	GroupGC     = "GC"
)

// components, matched by prefix against function names; the first match
// from the root of a stack wins.
var components = []struct {
	prefix, name, group string
}{
	{"github.com/vouch-dev/vouch/sandbox.(*Function).Invoke", "wasm: sandbox invoke (host side)", GroupWasm},
	{"runtime._ExternalCode", "wasm: compiled guest code", GroupWasm},
	{"github.com/tetratelabs/wazero", "wasm: sandbox invoke (host side)", GroupWasm},
	{"github.com/vouch-dev/vouch/seal.SealInput", "HPKE seal input (client)", GroupCrypto},
	{"github.com/vouch-dev/vouch/seal.(*PrivateKey).OpenInput", "HPKE open input + replay check (runtime)", GroupCrypto},
	{"github.com/vouch-dev/vouch/seal.SealOutput", "HPKE seal output (runtime)", GroupCrypto},
	{"github.com/vouch-dev/vouch/seal.(*PrivateKey).OpenOutput", "HPKE open output (client)", GroupCrypto},
	{"github.com/vouch-dev/vouch/seal.(*Session).Seal", "session seal input, AES-GCM (client)", GroupCrypto},
	{"github.com/vouch-dev/vouch/seal.(*Session).OpenOutput", "session open output (client)", GroupCrypto},
	{"github.com/vouch-dev/vouch/seal.NewSession", "session setup, HPKE (client, once)", GroupCrypto},
	{"github.com/vouch-dev/vouch/seal.(*PrivateKey).OpenSessionInput", "session open input + replay check (runtime)", GroupCrypto},
	{"github.com/vouch-dev/vouch/seal.(*OpenedInput).SealSessionOutput", "session seal output (runtime)", GroupCrypto},
	{"github.com/vouch-dev/vouch/receipt.(*Receipt).Sign", "Ed25519 sign receipt (runtime)", GroupCrypto},
	{"github.com/vouch-dev/vouch/receipt.(*Receipt).Verify", "Ed25519 verify receipt (client)", GroupCrypto},
	{"crypto/sha256.", "SHA-256 of input and output (both)", GroupCrypto},
	{"crypto/internal/fips140/sha256.", "SHA-256 of input and output (both)", GroupCrypto},
	{"github.com/vouch-dev/vouch/enclave.(*tokenCache).verify", "token check (cached) + rate limit (runtime)", GroupToken},
	{"github.com/vouch-dev/vouch/enclave.(*limiter).allow", "token check (cached) + rate limit (runtime)", GroupToken},
	{"github.com/vouch-dev/vouch/enclave.(*Server).authorizeRun", "token check (cached) + rate limit (runtime)", GroupToken},
	{"encoding/json.", "JSON encode/decode (both)", GroupHTTP},
	{"github.com/vouch-dev/vouch/api.", "JSON encode/decode (both)", GroupHTTP},
	{"github.com/vouch-dev/vouch/client.decodeRunResult", "JSON encode/decode (both)", GroupHTTP},
	{"github.com/vouch-dev/vouch/enclave.appendRunResult", "JSON encode/decode (both)", GroupHTTP},
	{"runtime.gcBgMarkWorker", "garbage collector (both)", GroupGC},
	{"runtime.bgsweep", "garbage collector (both)", GroupGC},
	{"runtime.bgscavenge", "garbage collector (both)", GroupGC},
	{"runtime.gcAssist", "garbage collector (both)", GroupGC},
}

const (
	restClient = "HTTP client, loopback syscalls, allocation (client)"
	restServer = "HTTP server, loopback syscalls, allocation (runtime)"
	restOther  = "scheduler and other"
)

// AnalyzeProfile reads a CPU profile written by runtime/pprof and splits it
// into components. runs is how many runs it covers.
func AnalyzeProfile(r io.Reader, runs int) (*Breakdown, error) {
	p, err := parseProfile(r)
	if err != nil {
		return nil, err
	}
	seconds := map[string]float64{}
	groups := map[string]string{restClient: GroupHTTP, restServer: GroupHTTP, restOther: "other"}
	var total float64
	for _, s := range p.samples {
		v := float64(s.value) / 1e9
		total += v
		name, side := "", ""
	frames:
		for i := len(s.frames) - 1; i >= 0; i-- { // root first
			fn := s.frames[i]
			switch {
			case strings.HasPrefix(fn, "vouch/internal/bench.runLevel"), strings.HasPrefix(fn, "github.com/vouch-dev/vouch/client."):
				if side == "" {
					side = restClient
				}
			case strings.HasPrefix(fn, "net/http.(*conn).serve"):
				if side == "" {
					side = restServer
				}
			case strings.HasPrefix(fn, "net/http.(*persistConn)"):
				if side == "" {
					side = restClient
				}
			}
			for _, c := range components {
				if strings.HasPrefix(fn, c.prefix) {
					name = c.name
					groups[name] = c.group
					break frames
				}
			}
		}
		if name == "" {
			name = side
			if name == "" {
				name = restOther
			}
		}
		seconds[name] += v
	}
	b := &Breakdown{Total: total, Runs: runs}
	for name, s := range seconds {
		b.Parts = append(b.Parts, BreakdownPart{Name: name, Group: groups[name], Seconds: s})
	}
	slices.SortFunc(b.Parts, func(x, y BreakdownPart) int {
		if x.Group != y.Group {
			return strings.Compare(x.Group, y.Group)
		}
		return strings.Compare(x.Name, y.Name)
	})
	return b, nil
}

// WriteTable prints the breakdown, per component and per group.
func (b *Breakdown) WriteTable(w io.Writer) error {
	var buf bytes.Buffer
	per := func(s float64) string {
		if b.Runs <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.1fµs", s*1e6/float64(b.Runs))
	}
	fmt.Fprintf(&buf, "CPU profile: %.2fs over %d runs (%s per run)\n\n", b.Total, b.Runs, per(b.Total))
	fmt.Fprintf(&buf, "%-12s %-52s %8s %7s\n", "group", "component", "per run", "share")
	groups := map[string]float64{}
	var order []string
	for _, p := range b.Parts {
		if _, ok := groups[p.Group]; !ok {
			order = append(order, p.Group)
		}
		groups[p.Group] += p.Seconds
		fmt.Fprintf(&buf, "%-12s %-52s %8s %6.1f%%\n", p.Group, p.Name, per(p.Seconds), 100*p.Seconds/b.Total)
	}
	fmt.Fprintf(&buf, "\n%-12s %8s %7s\n", "group", "per run", "share")
	for _, g := range order {
		fmt.Fprintf(&buf, "%-12s %8s %6.1f%%\n", g, per(groups[g]), 100*groups[g]/b.Total)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// A minimal reader of the pprof protobuf format
// (github.com/google/pprof/proto/profile.proto): just the samples'
// stacks and values.

type profSample struct {
	frames []string // leaf first
	value  int64    // the last sample value: CPU nanoseconds
}

type profile struct {
	samples []profSample
}

func parseProfile(r io.Reader) (*profile, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if len(raw) > 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		if raw, err = io.ReadAll(zr); err != nil {
			return nil, err
		}
	}
	type rawSample struct {
		locs   []uint64
		values []int64
	}
	var (
		samples   []rawSample
		locations = map[uint64][]uint64{} // location → function IDs, leaf first
		functions = map[uint64]int64{}    // function → name index
		strs      []string
	)
	err = pbFields(raw, func(field int, wire int, v uint64, b []byte) error {
		switch field {
		case 2: // sample
			var s rawSample
			err := pbFields(b, func(f, w int, v uint64, b []byte) error {
				switch f {
				case 1:
					return pbUints(w, v, b, func(x uint64) { s.locs = append(s.locs, x) })
				case 2:
					return pbUints(w, v, b, func(x uint64) { s.values = append(s.values, int64(x)) })
				}
				return nil
			})
			samples = append(samples, s)
			return err
		case 4: // location
			var id uint64
			var fns []uint64
			err := pbFields(b, func(f, w int, v uint64, b []byte) error {
				switch f {
				case 1:
					id = v
				case 4: // line
					return pbFields(b, func(f, w int, v uint64, _ []byte) error {
						if f == 1 {
							fns = append(fns, v)
						}
						return nil
					})
				}
				return nil
			})
			locations[id] = fns
			return err
		case 5: // function
			var id uint64
			var name int64
			err := pbFields(b, func(f, w int, v uint64, _ []byte) error {
				switch f {
				case 1:
					id = v
				case 2:
					name = int64(v)
				}
				return nil
			})
			functions[id] = name
			return err
		case 6: // string_table
			strs = append(strs, string(b))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bench: reading the CPU profile: %w", err)
	}
	p := &profile{}
	for _, s := range samples {
		if len(s.values) == 0 {
			continue
		}
		ps := profSample{value: s.values[len(s.values)-1]}
		for _, l := range s.locs {
			for _, f := range locations[l] {
				name := "?"
				if i := functions[f]; i >= 0 && int(i) < len(strs) {
					name = strs[i]
				}
				ps.frames = append(ps.frames, name)
			}
		}
		p.samples = append(p.samples, ps)
	}
	return p, nil
}

var errProto = errors.New("malformed protobuf")

// pbFields calls fn for every field of a protobuf message: v for varint
// fields, b for length-delimited ones. Fixed-size fields are skipped.
func pbFields(b []byte, fn func(field, wire int, v uint64, b []byte) error) error {
	for len(b) > 0 {
		key, n := pbVarint(b)
		if n <= 0 {
			return errProto
		}
		b = b[n:]
		field, wire := int(key>>3), int(key&7)
		var v uint64
		var sub []byte
		switch wire {
		case 0:
			if v, n = pbVarint(b); n <= 0 {
				return errProto
			}
			b = b[n:]
		case 1:
			if len(b) < 8 {
				return errProto
			}
			b = b[8:]
			continue
		case 2:
			l, n := pbVarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return errProto
			}
			sub, b = b[n:n+int(l)], b[n+int(l):]
		case 5:
			if len(b) < 4 {
				return errProto
			}
			b = b[4:]
			continue
		default:
			return errProto
		}
		if err := fn(field, wire, v, sub); err != nil {
			return err
		}
	}
	return nil
}

// pbUints reads a repeated varint field, packed or not.
func pbUints(wire int, v uint64, b []byte, add func(uint64)) error {
	if wire == 0 {
		add(v)
		return nil
	}
	for len(b) > 0 {
		x, n := pbVarint(b)
		if n <= 0 {
			return errProto
		}
		add(x)
		b = b[n:]
	}
	return nil
}

func pbVarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, -1
}

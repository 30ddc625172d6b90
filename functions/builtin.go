// Package functions holds the functions built into vouch. Their WebAssembly
// is embedded in the vouch binary, so `vouch deploy --builtin leader` and
// `vouch demo` need no build step; their sources sit in the folders below
// and rebuild byte for byte (see leader/gen.go).
package functions

import (
	_ "embed"
	"fmt"
	"sort"
	"strings"

	"github.com/vouch-dev/vouch/bundle"
)

var (
	//go:embed leader/leader.wasm
	leaderWasm []byte
	//go:embed leader/vouch.json
	leaderManifest []byte
	//go:embed election/election.wasm
	electionWasm []byte
	//go:embed election/vouch.json
	electionManifest []byte
)

// builtins maps a name to its module, manifest and source package.
var builtins = map[string]struct {
	module, manifest []byte
	source           string
}{
	// leader: the original policy over a member list the caller supplies.
	"leader": {leaderWasm, leaderManifest, "./functions/leader"},
	// election: stateful, Byzantine-resistant elections over signed views.
	"election": {electionWasm, electionManifest, "./functions/election"},
}

// Names lists the built-in functions.
func Names() []string {
	var names []string
	for n := range builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Builtin returns a built-in function's bundle.
func Builtin(name string) (*bundle.Bundle, error) {
	b, ok := builtins[name]
	if !ok {
		return nil, fmt.Errorf("no built-in function %q (built-in: %s)", name, strings.Join(Names(), ", "))
	}
	return bundle.New(b.module, b.manifest)
}

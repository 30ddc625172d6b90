package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"

	"github.com/hashicorp/memberlist"
)

// MaxMetaSize is the most bytes a node's metadata may take once encoded:
// memberlist's limit on node meta.
const MaxMetaSize = memberlist.MetaMaxSize

// ErrMetaTooLarge is wrapped by the error New returns for Config.Meta
// larger than MaxMetaSize encoded.
var ErrMetaTooLarge = errors.New("node metadata too large")

// EncodeMeta returns meta's wire form, gossiped in memberlist's node meta:
// a JSON object with sorted keys (nil for none). Keys are 1 to 64
// printable characters without "=" or spaces; values printable; the whole
// at most MaxMetaSize bytes.
func EncodeMeta(meta map[string]string) ([]byte, error) {
	if len(meta) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(meta))
	for k, v := range meta {
		if k == "" || len(k) > 64 || strings.ContainsAny(k, "= ") || !printable(k) {
			return nil, fmt.Errorf("node metadata key %q: want 1 to 64 printable characters without '=' or spaces", k)
		}
		if !printable(v) {
			return nil, fmt.Errorf("node metadata %q: the value has control characters", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b, err := json.Marshal(meta) // encoding/json sorts map keys
	if err != nil {
		return nil, err
	}
	if len(b) > MaxMetaSize {
		return nil, fmt.Errorf("%w: %d bytes encoded (keys %s), memberlist carries at most %d", ErrMetaTooLarge, len(b), strings.Join(keys, ", "), MaxMetaSize)
	}
	return b, nil
}

// DecodeMeta parses a peer's node meta, which is untrusted: anything but
// a JSON object of strings within MaxMetaSize is an error.
func DecodeMeta(b []byte) (map[string]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) > MaxMetaSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrMetaTooLarge, len(b))
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("malformed node metadata: %v", err)
	}
	return m, nil
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

//go:build !wasip1

package strictjson

// The two implementations, for the tests on vouch's own types.
var (
	UnmarshalV2      = unmarshalV2
	UnmarshalCompact = unmarshalCompact
)

//go:build wasip1

package strictjson

// Unmarshal decodes data into v (a non-nil pointer), refusing unknown or
// case-variant member names, duplicate names, null where v's type has no
// null, invalid UTF-8 and trailing data. Guest functions use the compact
// decoder: json/v2 would make their modules 36% larger.
func Unmarshal(data []byte, v any) error { return unmarshalCompact(data, v) }

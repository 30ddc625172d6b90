package main

import (
	"fmt"
	"sort"
	"strings"
)

// metaFlag collects --meta KEY=VALUE, repeatable: the node's gossiped
// metadata (node.Config.Meta).
type metaFlag map[string]string

func (m *metaFlag) String() string {
	var kv []string
	for k, v := range *m {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

func (m *metaFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	if *m == nil {
		*m = metaFlag{}
	}
	if _, dup := (*m)[k]; dup {
		return fmt.Errorf("key %q given twice", k)
	}
	(*m)[k] = v
	return nil
}

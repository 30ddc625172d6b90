package enclave_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/vouch-dev/vouch/api"
	"github.com/vouch-dev/vouch/internal/harness/enclavetest"
)

// docErrors parses the error table of docs/API.md: code → statuses.
func docErrors(t *testing.T) map[string]map[int]bool {
	t.Helper()
	raw, err := os.ReadFile("../docs/API.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "\n## Errors\n")
	if start < 0 {
		t.Fatal("docs/API.md has no ## Errors section")
	}
	section := doc[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\| ([0-9]{3}) \\|")
	out := map[string]map[int]bool{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		status, _ := strconv.Atoi(m[2])
		if out[m[1]] == nil {
			out[m[1]] = map[int]bool{}
		}
		out[m[1]][status] = true
	}
	if len(out) < 10 {
		t.Fatalf("found only %d codes in the error table of docs/API.md; has its format changed?", len(out))
	}
	return out
}

// apiCodes returns the Code* constants of package api: name → value.
func apiCodes(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../api/api.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Code") || i >= len(vs.Values) {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					out[name.Name], _ = strconv.Unquote(lit.Value)
				}
			}
		}
	}
	if out["CodeInternal"] != api.CodeInternal || out["CodeStaleBoot"] != api.CodeStaleBoot {
		t.Fatalf("could not read the Code constants of api/api.go: %v", out)
	}
	return out
}

// httpStatuses maps the names of net/http's status constants to their
// values ("StatusConflict" → 409).
func httpStatuses() map[string]int {
	out := map[string]int{}
	for code := 100; code < 600; code++ {
		if text := http.StatusText(code); text != "" {
			name := "Status" + strings.NewReplacer(" ", "", "-", "", "'", "").Replace(text)
			out[name] = code
		}
	}
	out["StatusRequestEntityTooLarge"] = http.StatusRequestEntityTooLarge // "Request Entity Too Large"
	return out
}

// emitted scans the runtime's source for api.Error values whose status and
// code are both constants, as in api.Error{Status: http.StatusConflict,
// Code: api.CodeChecksumMismatch} or ae.Status, ae.Code = 409,
// api.CodeStaleBoot, and returns code → statuses, with the places found.
func emitted(t *testing.T, codes map[string]string) (map[string]map[int]bool, map[string]string) {
	t.Helper()
	statuses := httpStatuses()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	out := map[string]map[int]bool{}
	where := map[string]string{}
	status := func(e ast.Expr) (int, bool) {
		switch v := e.(type) {
		case *ast.BasicLit:
			n, err := strconv.Atoi(v.Value)
			return n, err == nil
		case *ast.SelectorExpr:
			if x, ok := v.X.(*ast.Ident); ok && x.Name == "http" {
				n, ok := statuses[v.Sel.Name]
				if !ok {
					t.Errorf("unknown status constant http.%s", v.Sel.Name)
				}
				return n, ok
			}
		}
		return 0, false
	}
	code := func(e ast.Expr) (string, bool) {
		if v, ok := e.(*ast.SelectorExpr); ok {
			if x, ok := v.X.(*ast.Ident); ok && x.Name == "api" && strings.HasPrefix(v.Sel.Name, "Code") {
				c, ok := codes[v.Sel.Name]
				if !ok {
					t.Errorf("api.%s is not a constant of api/api.go", v.Sel.Name)
				}
				return c, ok
			}
		}
		return "", false
	}
	add := func(c string, s int, pos token.Pos) {
		if out[c] == nil {
			out[c] = map[int]bool{}
		}
		out[c][s] = true
		where[c+" "+strconv.Itoa(s)] = fset.Position(pos).String()
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch v := n.(type) {
			case *ast.CompositeLit:
				var st, cd ast.Expr
				for _, el := range v.Elts {
					if kv, ok := el.(*ast.KeyValueExpr); ok {
						if k, ok := kv.Key.(*ast.Ident); ok {
							switch k.Name {
							case "Status":
								st = kv.Value
							case "Code":
								cd = kv.Value
							}
						}
					}
				}
				if st != nil && cd != nil {
					s, ok1 := status(st)
					c, ok2 := code(cd)
					if ok1 && ok2 {
						add(c, s, v.Pos())
					}
				}
			case *ast.AssignStmt:
				var st, cd ast.Expr
				for i, lhs := range v.Lhs {
					if sel, ok := lhs.(*ast.SelectorExpr); ok && i < len(v.Rhs) {
						switch sel.Sel.Name {
						case "Status":
							st = v.Rhs[i]
						case "Code":
							cd = v.Rhs[i]
						}
					}
				}
				if st != nil && cd != nil {
					s, ok1 := status(st)
					c, ok2 := code(cd)
					if ok1 && ok2 {
						add(c, s, v.Pos())
					}
				}
			}
			return true
		})
	}
	return out, where
}

// TestErrorCodesDocumented keeps docs/API.md's error table and the code in
// step: every error code of package api is in the table, every code in the
// table exists, and every (status, code) pair the runtime's source sends,
// and the live server answers, is a row of the table.
func TestErrorCodesDocumented(t *testing.T) {
	doc := docErrors(t)
	codes := apiCodes(t)
	known := map[string]bool{}
	for name, c := range codes {
		known[c] = true
		if doc[c] == nil {
			t.Errorf("api.%s (%q) is not in the error table of docs/API.md", name, c)
		}
	}
	for c := range doc {
		if !known[c] {
			t.Errorf("docs/API.md documents error code %q, which package api does not define", c)
		}
	}
	sent, where := emitted(t, codes)
	if len(sent) < 10 {
		t.Fatalf("found only %d codes in the runtime's source; has the way it builds errors changed?", len(sent))
	}
	var pairs []string
	for c, ss := range sent {
		for s := range ss {
			if !doc[c][s] {
				pairs = append(pairs, strconv.Itoa(s)+" "+c+" (at "+where[c+" "+strconv.Itoa(s)]+")")
			}
		}
	}
	sort.Strings(pairs)
	for _, p := range pairs {
		t.Errorf("the runtime sends %s, which docs/API.md's error table does not list", p)
	}

	// And the live server, for the routing errors and a sealed input of
	// another boot.
	env := enclavetest.Start(t)
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, "/v2/functions", http.StatusNotFound, api.CodeNoRoute},
		{http.MethodPut, "/v1/functions", http.StatusMethodNotAllowed, api.CodeMethodNotAllowed},
		{http.MethodGet, "/v1/functions/nosuchfunction", http.StatusNotFound, api.CodeNotFound},
		{http.MethodGet, "/v1/identity?nonce=short", http.StatusBadRequest, api.CodeBadRequest},
	} {
		req, _ := http.NewRequest(tc.method, env.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		e := wantError(t, resp, tc.status, tc.code)
		resp.Body.Close()
		if !doc[e.Code][resp.StatusCode] {
			t.Errorf("%s %s answers %d %s, which the table does not list", tc.method, tc.path, resp.StatusCode, e.Code)
		}
	}
}

package enclave

import (
	"net/http"
	"net/url"
	"testing"
)

// FuzzIsRunRequest checks that every request isRunRequest lets skip the
// route lookup is one the mux sends to the run route as it is, without a
// redirect.
func FuzzIsRunRequest(f *testing.F) {
	for _, p := range []string{"/v1/functions/leader/run", "/v1/functions/a.b_c-1/run", "/v1/functions/./run",
		"/v1/functions/../run", "/v1/functions//run", "/v1/functions/a/b/run", "/v1/functions/a%2Fb/run", "/v1/functions/x/run/"} {
		f.Add("POST", p)
	}
	f.Add("GET", "/v1/functions/leader/run")
	mux := http.NewServeMux()
	const pattern = "POST /v1/functions/{id}/run"
	mux.HandleFunc(pattern, func(http.ResponseWriter, *http.Request) {})
	f.Fuzz(func(t *testing.T, method, rawPath string) {
		u, err := url.Parse("http://127.0.0.1" + rawPath)
		if err != nil || !validMethod(method) {
			return
		}
		r := &http.Request{Method: method, URL: u, Host: "127.0.0.1", Header: http.Header{}}
		if !isRunRequest(r) {
			return
		}
		if _, got := mux.Handler(r); got != pattern {
			t.Fatalf("%s %q: isRunRequest, but the mux picks %q", method, rawPath, got)
		}
	})
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

func TestIsRunRequest(t *testing.T) {
	for path, want := range map[string]bool{
		"/v1/functions/leader/run": true, "/v1/functions/./run": false, "/v1/functions/a%2Fb/run": false,
		"/v1/functions/a/b/run": false, "/v1/functions//run": false, "/v1/functions/leader/runs": false,
	} {
		u, _ := url.Parse("http://127.0.0.1" + path)
		if got := isRunRequest(&http.Request{Method: "POST", URL: u}); got != want {
			t.Errorf("isRunRequest(POST %s) = %v, want %v", path, got, want)
		}
	}
}

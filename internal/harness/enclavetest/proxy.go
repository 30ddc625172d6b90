package enclavetest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Proxy is an HTTP proxy on a loopback port between a client and a runtime:
// it forwards every request, counts them by route, and lets a test rewrite
// the runtime's answers on the way back, as a man in the middle would.
type Proxy struct {
	// URL is the proxy's base URL: give it to the client instead of the
	// runtime's.
	URL string

	target string
	hc     *http.Client
	srv    *httptest.Server

	mu     sync.Mutex
	tamper func(r *http.Request, status int, body []byte) []byte
	counts map[string]int
}

// NewProxy starts a proxy in front of the runtime at target (a base URL).
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p := &Proxy{target: target, hc: &http.Client{}, counts: map[string]int{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	p.URL = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

// Tamper sets the function that rewrites each answer's body (nil: forward
// it unchanged). It sees the request, the runtime's status and body.
func (p *Proxy) Tamper(f func(r *http.Request, status int, body []byte) []byte) {
	p.mu.Lock()
	p.tamper = f
	p.mu.Unlock()
}

// Count returns how many requests the proxy forwarded for route, a method
// and a path pattern of the API such as "POST /v1/functions/{id}/run".
func (p *Proxy) Count(route string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[route]
}

// Route names a request by the API route it is for.
func Route(r *http.Request) string {
	mux := http.NewServeMux()
	for _, pattern := range []string{
		"GET /v1/identity", "POST /v1/functions", "GET /v1/functions", "GET /v1/functions/{id}",
		"DELETE /v1/functions/{id}", "POST /v1/functions/{id}/run", "POST /v1/functions/{id}/tokens",
		"POST /v1/tokens/revoke", "GET /healthz", "GET /metrics",
	} {
		mux.HandleFunc(pattern, func(http.ResponseWriter, *http.Request) {})
	}
	_, pattern := mux.Handler(r)
	return pattern
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	route := Route(r)
	p.mu.Lock()
	p.counts[route]++
	tamper := p.tamper
	p.mu.Unlock()
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := p.hc.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if tamper != nil {
		out = tamper(r, resp.StatusCode, out)
	}
	for k, vs := range resp.Header {
		if k == "Content-Length" {
			continue
		}
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(out)
}

package node

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
)

// web holds the dashboard: hand-written HTML, CSS and JavaScript, no
// build step and nothing fetched from elsewhere.
//
//go:embed web
var web embed.FS

// dashboardRoutes adds GET /cluster (the ClusterView as JSON) and the
// dashboard: GET / serves the page, GET /web/ its script and style. The
// page polls /cluster and verifies the certificate's signature in the
// browser with WebCrypto.
func (n *Node) dashboardRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /cluster", func(w http.ResponseWriter, r *http.Request) {
		writeClusterView(w, n.ClusterView(r.Context()))
	})
	dashboardStatic(mux)
}

// DashboardHandler serves the dashboard's page and files (GET / and
// GET /web/) without GET /cluster: a test or a proxy that serves its own
// /cluster next to it.
func DashboardHandler() http.Handler {
	mux := http.NewServeMux()
	dashboardStatic(mux)
	return mux
}

func dashboardStatic(mux *http.ServeMux) {
	static, _ := fs.Sub(web, "web")
	files := http.FileServerFS(static)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w)
		http.ServeFileFS(w, r, static, "index.html")
	})
	mux.Handle("GET /web/", http.StripPrefix("/web/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setPageHeaders(w)
		files.ServeHTTP(w, r)
	})))
}

// setPageHeaders forbids everything the page does not need: it loads only
// its own files and talks only to its own origin.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
}

func writeClusterView(w http.ResponseWriter, v *ClusterView) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

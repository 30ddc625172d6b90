package enclave

import (
	"mime"
	"net/http"
	"testing"

	"github.com/vouch-dev/vouch/api"
)

// FuzzRunBodyKind checks that any Content-Type header gets a kind or a 415,
// and that one whose media type is sealed or session is never read as
// plaintext.
func FuzzRunBodyKind(f *testing.F) {
	for _, s := range []string{"", api.ContentTypeSealed, "APPLICATION/VND.VOUCH.SEALED", api.ContentTypeSession + "; a=b", "text/plain; charset=utf-8", "application/", "a/b; c", "application/vnd.vouch.sealedx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ct string) {
		kind, ae := runBodyKind(http.Header{"Content-Type": {ct}})
		if ae != nil {
			if ae.Status != http.StatusUnsupportedMediaType || ae.Code != api.CodeUnsupportedMedia || ae.Message == "" {
				t.Fatalf("%q: refused with %d %s %q", ct, ae.Status, ae.Code, ae.Message)
			}
			return
		}
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			t.Fatalf("%q: malformed (%v) but accepted as kind %d", ct, err, kind)
		}
		want := map[string]bodyKind{api.ContentTypeSealed: sealedBody, api.ContentTypeSession: sessionBody}[mt]
		if kind != want {
			t.Fatalf("%q (media type %q): kind %d, want %d", ct, mt, kind, want)
		}
	})
}

// Package dashboard is continuumd's live dashboard: a page the loopback
// WebSocket listener serves at /dashboard/ (ipc/websocket Options.Pages),
// built from TypeScript (web/) with the generated TypeScript client and
// esbuild, and embedded here as the checked-in bundle, so `go build` needs
// no npm. scripts/build-dashboard.sh rebuilds the bundle and bundle.sum;
// `go run ./gen -check` fails when either is stale.
//
// What it promises:
//
//   - Static files only, no secrets: the page holds no token. It reads the
//     token from its URL fragment (#token=…, which a browser never sends to
//     a server), keeps it in the tab's sessionStorage and uses it for the
//     WebSocket; the listener checks it there (docs/SERVICE.md "Dashboard").
//   - GET and HEAD only; any other method is 405. Unknown paths are 404;
//     there is no directory listing.
//   - Every response carries a Content-Security-Policy that lets the page
//     load only its own script and style and connect only to the listener
//     it came from, frame-ancestors 'none' (no clickjacking), no referrer,
//     and nosniff.
package dashboard

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Path is where the listener serves the dashboard.
const Path = "/dashboard/"

//go:embed assets
var assets embed.FS

type file struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the dashboard: Path and its files, a redirect from "/"
// and from Path without its slash (a fragment survives a redirect, so the
// token in it does too), and 404 for anything else.
func Handler() http.Handler {
	files := map[string]file{}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		files[strings.TrimPrefix(p, "assets/")] = file{
			body:        b,
			contentType: contentType(p),
			etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
		}
		return nil
	})
	if err != nil { // the files are compiled in: this cannot fail at run time
		panic("dashboard: embedded assets: " + err.Error())
	}
	return &handler{files: files}
}

type handler struct{ files map[string]file }

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp(r.Host))
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "continuumd: the dashboard is read with GET", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case "/", strings.TrimSuffix(Path, "/"):
		http.Redirect(w, r, Path, http.StatusFound)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, Path)
	if !ok {
		http.Error(w, "continuumd: not found; the dashboard is at "+Path, http.StatusNotFound)
		return
	}
	if name == "" {
		name = "index.html"
	}
	f, ok := h.files[name]
	if !ok || name != path.Clean(name) {
		http.Error(w, "continuumd: no such dashboard file", http.StatusNotFound)
		return
	}
	hd.Set("Content-Type", f.contentType)
	// The bundle changes with the daemon: revalidate every time (the ETag
	// makes that a 304).
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", f.etag)
	http.ServeContent(w, r, name, time.Time{}, strings.NewReader(string(f.body)))
}

// csp lets the page run its own script and style only, and connect only to
// the listener it was served by (host is the request's Host, which the
// listener has checked names a loopback address).
func csp(host string) string {
	if !hostChars(host) {
		host = "127.0.0.1" // never echo a strange Host into a header
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self' ws://" + host + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

func hostChars(h string) bool {
	for _, r := range h {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == ':', r == '-', r == '[', r == ']':
		default:
			return false
		}
	}
	return h != ""
}

func contentType(p string) string {
	switch path.Ext(p) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

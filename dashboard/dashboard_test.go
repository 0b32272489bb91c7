package dashboard

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "http://127.0.0.1:7777"+path, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestServesThePageAndItsFiles(t *testing.T) {
	h := Handler()
	w := get(t, h, "GET", Path, nil)
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("index: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	page := w.Body.String()
	// Every file the page names is served, with its type.
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 2 {
		t.Fatalf("the page names %d files", len(refs))
	}
	for _, m := range refs {
		f := get(t, h, "GET", Path+m[1], nil)
		if f.Code != 200 || f.Body.Len() == 0 {
			t.Errorf("%s: %d, %d bytes", m[1], f.Code, f.Body.Len())
		}
	}
	js := get(t, h, "GET", Path+"dashboard.js", nil)
	if ct := js.Header().Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
		t.Errorf("bundle content type %q", ct)
	}
	if strings.Contains(js.Body.String(), `from "node:`) {
		t.Error("the bundle imports a Node module")
	}
	// Revalidation: the ETag turns a second load into a 304.
	if again := get(t, h, "GET", Path+"dashboard.js", map[string]string{"If-None-Match": js.Header().Get("ETag")}); again.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", again.Code)
	}
	if head := get(t, h, "HEAD", Path, nil); head.Code != 200 {
		t.Errorf("HEAD: %d", head.Code)
	}
}

func TestSecurityHeaders(t *testing.T) {
	w := get(t, Handler(), "GET", Path, nil)
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self' ws://127.0.0.1:7777", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	for k, v := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	// A Host with odd characters is never echoed into the policy.
	r := httptest.NewRequest("GET", Path, nil)
	r.Host = "127.0.0.1:1; script-src *"
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, r)
	if strings.Contains(rec.Header().Get("Content-Security-Policy"), "script-src *") {
		t.Errorf("CSP echoes the Host: %q", rec.Header().Get("Content-Security-Policy"))
	}
}

func TestRedirectsAndRefusals(t *testing.T) {
	h := Handler()
	for _, c := range []struct {
		method, path string
		code         int
		location     string
	}{
		{"GET", "/", http.StatusFound, Path},
		{"GET", "/dashboard", http.StatusFound, Path},
		{"GET", "/other", http.StatusNotFound, ""},
		{"GET", Path + "nope.js", http.StatusNotFound, ""},
		{"GET", Path + "../dashboard/index.html", http.StatusNotFound, ""},
		{"GET", Path + "./index.html", http.StatusNotFound, ""},
		{"GET", Path + "assets/index.html", http.StatusNotFound, ""},
		{"POST", Path, http.StatusMethodNotAllowed, ""},
		{"PUT", Path + "dashboard.js", http.StatusMethodNotAllowed, ""},
	} {
		w := get(t, h, c.method, c.path, nil)
		if w.Code != c.code {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, w.Code, c.code)
		}
		if c.location != "" && w.Header().Get("Location") != c.location {
			t.Errorf("%s %s: Location %q", c.method, c.path, w.Header().Get("Location"))
		}
	}
}

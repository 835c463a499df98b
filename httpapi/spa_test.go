package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/frontend"
	"github.com/atumdesk/atumdesk/httpapi"
	"github.com/atumdesk/atumdesk/internal/metrics"
)

// spaServer serves web through the real router; no database is needed for
// the routes these tests touch.
func spaServer(t *testing.T, web fs.FS) *httptest.Server {
	t.Helper()
	api := httpapi.New(httpapi.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: metrics.New(), Web: web})
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, method, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	// No transparent decompression: the test looks at what was sent.
	res, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, b
}

var testWeb = fstest.MapFS{
	"index.html":               {Data: []byte(`<html><head><meta name="csp-nonce" content="__CSP_NONCE__"><script type="module" src="/assets/app-abc123.js"></script></head></html>`)},
	"assets/app-abc123.js":     {Data: []byte(strings.Repeat("console.log('atum');\n", 200))},
	"assets/font-abc123.woff2": {Data: []byte("wOF2")},
	"favicon.svg":              {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)},
	"manifest.webmanifest":     {Data: []byte(`{"name":"ATUM DESK"}`)},
}

func TestSPAFallbackServesIndexWithNonceAndCSP(t *testing.T) {
	srv := spaServer(t, testWeb)
	var nonces []string
	for _, path := range []string{"/", "/desk", "/desk/tickets/0190c0de-0000-7000-8000-000000000000", "/portal/new?x=1"} {
		res, body := get(t, srv, "GET", path, nil)
		require.Equal(t, 200, res.StatusCode, path)
		require.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"))
		require.Equal(t, "no-cache", res.Header.Get("Cache-Control"))
		csp := res.Header.Get("Content-Security-Policy")
		require.Contains(t, csp, "default-src 'none'")
		require.Contains(t, csp, "script-src 'self';")
		require.Contains(t, csp, "frame-ancestors 'none'")
		require.NotContains(t, csp, "http")
		m := regexp.MustCompile(`'nonce-([A-Za-z0-9+/=]+)'`).FindStringSubmatch(csp)
		require.NotNil(t, m, csp)
		require.Contains(t, string(body), `content="`+m[1]+`"`)
		require.NotContains(t, string(body), "__CSP_NONCE__")
		nonces = append(nonces, m[1])
		require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
	}
	require.NotEqual(t, nonces[0], nonces[1], "a fresh nonce per response")

	res, body := get(t, srv, "HEAD", "/portal", nil)
	require.Equal(t, 200, res.StatusCode)
	require.Empty(t, body)
}

func TestSPAAssetsAreLongCachedAndCompressed(t *testing.T) {
	srv := spaServer(t, testWeb)
	res, plain := get(t, srv, "GET", "/assets/app-abc123.js", nil)
	require.Equal(t, 200, res.StatusCode)
	require.Equal(t, "public, max-age=31536000, immutable", res.Header.Get("Cache-Control"))
	require.Equal(t, "text/javascript; charset=utf-8", res.Header.Get("Content-Type"))
	require.Empty(t, res.Header.Get("Content-Encoding"))
	etag := res.Header.Get("ETag")
	require.NotEmpty(t, etag)

	res, gz := get(t, srv, "GET", "/assets/app-abc123.js", map[string]string{"Accept-Encoding": "br, gzip"})
	require.Equal(t, "gzip", res.Header.Get("Content-Encoding"))
	require.Contains(t, res.Header.Get("Vary"), "Accept-Encoding")
	require.Less(t, len(gz), len(plain))
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	require.NoError(t, err)
	unzipped, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.Equal(t, plain, unzipped)

	res, _ = get(t, srv, "GET", "/assets/app-abc123.js", map[string]string{"If-None-Match": etag})
	require.Equal(t, 304, res.StatusCode)

	res, _ = get(t, srv, "GET", "/assets/font-abc123.woff2", nil)
	require.Equal(t, "font/woff2", res.Header.Get("Content-Type"))
	res, _ = get(t, srv, "GET", "/manifest.webmanifest", nil)
	require.Equal(t, "application/manifest+json", res.Header.Get("Content-Type"))
	require.Equal(t, "public, max-age=3600", res.Header.Get("Cache-Control"))

	// A stale page asking for an old build gets a 404, not index.html.
	res, _ = get(t, srv, "GET", "/assets/app-old999.js", nil)
	require.Equal(t, 404, res.StatusCode)
	res, _ = get(t, srv, "GET", "/robots.txt", nil)
	require.Equal(t, 404, res.StatusCode)
}

func TestSPALeavesAPIAndOperationalRoutesAlone(t *testing.T) {
	srv := spaServer(t, testWeb)
	for _, path := range []string{"/api/v1/nope", "/api", "/api/v2/tickets"} {
		res, body := get(t, srv, "GET", path, nil)
		require.Equal(t, 404, res.StatusCode, path)
		require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"), path)
		require.Contains(t, string(body), "not-found")
	}
	res, body := get(t, srv, "POST", "/desk", nil)
	require.Equal(t, 404, res.StatusCode, "only GET and HEAD reach the app")
	require.Contains(t, string(body), "not-found")
	res, _ = get(t, srv, "GET", "/healthz", nil)
	require.Equal(t, 200, res.StatusCode)
	res, _ = get(t, srv, "GET", "/metrics", nil)
	require.Equal(t, 200, res.StatusCode)
	require.Contains(t, res.Header.Get("Content-Type"), "text/plain")
}

func TestSPAWithoutABuild(t *testing.T) {
	srv := spaServer(t, nil)
	res, body := get(t, srv, "GET", "/portal", nil)
	require.Equal(t, 404, res.StatusCode)
	require.Contains(t, string(body), "not built")
}

// The committed build is what the binary embeds: it must have an index
// with the nonce placeholder and only same-origin, hashed scripts.
func TestEmbeddedBuild(t *testing.T) {
	index, err := fs.ReadFile(frontend.Dist(), "index.html")
	require.NoError(t, err, "frontend/dist is missing: cd frontend && npm ci && npm run build")
	require.Contains(t, string(index), "__CSP_NONCE__")
	scripts := regexp.MustCompile(`<script[^>]*>`).FindAllString(string(index), -1)
	require.NotEmpty(t, scripts)
	for _, s := range scripts {
		require.Regexp(t, `src="/assets/[^"]+-[A-Za-z0-9_-]{8}\.js"`, s, "no inline or third-party script")
	}
	srv := spaServer(t, frontend.Dist())
	res, _ := get(t, srv, "GET", "/desk/tickets", nil)
	require.Equal(t, 200, res.StatusCode)
	js := regexp.MustCompile(`src="(/assets/[^"]+\.js)"`).FindStringSubmatch(string(index))[1]
	res, _ = get(t, srv, "GET", js, nil)
	require.Equal(t, 200, res.StatusCode)
}

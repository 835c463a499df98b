package httpapi

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// The web app (frontend/, embedded by the frontend package) is served for
// every GET or HEAD that no route matches and that is not under /api/:
// hashed build output under /assets/ is cached for a year, index.html is
// revalidated on every load and answers every client-side route (the SPA
// fallback), with a Content-Security-Policy that allows scripts, styles,
// fonts and connections from this origin only. Mantine writes <style>
// elements at run time; they carry the per-response nonce that the server
// writes into index.html's csp-nonce meta tag, so style elements need no
// 'unsafe-inline' (style attributes do).

// nonceMarker is the placeholder in index.html (frontend/index.html).
const nonceMarker = "__CSP_NONCE__"

// spaCSP is the policy of the app's pages; %s is the nonce.
const spaCSP = "default-src 'none'; script-src 'self'; style-src 'self'; style-src-elem 'self' 'nonce-%s'; " +
	"style-src-attr 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; " +
	"manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"

// spaFile is one file of the build, read once at start.
type spaFile struct {
	body  []byte
	gz    []byte // gzip of body when it is worth it, else nil
	ctype string
	etag  string
}

// spa serves the built app from memory.
type spa struct {
	files map[string]*spaFile // by path without the leading slash
	index []byte              // index.html with the nonce marker
}

// newSPA reads the build; a nil fsys or one without index.html (a checkout
// whose frontend was never built) serves a plain notice instead of the app.
func newSPA(fsys fs.FS) (*spa, error) {
	s := &spa{files: map[string]*spaFile{}}
	if fsys == nil {
		return s, nil
	}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		if name == "index.html" {
			s.index = body
			return nil
		}
		sum := sha256.Sum256(body)
		f := &spaFile{body: body, ctype: contentType(name), etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		if compressible(f.ctype) && len(body) > 512 {
			f.gz = gzipBytes(body)
			if len(f.gz) >= len(body) {
				f.gz = nil
			}
		}
		s.files[name] = f
		return nil
	})
	return s, err
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".webmanifest":
		return "application/manifest+json"
	case ".woff2":
		return "font/woff2"
	case ".woff":
		return "font/woff"
	case ".js":
		return "text/javascript; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

func compressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") || strings.Contains(ctype, "json") || strings.HasPrefix(ctype, "image/svg")
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// isSPAPath reports whether a request that matched no route belongs to the
// app rather than the API or the operational endpoints.
func isSPAPath(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	p := r.URL.Path
	return p != "/api" && !strings.HasPrefix(p, "/api/")
}

func (s *spa) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if f, ok := s.files[name]; ok {
		s.serveFile(w, r, name, f)
		return
	}
	// A missing hashed file is a stale page asking for an old build: a 404,
	// never index.html served as JavaScript.
	if strings.HasPrefix(name, "assets/") || path.Ext(name) != "" && name != "index.html" {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	s.serveIndex(w)
}

func (s *spa) serveFile(w http.ResponseWriter, r *http.Request, name string, f *spaFile) {
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	if strings.HasPrefix(name, "assets/") {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=3600")
	}
	body, etag := f.body, f.etag
	if f.gz != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			body, etag = f.gz, strings.TrimSuffix(f.etag, `"`)+`-gz"`
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		coding, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.TrimSpace(strings.ReplaceAll(q, " ", "")) != "q=0" {
			return true
		}
	}
	return false
}

func (s *spa) serveIndex(w http.ResponseWriter) {
	h := w.Header()
	if s.index == nil {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("The web app is not built into this binary (cd frontend && npm ci && npm run build).\n"))
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	nonce := base64.StdEncoding.EncodeToString(b[:])
	body := bytes.ReplaceAll(s.index, []byte(nonceMarker), []byte(nonce))
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", strings.Replace(spaCSP, "%s", nonce, 1))
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

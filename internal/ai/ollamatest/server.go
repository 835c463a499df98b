package ollamatest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
)

// ModelName is the tiny model's name on the server.
const ModelName = "atumdesk-tiny:latest"

// Version is the Ollama release deploy/local/ollama.sh builds.
const Version = "v0.6.8"

// Server is a running Ollama server.
type Server struct {
	URL string
	cmd *exec.Cmd
	log string

	stopOnce sync.Once
}

// Binary returns the path of the ollama binary: $ATUMDESK_TEST_OLLAMA_BIN,
// else where deploy/local/ollama.sh caches it. It fails the test with the
// command to run when there is none: nothing is skipped.
func Binary(t testing.TB) string {
	t.Helper()
	var candidates []string
	if b := os.Getenv("ATUMDESK_TEST_OLLAMA_BIN"); b != "" {
		candidates = append(candidates, b)
	}
	if c := os.Getenv("ATUMDESK_OLLAMA_CACHE"); c != "" {
		candidates = append(candidates, filepath.Join(c, Version, "bin", "ollama"))
	}
	candidates = append(candidates, filepath.Join("/var/cache/atumdesk/ollama", Version, "bin", "ollama"))
	if home, err := os.UserHomeDir(); err == nil {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			cache = filepath.Join(home, ".cache")
		}
		candidates = append(candidates, filepath.Join(cache, "atumdesk", "ollama", Version, "bin", "ollama"))
	}
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return c
		}
	}
	t.Fatalf("ollamatest: no Ollama %s binary (looked in %v): run `bash deploy/local/ollama.sh build` (or `make test`, which does)", Version, candidates)
	return ""
}

// Shared returns the server `deploy/local/ollama.sh up` started
// ($ATUMDESK_TEST_OLLAMA_URL) when it answers, else starts a private one
// for the test. The tiny model is created on it.
func Shared(t testing.TB) *Server {
	t.Helper()
	if u := os.Getenv("ATUMDESK_TEST_OLLAMA_URL"); u != "" {
		s := &Server{URL: u}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := s.Client(t).Version(ctx); err == nil {
			CreateTinyModel(t, s, 1)
			return s
		} else {
			t.Logf("ollamatest: %s does not answer (%v); starting a private server", u, err)
		}
	}
	return Start(t)
}

// Start starts a private server (own port, own model directory) that the
// test may stop; it is stopped when the test ends. The tiny model is
// created on it.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	port := freePort(t)
	dir := t.TempDir()
	s := &Server{URL: "http://127.0.0.1:" + strconv.Itoa(port), log: filepath.Join(dir, "ollama.log")}
	logf, err := os.Create(s.log)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, "serve")
	s.cmd.Env = append(os.Environ(),
		"OLLAMA_HOST=127.0.0.1:"+strconv.Itoa(port),
		"OLLAMA_MODELS="+filepath.Join(dir, "models"),
		"OLLAMA_NUM_PARALLEL=1",
		"OLLAMA_KEEP_ALIVE=10m",
	)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the runner child goes with it
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("ollamatest: start %s serve: %v", bin, err)
	}
	t.Cleanup(func() { s.Stop(); _ = logf.Close() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := s.Client(t).Version(ctx)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(s.log)
			t.Fatalf("ollamatest: server on %s not ready after 60 s: %v\n%s", s.URL, err, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	CreateTinyModel(t, s, 1)
	return s
}

// Stop ends a private server (its process group: the model runner too).
// Stopping a shared server is a no-op.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.stopOnce.Do(func() {
		pgid := s.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-done
		}
	})
}

// Client is an api client of the server.
func (s *Server) Client(t testing.TB) *api.Client {
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatalf("ollamatest: %v", err)
	}
	return api.NewClient(u, http.DefaultClient)
}

// CreateTinyModel writes the tiny GGUF for seed and creates ModelName from
// it through the API (blob upload, then create with a chat template that
// renders every message, num_ctx 512 and num_thread 1: with more threads
// ggml's spinning barrier stalls whenever the machine is busy).
func CreateTinyModel(t testing.TB, s *Server, seed uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := s.Client(t)
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if err := WriteTinyGGUF(path, seed); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := c.CreateBlob(ctx, digest, f); err != nil {
		t.Fatalf("ollamatest: upload blob: %v", err)
	}
	stream := false
	err = c.Create(ctx, &api.CreateRequest{
		Model:      ModelName,
		Files:      map[string]string{"tiny.gguf": digest},
		Stream:     &stream,
		Template:   "{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}\n{{ end }}<|assistant|>\n",
		Parameters: map[string]any{"num_ctx": 512, "num_thread": 1},
	}, func(api.ProgressResponse) error { return nil })
	if err != nil {
		t.Fatalf("ollamatest: create model %s: %v", ModelName, err)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Log returns the private server's log (for failure messages).
func (s *Server) Log() string {
	if s.log == "" {
		return ""
	}
	b, err := os.ReadFile(s.log)
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	return string(b)
}

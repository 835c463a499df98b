package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Postgres is a private PostgreSQL cluster for tests that stop and start
// the server (the shared one must stay up for other packages).
type Postgres struct {
	t    testing.TB
	dir  string
	port int
	URL  string
}

const pgBin = "/usr/lib/postgresql/15/bin"

// PrivatePostgres initialises and starts a throwaway cluster on a free
// port, with role and database atumdesk; it is removed when the test ends.
// initdb refuses to run as root, so the cluster belongs to the postgres
// user.
func PrivatePostgres(t testing.TB) *Postgres {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "atumdesk-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	p := &Postgres{t: t, dir: dir, port: port,
		URL: fmt.Sprintf("postgres://atumdesk:atumdesk@127.0.0.1:%d/atumdesk?sslmode=disable", port)}
	asPostgres := func(args ...string) {
		t.Helper()
		cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("testenv: %v: %v\n%s", args, err, out)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput(); err != nil {
		t.Fatalf("testenv: chown: %v %s", err, out)
	}
	asPostgres(filepath.Join(pgBin, "initdb"), "-D", filepath.Join(dir, "data"), "-A", "trust", "-U", "postgres", "--no-sync")
	p.Start()
	t.Cleanup(p.Stop)
	asPostgres(filepath.Join(pgBin, "psql"), "-h", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "postgres", "-c",
		"CREATE ROLE atumdesk LOGIN PASSWORD 'atumdesk' CREATEDB", "-c", "CREATE DATABASE atumdesk OWNER atumdesk")
	return p
}

// Start starts (or restarts) the server and waits until it accepts.
func (p *Postgres) Start() {
	p.t.Helper()
	cmd := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(pgBin, "pg_ctl"), "-D", filepath.Join(p.dir, "data"),
		"-l", filepath.Join(p.dir, "log"), "-w", "-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", p.port, p.dir), "start")
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "log"))
		p.t.Fatalf("testenv: pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

// Stop stops the server immediately (as a crash would).
func (p *Postgres) Stop() {
	cmd := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(pgBin, "pg_ctl"), "-D", filepath.Join(p.dir, "data"), "-m", "immediate", "-w", "stop")
	_ = cmd.Run()
}

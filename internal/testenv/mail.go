package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// MailServers are the local Postfix (SMTP, delivering into Maildirs) and
// Dovecot (IMAP with IDLE) of deploy/local/mail.sh, as its `env` prints
// them; every named test user has Password.
type MailServers struct {
	IMAP, IMAPS, SMTP, Submission, SMTPS string
	Password                             string
	// CAFile signs the servers' certificate; TLS trusts it.
	CAFile string
	TLS    *tls.Config
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Mail returns the mail test servers; a test that cannot reach them fails
// (`make test` starts them), it never skips.
func Mail(t testing.TB) MailServers {
	t.Helper()
	m := MailServers{
		IMAP: envOr("ATUMDESK_TEST_IMAP_ADDR", "127.0.0.1:11143"), IMAPS: envOr("ATUMDESK_TEST_IMAPS_ADDR", "127.0.0.1:11993"),
		SMTP: envOr("ATUMDESK_TEST_SMTP_ADDR", "127.0.0.1:11025"), Submission: envOr("ATUMDESK_TEST_SUBMISSION_ADDR", "127.0.0.1:11587"),
		SMTPS: envOr("ATUMDESK_TEST_SMTPS_ADDR", "127.0.0.1:11465"), Password: envOr("ATUMDESK_TEST_MAIL_PASSWORD", "atumdesk-mail-test"),
		CAFile: envOr("ATUMDESK_TEST_MAIL_CA", filepath.Join(RepoRoot(), "data", "mail", "tls", "cert.pem")),
	}
	pem, err := os.ReadFile(m.CAFile)
	if err != nil {
		t.Fatalf("mail test servers: CA certificate %s: %v (run `bash deploy/local/mail.sh up`, which `make test` does)", m.CAFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("mail test servers: %s holds no certificate", m.CAFile)
	}
	m.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	for _, a := range []string{m.IMAP, m.IMAPS, m.SMTP} {
		c, err := net.DialTimeout("tcp", a, 3*time.Second)
		if err != nil {
			t.Fatalf("mail test servers: %s is not reachable: %v (run `bash deploy/local/mail.sh up`, which `make test` does)", a, err)
		}
		_ = c.Close()
	}
	return m
}

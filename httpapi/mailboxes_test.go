package httpapi_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/atumdesk/atumdesk/httpapi"
	"github.com/atumdesk/atumdesk/internal/netguard"
	"github.com/atumdesk/atumdesk/internal/secretbox"
)

// testSecretKey seals mailbox passwords in the API tests.
var testSecretKey = bytes.Repeat([]byte{9}, secretbox.KeySize)

func testSecrets(t *testing.T) *secretbox.Box {
	t.Helper()
	b, err := secretbox.New(testSecretKey)
	require.NoError(t, err)
	return b
}

// newMailbox inserts a mailbox of org (its password sealed as the API does).
func (s *stack) newMailbox(org uuid.UUID) uuid.UUID {
	s.t.Helper()
	id := uuid.Must(uuid.NewV7())
	sealed, err := testSecrets(s.t).Seal([]byte("imap-secret"), id[:])
	require.NoError(s.t, err)
	require.NoError(s.t, s.db.Exec(`INSERT INTO mailboxes (id, org_id, address, imap_host, imap_username, credentials_ref, password_enc)
		VALUES (?, ?, ?, 'imap.example.test', 'u', 'secretbox', ?)`, id, org, "mb-"+id.String()+"@example.test", sealed).Error)
	return id
}

// newQuarantined inserts a quarantined message of mailbox mb.
func (s *stack) newQuarantined(mb uuid.UUID) uuid.UUID {
	s.t.Helper()
	id := uuid.Must(uuid.NewV7())
	require.NoError(s.t, s.db.Exec(`INSERT INTO mail_quarantine (id, org_id, mailbox_id, uid_validity, uid, dedupe_key, message_id,
		raw_sha256, raw_size, error, attempts)
		SELECT ?, org_id, id, 7, 1, ?, 'q@example.test', ?, 10, 'no usable sender', 1 FROM mailboxes WHERE id = ?`,
		id, "mid:"+id.String(), strings.Repeat("ab", 32), mb).Error)
	return id
}

func TestMailboxesAPI(t *testing.T) {
	s := newStack(t)
	admin := s.login("admin@acme.test")
	box := testSecrets(t)

	// create: defaults, the password sealed and never shown
	res := s.do("POST", "/api/v1/admin/mailboxes", admin, map[string]any{"name": "Support", "address": "Support@Acme.test",
		"imap_host": "IMAP.acme.test", "imap_username": "support@acme.test", "password": "p@ss word\"'{}"})
	require.Equal(t, 201, res.status, string(res.body))
	m := res.json(t)
	require.Equal(t, "support@acme.test", m["address"])
	require.Equal(t, "imap.acme.test", m["imap_host"])
	require.EqualValues(t, 993, m["imap_port"])
	require.Equal(t, "tls", m["imap_tls"])
	require.Equal(t, "INBOX", m["folder"])
	require.Equal(t, "seen", m["after_ingest"])
	require.Equal(t, true, m["has_password"])
	require.Equal(t, true, m["is_active"])
	require.NotContains(t, string(res.body), "p@ss")
	require.NotContains(t, string(res.body), "password_enc")
	id := uuid.MustParse(m["id"].(string))
	var row struct {
		PasswordEnc    []byte `gorm:"column:password_enc"`
		CredentialsRef string `gorm:"column:credentials_ref"`
		ConfigVersion  int    `gorm:"column:config_version"`
	}
	require.NoError(t, s.db.Raw(`SELECT password_enc, credentials_ref, config_version FROM mailboxes WHERE id = ?`, id).Scan(&row).Error)
	require.Equal(t, "secretbox", row.CredentialsRef)
	require.NotContains(t, string(row.PasswordEnc), "p@ss")
	pw, err := box.Open(row.PasswordEnc, id[:])
	require.NoError(t, err)
	require.Equal(t, "p@ss word\"'{}", string(pw))

	require.Equal(t, "create", m["unknown_sender"], "unknown senders become customers by default")
	res = s.do("POST", "/api/v1/admin/mailboxes", admin, map[string]any{"address": "help@acme.test", "imap_host": "imap2.acme.test",
		"imap_tls": "starttls", "imap_username": "help", "password": "x", "after_ingest": "move:Done", "unknown_sender": "quarantine"})
	require.Equal(t, 201, res.status, string(res.body))
	require.EqualValues(t, 143, res.json(t)["imap_port"])
	require.Equal(t, "quarantine", res.json(t)["unknown_sender"])

	// validation: 4xx, never 500
	for _, bad := range []map[string]any{
		{"address": "nope", "imap_host": "h.test", "imap_username": "u", "password": "x"},
		{"address": "a1@acme.test", "imap_host": "http://h.test/", "imap_username": "u", "password": "x"},
		{"address": "a2@acme.test", "imap_host": "h.test", "imap_tls": "ssl", "imap_username": "u", "password": "x"},
		{"address": "a3@acme.test", "imap_host": "h.test", "imap_username": "u"},
		{"address": "a4@acme.test", "imap_host": "h.test", "imap_username": "u", "password": "x\r\nA2 LOGOUT"},
		{"address": "a5@acme.test", "imap_host": "h.test", "imap_username": "u", "password": "x", "imap_port": 70000},
		{"address": "a6@acme.test", "imap_host": "h.test", "imap_username": "u", "password": "x", "after_ingest": "move:INBOX"},
		{"address": "a7@acme.test", "imap_host": "h.test", "imap_username": "u", "password": "x", "after_ingest": "delete"},
		{"address": "a8@acme.test", "imap_host": "h.test", "imap_username": "u", "password": "x", "folder": "a\x01b"},
		{"address": "a9@acme.test", "imap_host": "h.test", "imap_username": "u", "password": "x", "unknown_sender": "ignore"},
	} {
		res := s.do("POST", "/api/v1/admin/mailboxes", admin, bad)
		require.Equal(t, 422, res.status, "%v: %s", bad, res.body)
	}
	res = s.do("POST", "/api/v1/admin/mailboxes", admin, map[string]any{"address": "x@acme.test", "imap_host": "h", "imap_username": "u",
		"password": "x", "credentials_ref": "env:ATUMDESK_JWT_SECRET"})
	require.Equal(t, 400, res.status, "credentials_ref cannot be set through the API: %s", res.body)
	res = s.do("POST", "/api/v1/admin/mailboxes", admin, map[string]any{"address": "support@acme.test", "imap_host": "h.test",
		"imap_username": "u", "password": "x"})
	require.Equal(t, 409, res.status, string(res.body))

	// update: a new password is sealed again and the poller told to reconnect;
	// another folder starts like a new mailbox
	require.NoError(t, s.db.Exec(`UPDATE mailboxes SET uid_validity = 5, last_uid = 9 WHERE id = ?`, id).Error)
	res = s.do("PATCH", "/api/v1/admin/mailboxes/"+id.String(), admin, map[string]any{"password": "n3w", "folder": "Support"})
	require.Equal(t, 200, res.status, string(res.body))
	require.NotContains(t, string(res.body), "n3w")
	require.Nil(t, res.json(t)["uid_validity"])
	require.EqualValues(t, 0, res.json(t)["last_uid"])
	require.NoError(t, s.db.Raw(`SELECT password_enc, credentials_ref, config_version FROM mailboxes WHERE id = ?`, id).Scan(&row).Error)
	require.Equal(t, 2, row.ConfigVersion)
	pw, err = box.Open(row.PasswordEnc, id[:])
	require.NoError(t, err)
	require.Equal(t, "n3w", string(pw))
	res = s.do("PATCH", "/api/v1/admin/mailboxes/"+id.String(), admin, map[string]any{"after_ingest": "move:Support"})
	require.Equal(t, 422, res.status, string(res.body))
	res = s.do("PATCH", "/api/v1/admin/mailboxes/"+id.String(), admin, map[string]any{"unknown_sender": "quarantine"})
	require.Equal(t, 200, res.status, string(res.body))
	require.Equal(t, "quarantine", res.json(t)["unknown_sender"])

	// the audit trail has the changes, not the passwords
	var audits []string
	require.NoError(t, s.db.Raw(`SELECT coalesce(before::text, '') || coalesce(after::text, '') FROM audit_log
		WHERE entity_type = 'mailbox' AND entity_id = ?`, id).Scan(&audits).Error)
	require.Len(t, audits, 3)
	for _, a := range audits {
		require.NotContains(t, a, "p@ss")
		require.NotContains(t, a, "n3w")
	}
	require.Contains(t, audits[1], "password_changed")
	require.Contains(t, audits[2], "quarantine")

	// list: own organisation only
	globex := s.newMailbox(s.orgs["globex"])
	res = s.do("GET", "/api/v1/admin/mailboxes", admin, nil)
	require.Equal(t, 200, res.status)
	require.Contains(t, string(res.body), id.String())
	require.NotContains(t, string(res.body), globex.String())
	for _, it := range res.json(t)["items"].([]any) {
		require.Equal(t, s.orgs["acme"].String(), it.(map[string]any)["org_id"])
	}
	require.Equal(t, 404, s.do("GET", "/api/v1/admin/mailboxes/"+globex.String(), admin, nil).status)

	// quarantine: list, replay once, not twice, not without raw bytes
	q := s.newQuarantined(id)
	other := s.newQuarantined(globex)
	res = s.do("GET", "/api/v1/admin/mail-quarantine?status=quarantined", admin, nil)
	require.Equal(t, 200, res.status, string(res.body))
	require.Contains(t, string(res.body), q.String())
	require.Contains(t, string(res.body), "no usable sender")
	require.NotContains(t, string(res.body), other.String())
	require.Equal(t, 422, s.do("GET", "/api/v1/admin/mail-quarantine?status=lost", admin, nil).status)
	res = s.do("POST", "/api/v1/admin/mail-quarantine/"+q.String()+"/replay", admin, nil)
	require.Equal(t, 202, res.status, string(res.body))
	require.Equal(t, "replay", res.json(t)["status"])
	require.Equal(t, 409, s.do("POST", "/api/v1/admin/mail-quarantine/"+q.String()+"/replay", admin, nil).status)
	require.Equal(t, 404, s.do("POST", "/api/v1/admin/mail-quarantine/"+other.String()+"/replay", admin, nil).status)
	unstored := s.newQuarantined(id)
	require.NoError(t, s.db.Exec(`UPDATE mail_quarantine SET raw_sha256 = NULL WHERE id = ?`, unstored).Error)
	require.Equal(t, 409, s.do("POST", "/api/v1/admin/mail-quarantine/"+unstored.String()+"/replay", admin, nil).status)

	// delete takes its quarantine with it
	require.Equal(t, 204, s.do("DELETE", "/api/v1/admin/mailboxes/"+id.String(), admin, nil).status)
	require.Equal(t, 404, s.do("GET", "/api/v1/admin/mailboxes/"+id.String(), admin, nil).status)
	var left int64
	require.NoError(t, s.db.Raw(`SELECT count(*) FROM mail_quarantine WHERE mailbox_id = ?`, id).Scan(&left).Error)
	require.Zero(t, left)
}

// Without ATUMDESK_SECRET_KEY a password cannot be stored: 503, not 500
// and not plaintext.
func TestMailboxesWithoutSecretKey(t *testing.T) {
	s := newStack(t, func(d *httpapi.Deps) { d.Secrets = nil })
	admin := s.login("admin@acme.test")
	res := s.do("POST", "/api/v1/admin/mailboxes", admin, map[string]any{"address": "support@acme.test", "imap_host": "h.test",
		"imap_username": "u", "password": "x"})
	require.Equal(t, 503, res.status, string(res.body))
	var n int64
	require.NoError(t, s.db.Raw(`SELECT count(*) FROM mailboxes`).Scan(&n).Error)
	require.Zero(t, n)
}

// TestMailboxInternalHosts: an admin cannot point a mailbox at loopback,
// private, link-local or metadata addresses (in any spelling) unless the
// operator's allow-list names them (SECURITY.md §1.3); a refused update
// leaves the row as it was.
func TestMailboxInternalHosts(t *testing.T) {
	s := newStack(t)
	admin := s.login("admin@acme.test")
	create := func(s *stack, host string, port int) response {
		body := map[string]any{"address": "ssrf-" + uuid.NewString()[:8] + "@acme.test", "imap_host": host,
			"imap_username": "u", "password": "x"}
		if port != 0 {
			body["imap_port"] = port
		}
		return s.do("POST", "/api/v1/admin/mailboxes", admin, body)
	}
	for _, h := range []string{"127.0.0.1", "localhost", "::1", "0.0.0.0", "169.254.169.254", "10.0.0.5", "172.16.1.1",
		"192.168.1.1", "100.64.0.1", "::ffff:127.0.0.1", "fd00:ec2::254", "fe80::1", "2130706433", "0177.0.0.1", "0x7f.1", "127.1"} {
		res := create(s, h, 0)
		require.Equal(t, 422, res.status, "%s: %s", h, res.body)
		require.Contains(t, string(res.body), "ATUMDESK_IMAP_ALLOW_HOSTS", h)
	}
	require.Equal(t, 201, create(s, "8.8.8.8", 993).status, "a public address is fine")

	id := s.newMailbox(s.orgs["acme"])
	for _, patch := range []map[string]any{{"imap_host": "127.0.0.1"}, {"imap_host": "localhost", "imap_port": 143}} {
		res := s.do("PATCH", "/api/v1/admin/mailboxes/"+id.String(), admin, patch)
		require.Equal(t, 422, res.status, "%v: %s", patch, res.body)
	}
	var host string
	require.NoError(t, s.db.Raw(`SELECT imap_host FROM mailboxes WHERE id = ?`, id).Scan(&host).Error)
	require.Equal(t, "imap.example.test", host)

	// the operator's allow-list: by address and port, by network, by name
	allowed := newStack(t, func(d *httpapi.Deps) {
		d.IMAPGuard = netguard.MustNew("127.0.0.1:11143", "10.0.0.0/8", "mail.internal")
	})
	admin = allowed.login("admin@acme.test")
	require.Equal(t, 201, create(allowed, "127.0.0.1", 11143).status)
	require.Equal(t, 422, create(allowed, "127.0.0.1", 993).status, "another port of an allowed address")
	require.Equal(t, 201, create(allowed, "10.0.0.5", 0).status)
	require.Equal(t, 422, create(allowed, "192.168.0.5", 0).status)
	require.Equal(t, 201, create(allowed, "mail.internal", 0).status)
	id = allowed.newMailbox(allowed.orgs["acme"])
	res := allowed.do("PATCH", "/api/v1/admin/mailboxes/"+id.String(), admin, map[string]any{"imap_host": "127.0.0.1", "imap_port": 11143})
	require.Equal(t, 200, res.status, string(res.body))
}

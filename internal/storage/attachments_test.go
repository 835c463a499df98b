package storage_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/storage"
	"github.com/atumdesk/atumdesk/internal/testenv"
	"github.com/atumdesk/atumdesk/models"
)

// fixture is two organisations (two users and a ticket each) in a shared
// database, and an empty store.
type fixture struct {
	db           *gorm.DB
	local        *storage.Local
	att          *storage.Attachments
	org, other   uuid.UUID
	alice, bob   uuid.UUID
	otherUser    uuid.UUID
	ticket, tOth uuid.UUID
}

func newFixture(t *testing.T, db *gorm.DB, maxBytes int64) *fixture {
	t.Helper()
	local, err := storage.NewLocal(t.TempDir())
	require.NoError(t, err)
	f := &fixture{db: db, local: local, att: storage.NewAttachments(local, maxBytes)}
	f.org, f.alice, f.bob, f.ticket = seedOrg(t, db)
	f.other, f.otherUser, _, f.tOth = seedOrg(t, db)
	return f
}

func seedOrg(t *testing.T, db *gorm.DB) (org, u1, u2, ticket uuid.UUID) {
	org, u1, u2, ticket = uuid.New(), uuid.New(), uuid.New(), uuid.New()
	slug := "org-" + org.String()[:8]
	require.NoError(t, db.Exec(`INSERT INTO organizations (id, slug, name) VALUES (?, ?, ?)`, org, slug, slug).Error)
	for i, u := range []uuid.UUID{u1, u2} {
		require.NoError(t, db.Exec(`INSERT INTO users (id, org_id, email, name, role, is_active) VALUES (?, ?, ?, 'U', 'customer_user', true)`,
			u, org, strings.Repeat("u", i+1)+"@"+slug+".test").Error)
	}
	require.NoError(t, db.Exec(`INSERT INTO tickets (id, org_id, number, subject, requester_id, channel)
		VALUES (?, ?, next_ticket_number(?), 'T', ?, 'web')`, ticket, org, org, u1).Error)
	return
}

func (f *fixture) save(t *testing.T, org, user uuid.UUID, name string, body io.Reader) (*models.Attachment, error) {
	t.Helper()
	return f.att.Save(context.Background(), f.db, storage.Upload{OrgID: org, UploadedBy: &user, Filename: name, Body: body}, nil)
}

// files lists the stored files (the tmp directory must be empty).
func (f *fixture) files(t *testing.T) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(f.local.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	}))
	return out
}

// counter counts the bytes an upload's reader was asked for.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// endless is text that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a' + byte(i%26)
	}
	return len(p), nil
}

// TestAttachments runs the database-backed cases on one database (cloning
// one per test costs more than the tests).
func TestAttachments(t *testing.T) {
	db, _ := testenv.DB(t)
	for name, fn := range map[string]func(*testing.T, *gorm.DB){
		"LimitEnforcedWhileReading":    testSaveLimitEnforcedWhileReading,
		"RefusesBeforeWriting":         testSaveRefusesBeforeWriting,
		"RollsBackFileWithTransaction": testSaveRollsBackFileWithTransaction,
		"OpenVerifiesHash":             testOpenVerifiesHash,
		"Claim":                        testClaim,
		"PurgeUnlinked":                testPurgeUnlinked,
	} {
		t.Run(name, func(t *testing.T) { fn(t, db) })
	}
}

func testSaveLimitEnforcedWhileReading(t *testing.T, db *gorm.DB) {
	const limit = 4096
	f := newFixture(t, db, limit)

	exact := bytes.Repeat([]byte("x"), limit)
	a, err := f.save(t, f.org, f.alice, "exact.txt", bytes.NewReader(exact))
	require.NoError(t, err)
	sum := sha256.Sum256(exact)
	require.Equal(t, sum[:], a.SHA256)
	require.EqualValues(t, limit, a.SizeBytes)
	require.Equal(t, "text/plain; charset=utf-8", a.MimeType)
	require.Len(t, f.files(t), 1)

	_, err = f.save(t, f.org, f.alice, "over.txt", bytes.NewReader(append(exact, 'x')))
	require.True(t, apperr.IsKind(err, apperr.TooLarge), "%v", err)

	// An endless upload stops right after the limit.
	c := &counter{r: endless{}}
	_, err = f.save(t, f.org, f.alice, "endless.txt", c)
	require.True(t, apperr.IsKind(err, apperr.TooLarge), "%v", err)
	require.Less(t, c.n, int64(limit+storage.SniffLen+2), "read past the limit")

	require.Len(t, f.files(t), 1, "refused uploads leave no file behind")
	var rows int64
	require.NoError(t, f.db.Raw(`SELECT count(*) FROM attachments WHERE org_id = ?`, f.org).Scan(&rows).Error)
	require.EqualValues(t, 1, rows)
}

func testSaveRefusesBeforeWriting(t *testing.T, db *gorm.DB) {
	f := newFixture(t, db, 0)
	_, err := f.save(t, f.org, f.alice, "cat.png", strings.NewReader(svgDoc))
	require.True(t, apperr.IsKind(err, apperr.Unsupported), "%v", err)
	_, err = f.save(t, f.org, f.alice, "empty.txt", strings.NewReader(""))
	require.True(t, apperr.IsKind(err, apperr.Invalid), "%v", err)
	_, err = f.save(t, f.org, f.alice, "broken.txt", io.MultiReader(strings.NewReader("partial"), iotestErr{}))
	require.True(t, apperr.IsKind(err, apperr.BadRequest), "%v", err)
	require.Empty(t, f.files(t))
	require.Equal(t, storage.DefaultMaxBytes, int(f.att.MaxBytes()))
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func testSaveRollsBackFileWithTransaction(t *testing.T, db *gorm.DB) {
	f := newFixture(t, db, 0)
	boom := errors.New("boom")
	_, err := f.att.Save(context.Background(), f.db, storage.Upload{OrgID: f.org, UploadedBy: &f.alice, Filename: "a.txt",
		Body: strings.NewReader("hello")}, func(*gorm.DB, *models.Attachment) error { return boom })
	require.ErrorIs(t, err, boom)
	require.Empty(t, f.files(t))
}

func testOpenVerifiesHash(t *testing.T, db *gorm.DB) {
	ctx := context.Background()
	f := newFixture(t, db, 0)
	content := pngMagic + strings.Repeat("\x00pixels", 1000)
	a, err := f.save(t, f.org, f.alice, "photo.png", strings.NewReader(content))
	require.NoError(t, err)
	path, err := f.local.Path(a.StorageKey)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(path, f.local.Dir()+string(filepath.Separator)))

	rc, err := f.att.Open(ctx, a)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, content, string(got))

	// Changed after the check, while streaming: the stream ends in an error.
	rc, err = f.att.Open(ctx, a)
	require.NoError(t, err)
	tamper(t, path, len(content)-1)
	_, err = io.ReadAll(rc)
	require.ErrorIs(t, err, storage.ErrIntegrity)
	require.NoError(t, rc.Close())

	// Same length, one byte flipped.
	_, err = f.att.Open(ctx, a)
	require.ErrorIs(t, err, storage.ErrIntegrity)
	// Truncated.
	require.NoError(t, os.Truncate(path, 10))
	_, err = f.att.Open(ctx, a)
	require.ErrorIs(t, err, storage.ErrIntegrity)
	// Gone.
	require.NoError(t, os.Remove(path))
	_, err = f.att.Open(ctx, a)
	require.ErrorIs(t, err, storage.ErrIntegrity)
}

func tamper(t *testing.T, path string, at int) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	b[at] ^= 0xff
	require.NoError(t, os.WriteFile(path, b, 0o600))
}

func testClaim(t *testing.T, db *gorm.DB) {
	ctx := context.Background()
	f := newFixture(t, db, 0)
	a1, err := f.save(t, f.org, f.alice, "a.txt", strings.NewReader("one"))
	require.NoError(t, err)
	a2, err := f.save(t, f.org, f.alice, "b.txt", strings.NewReader("two"))
	require.NoError(t, err)
	g, err := f.save(t, f.other, f.otherUser, "g.txt", strings.NewReader("globex"))
	require.NoError(t, err)

	claim := func(org, user uuid.UUID, ids ...uuid.UUID) error {
		return f.db.Transaction(func(tx *gorm.DB) error {
			return storage.Claim(ctx, tx, org, user, ids, f.ticket, nil)
		})
	}
	require.True(t, apperr.IsKind(claim(f.org, f.bob, a1.ID), apperr.Invalid), "another user's upload")
	require.True(t, apperr.IsKind(claim(f.org, f.alice, a1.ID, g.ID), apperr.Invalid), "another organisation's upload")
	require.True(t, apperr.IsKind(claim(f.org, f.alice, a1.ID, uuid.New()), apperr.Invalid), "an unknown id")
	var linked int64
	require.NoError(t, f.db.Raw(`SELECT count(*) FROM attachments WHERE ticket_id IS NOT NULL AND org_id = ?`, f.org).Scan(&linked).Error)
	require.Zero(t, linked, "a refused claim links nothing")

	require.NoError(t, claim(f.org, f.alice, a1.ID, a2.ID, a1.ID))
	require.NoError(t, f.db.Raw(`SELECT count(*) FROM attachments WHERE ticket_id = ?`, f.ticket).Scan(&linked).Error)
	require.EqualValues(t, 2, linked)
	require.True(t, apperr.IsKind(claim(f.org, f.alice, a1.ID), apperr.Invalid), "claimed twice")
	require.NoError(t, claim(f.org, f.alice))
}

func testPurgeUnlinked(t *testing.T, db *gorm.DB) {
	ctx := context.Background()
	f := newFixture(t, db, 0)
	old, err := f.save(t, f.org, f.alice, "old.txt", strings.NewReader("old"))
	require.NoError(t, err)
	kept, err := f.save(t, f.org, f.alice, "kept.txt", strings.NewReader("kept"))
	require.NoError(t, err)
	fresh, err := f.save(t, f.org, f.alice, "fresh.txt", strings.NewReader("fresh"))
	require.NoError(t, err)
	require.NoError(t, f.db.Exec(`UPDATE attachments SET created_at = now() - interval '2 days' WHERE id IN ?`,
		[]uuid.UUID{old.ID, kept.ID}).Error)
	require.NoError(t, f.db.Exec(`UPDATE attachments SET ticket_id = ? WHERE id = ?`, f.ticket, kept.ID).Error)

	n, err := f.att.PurgeUnlinked(ctx, f.db, 24*time.Hour)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	_, err = f.att.Open(ctx, old)
	require.ErrorIs(t, err, storage.ErrIntegrity)
	for _, a := range []*models.Attachment{kept, fresh} {
		rc, err := f.att.Open(ctx, a)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
	}
	require.Len(t, f.files(t), 2)
}

func TestLocalKeys(t *testing.T) {
	l, err := storage.NewLocal(t.TempDir())
	require.NoError(t, err)
	ctx := context.Background()
	for _, bad := range []string{"../x", "..", "/etc/passwd", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "a0eebc999c0b4ef8bb6d6bb9bd380a11", ""} {
		_, err := l.Put(ctx, bad, strings.NewReader("x"))
		require.Error(t, err, bad)
		_, err = l.Open(ctx, bad)
		require.Error(t, err, bad)
		require.Error(t, l.Delete(ctx, bad), bad)
	}
	key := uuid.NewString()
	_, err = l.Open(ctx, key)
	require.ErrorIs(t, err, storage.ErrNotFound)
	require.NoError(t, l.Delete(ctx, key), "deleting nothing is fine")
	n, err := l.Put(ctx, key, strings.NewReader("hello"))
	require.NoError(t, err)
	require.EqualValues(t, 5, n)
	p, err := l.Path(key)
	require.NoError(t, err)
	st, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	require.NoError(t, l.Delete(ctx, key))
	_, err = os.Stat(p)
	require.ErrorIs(t, err, fs.ErrNotExist)
}

package httpapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/atumdesk/atumdesk/httpapi"
	"github.com/atumdesk/atumdesk/internal/storage"
	"github.com/atumdesk/atumdesk/models"
)

const (
	pngHead = "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"
	pdfHead = "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
	svgBomb = `<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.domain)"><script>alert(1)</script></svg>`
)

// multipartBody streams one part named file, lazily: big uploads never sit
// in the test's memory. The part claims to be image/png whatever it holds;
// the server must not believe it.
func multipartBody(filename string, content io.Reader) (io.ReadCloser, string) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		h := textproto.MIMEHeader{}
		quoted := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(filename)
		h.Set("Content-Disposition", `form-data; name="file"; filename="`+quoted+`"`)
		h.Set("Content-Type", "image/png")
		part, err := mw.CreatePart(h)
		if err == nil {
			_, err = io.Copy(part, content)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, mw.FormDataContentType()
}

func uploadRequest(t *testing.T, url, token, filename string, content io.Reader) *http.Request {
	t.Helper()
	body, ct := multipartBody(filename, content)
	req, err := http.NewRequest("POST", url, body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}

// upload posts content as a file to path (a chunked, streamed body).
func (s *stack) upload(path, token, filename string, content io.Reader) response {
	s.t.Helper()
	return s.send(uploadRequest(s.t, s.srv.URL+path, token, filename, content))
}

// newAttachment stores a file on a fresh ticket of org's customer_user, as
// if it had come with the ticket (the route matrix's {attachmentID}).
func (s *stack) newAttachment(org uuid.UUID) uuid.UUID {
	s.t.Helper()
	requester := s.orgCustomer(org)
	ticket := s.newTicket(org, requester, "with a file")
	return s.storeFile(org, requester, &ticket, nil, "matrix.txt", "matrix file").ID
}

// storeFile saves a file through the storage service straight onto a
// ticket or comment (as ticket intake does with claimed uploads).
func (s *stack) storeFile(org, uploader uuid.UUID, ticket, comment *uuid.UUID, name, content string) *models.Attachment {
	s.t.Helper()
	a, err := storage.NewAttachments(s.files, 0).Save(context.Background(), s.db, storage.Upload{
		OrgID: org, UploadedBy: &uploader, TicketID: ticket, CommentID: comment, Filename: name, Body: strings.NewReader(content)}, nil)
	require.NoError(s.t, err)
	return a
}

// storedFiles lists the files in the attachment store.
func (s *stack) storedFiles() []string {
	s.t.Helper()
	var out []string
	require.NoError(s.t, filepath.WalkDir(s.files.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return err
	}))
	return out
}

// extraCustomer creates another customer_user of acme who can log in.
func (s *stack) extraCustomer(email string) string {
	s.t.Helper()
	res := s.do("POST", "/api/v1/users", s.login("manager@acme.test"),
		map[string]string{"email": email, "name": "Other", "role": "customer_user", "password": demoPassword})
	require.Equal(s.t, 201, res.status, string(res.body))
	return s.login(email)
}

func (s *stack) count(query string, args ...any) int64 {
	s.t.Helper()
	var n int64
	require.NoError(s.t, s.db.Raw(query, args...).Scan(&n).Error)
	return n
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestAttachments(t *testing.T) {
	s := newStack(t)
	acme := s.orgs["acme"]
	cuID := s.userID("customer_user@acme.test")
	agentID := s.userID("agent@acme.test")
	cu, ca, agent := s.login("customer_user@acme.test"), s.login("customer_admin@acme.test"), s.login("agent@acme.test")
	globex := s.login("customer_user@globex.test")
	stranger := s.extraCustomer("stranger@acme.test")
	ticket := s.newTicket(acme, cuID, "Broken screen")

	t.Run("upload, claim, download", func(t *testing.T) {
		content := pngHead + strings.Repeat("pixel", 2000)
		res := s.upload("/api/v1/attachments", cu, "screen shot.png", strings.NewReader(content))
		require.Equal(t, 201, res.status, string(res.body))
		v := res.json(t)
		require.Equal(t, "screen shot.png", v["filename"])
		require.Equal(t, "image/png", v["mime_type"])
		require.EqualValues(t, len(content), v["size_bytes"])
		require.Equal(t, sha(content), v["sha256"])
		require.Nil(t, v["ticket_id"])
		id := uuid.MustParse(v["id"].(string))
		path := "/api/v1/attachments/" + id.String()
		require.Equal(t, path, res.header.Get("Location"))
		require.NotContains(t, string(res.body), "storage_key")

		// Unclaimed: only the uploader sees it.
		dl := s.do("GET", path, cu, nil)
		require.Equal(t, 200, dl.status, string(dl.body))
		require.Equal(t, content, string(dl.body))
		require.Equal(t, "image/png", dl.header.Get("Content-Type"))
		require.Equal(t, `attachment; filename="screen shot.png"; filename*=UTF-8''screen%20shot.png`, dl.header.Get("Content-Disposition"))
		require.Equal(t, "nosniff", dl.header.Get("X-Content-Type-Options"))
		require.Contains(t, dl.header.Get("Content-Security-Policy"), "sandbox")
		for _, tok := range []string{ca, agent, stranger, globex} {
			require.Equal(t, 404, s.do("GET", path, tok, nil).status)
		}

		// Claimed by a ticket (what intake does): visible through the ticket.
		require.NoError(t, s.db.Transaction(func(tx *gorm.DB) error {
			return storage.Claim(context.Background(), tx, acme, cuID, []uuid.UUID{id}, ticket, nil)
		}))
		require.Equal(t, 200, s.do("GET", path, ca, nil).status)
		require.Equal(t, 200, s.do("GET", path, agent, nil).status)
		require.Equal(t, 404, s.do("GET", path, stranger, nil).status, "a customer_user sees only their own tickets")
		require.Equal(t, 404, s.do("GET", path, globex, nil).status, "another organisation")
		require.EqualValues(t, 3, s.count(`SELECT access_count FROM attachments WHERE id = ?`, id))
		require.EqualValues(t, 3, s.count(`SELECT count(*) FROM audit_log WHERE action = 'attachment.downloaded' AND entity_id = ?`, id))
		require.EqualValues(t, 2, s.count(`SELECT count(*) FROM audit_log WHERE action = 'attachment.downloaded' AND entity_id = ? AND ticket_id = ?`, id, ticket))
		require.EqualValues(t, 1, s.count(`SELECT count(*) FROM audit_log WHERE action = 'attachment.uploaded' AND entity_id = ? AND ip IS NOT NULL`, id))
	})

	t.Run("attach to a ticket", func(t *testing.T) {
		path := ticketPath(ticket, "/attachments")
		res := s.upload(path, cu, "log.txt", strings.NewReader("line 1\nline 2\n"))
		require.Equal(t, 201, res.status, string(res.body))
		v := res.json(t)
		require.Equal(t, ticket.String(), v["ticket_id"])
		require.Equal(t, "text/plain; charset=utf-8", v["mime_type"])
		id := v["id"]
		require.EqualValues(t, 1, s.count(`SELECT count(*) FROM audit_log WHERE action = 'attachment.added' AND ticket_id = ? AND entity_id = ?`, ticket, id))
		require.EqualValues(t, 1, s.count(`SELECT count(*) FROM outbox WHERE event_type = 'attachment.added' AND key = ?`, ticket.String()))
		require.Equal(t, 201, s.upload(path, ca, "more.txt", strings.NewReader("x")).status)
		require.Equal(t, 201, s.upload(path, agent, "more.txt", strings.NewReader("x")).status)
		require.Equal(t, 404, s.upload(path, stranger, "x.txt", strings.NewReader("x")).status)
		require.Equal(t, 404, s.upload(path, globex, "x.txt", strings.NewReader("x")).status)

		other := s.newTicket(s.orgs["globex"], s.userID("customer_user@globex.test"), "theirs")
		require.Equal(t, 404, s.upload(ticketPath(other, "/attachments"), cu, "x.txt", strings.NewReader("x")).status)

		closed := s.newTicket(acme, cuID, "done")
		require.NoError(t, s.db.Exec(`UPDATE tickets SET status = 'closed' WHERE id = ?`, closed).Error)
		res = s.upload(ticketPath(closed, "/attachments"), cu, "late.txt", strings.NewReader("x"))
		require.Equal(t, 409, res.status, string(res.body))
	})

	t.Run("internal note files stay internal", func(t *testing.T) {
		note := models.Comment{OrgID: acme, TicketID: ticket, AuthorID: &agentID, Content: "internal", IsInternal: true}
		reply := models.Comment{OrgID: acme, TicketID: ticket, AuthorID: &agentID, Content: "public"}
		require.NoError(t, s.db.Create(&note).Error)
		require.NoError(t, s.db.Create(&reply).Error)
		secret := s.storeFile(acme, agentID, &ticket, &note.ID, "canary.txt", "CANARY internal")
		public := s.storeFile(acme, agentID, &ticket, &reply.ID, "answer.txt", "public answer")
		// A comment's file without ticket_id resolves through the comment.
		bare := s.storeFile(acme, agentID, nil, &note.ID, "canary2.txt", "CANARY internal 2")
		for _, id := range []uuid.UUID{secret.ID, bare.ID} {
			path := "/api/v1/attachments/" + id.String()
			for _, tok := range []string{cu, ca} {
				res := s.do("GET", path, tok, nil)
				require.Equal(t, 404, res.status)
				require.NotContains(t, string(res.body), "CANARY")
			}
			require.Equal(t, 200, s.do("GET", path, agent, nil).status)
		}
		require.Equal(t, 200, s.do("GET", "/api/v1/attachments/"+public.ID.String(), cu, nil).status)
	})

	t.Run("list per ticket: internal note files for staff only", func(t *testing.T) {
		tk := s.newTicket(acme, cuID, "files listed")
		note := models.Comment{OrgID: acme, TicketID: tk, AuthorID: &agentID, Content: "internal", IsInternal: true}
		reply := models.Comment{OrgID: acme, TicketID: tk, AuthorID: &agentID, Content: "public"}
		require.NoError(t, s.db.Create(&note).Error)
		require.NoError(t, s.db.Create(&reply).Error)
		own := s.storeFile(acme, cuID, &tk, nil, "photo.txt", "from the customer")
		answer := s.storeFile(acme, agentID, nil, &reply.ID, "answer.txt", "public answer")
		secret := s.storeFile(acme, agentID, &tk, &note.ID, "canary.txt", "CANARY internal")
		bare := s.storeFile(acme, agentID, nil, &note.ID, "canary2.txt", "CANARY internal 2")
		s.storeFile(acme, cuID, &ticket, nil, "elsewhere.txt", "another ticket's file")

		type item struct {
			ID          string `json:"id"`
			Filename    string `json:"filename"`
			IsInternal  bool   `json:"is_internal"`
			DownloadURL string `json:"download_url"`
		}
		list := func(tok, query string) ([]item, string) {
			res := s.do("GET", ticketPath(tk, "/attachments"+query), tok, nil)
			require.Equal(t, 200, res.status, string(res.body))
			var page struct {
				Items      []item `json:"items"`
				NextCursor string `json:"next_cursor"`
			}
			require.NoError(t, json.Unmarshal(res.body, &page))
			require.NotContains(t, string(res.body), "storage_key")
			return page.Items, page.NextCursor
		}
		names := func(items []item) []string {
			out := make([]string, len(items))
			for i, it := range items {
				out[i] = it.Filename
			}
			return out
		}
		items, _ := list(agent, "")
		require.Equal(t, []string{"photo.txt", "answer.txt", "canary.txt", "canary2.txt"}, names(items), "oldest first, comment files included")
		require.Equal(t, []bool{false, false, true, true}, []bool{items[0].IsInternal, items[1].IsInternal, items[2].IsInternal, items[3].IsInternal})
		require.Equal(t, "/api/v1/attachments/"+own.ID.String(), items[0].DownloadURL)
		for _, tok := range []string{cu, ca} {
			items, _ := list(tok, "")
			require.Equal(t, []string{"photo.txt", "answer.txt"}, names(items), "customers never see internal note files")
			require.Equal(t, answer.ID.String(), items[1].ID)
		}
		first, cursor := list(agent, "?limit=3")
		require.Len(t, first, 3)
		require.Equal(t, secret.ID.String(), cursor)
		rest, cursor := list(agent, "?limit=3&after="+cursor)
		require.Equal(t, []string{bare.Filename}, names(rest))
		require.Empty(t, cursor)

		require.Equal(t, 404, s.do("GET", ticketPath(tk, "/attachments"), stranger, nil).status, "another customer's ticket")
		require.Equal(t, 404, s.do("GET", ticketPath(tk, "/attachments"), globex, nil).status, "another organisation")
		require.Equal(t, 422, s.do("GET", ticketPath(tk, "/attachments?limit=0"), agent, nil).status)
	})

	t.Run("hostile content is refused", func(t *testing.T) {
		before := len(s.storedFiles())
		cases := []struct{ name, content string }{
			{"cat.png", svgBomb},
			{"cat.png", "\xef\xbb\xbf  " + svgBomb},
			{"cat.gif", `<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`},
			{"photo.jpg", "<html><body><script>alert(document.cookie)</script></body></html>"},
			{"notes.txt", "<!DOCTYPE html><iframe src=javascript:alert(1)>"},
			{"page.html", "harmless text, dangerous name"},
			{"drawing.svg", pngHead},
			{"invoice\u202efdp.exe", pdfHead}, // shows as invoiceexe.pdf; sanitised to invoicefdp.exe
			{"setup", "MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"},
			{"photo.png", "plain text under an image name"},
		}
		for _, c := range cases {
			res := s.upload("/api/v1/attachments", cu, c.name, strings.NewReader(c.content))
			require.Equal(t, 415, res.status, "%s: %s", c.name, res.body)
			require.Equal(t, "application/problem+json", res.header.Get("Content-Type"))
		}
		require.Len(t, s.storedFiles(), before, "nothing refused was stored")

		res := s.do("POST", "/api/v1/attachments", cu, map[string]string{"file": "x"})
		require.Equal(t, 415, res.status, "JSON is not an upload")
		empty := s.upload("/api/v1/attachments", cu, "empty.txt", strings.NewReader(""))
		require.Equal(t, 422, empty.status, string(empty.body))
	})

	t.Run("file names are sanitised, storage keys generated", func(t *testing.T) {
		cases := []struct{ sent, stored string }{
			{"../../../etc/passwd.txt", "passwd.txt"},
			{`..\..\windows\win.ini.txt`, "win.ini.txt"},
			{"/var/www/html/index.txt", "index.txt"},
			{".\u200bhtaccess", "htaccess"},
			{"\u200b.htaccess", "htaccess"},
			{"report\u202egpj.txt", "reportgpj.txt"},
			{"ｓｃａｎ．ｔｘｔ", "scan.txt"},
			{strings.Repeat("a", 300) + ".txt", strings.Repeat("a", 251) + ".txt"},
			{"Rechnung März.txt", "Rechnung März.txt"},
		}
		for _, c := range cases {
			res := s.upload("/api/v1/attachments", cu, c.sent, strings.NewReader("content of "+c.sent))
			require.Equal(t, 201, res.status, "%q: %s", c.sent, res.body)
			require.Equal(t, c.stored, res.json(t)["filename"], "%q", c.sent)
			dl := s.do("GET", "/api/v1/attachments/"+res.json(t)["id"].(string), cu, nil)
			require.Equal(t, 200, dl.status)
			_, params, err := mime.ParseMediaType(dl.header.Get("Content-Disposition"))
			require.NoError(t, err)
			require.Equal(t, c.stored, params["filename"])
		}
		// Every stored file is <dir>/<xx>/<uuid>, none left in tmp, none elsewhere.
		for _, p := range s.storedFiles() {
			rel, err := filepath.Rel(s.files.Dir(), p)
			require.NoError(t, err)
			dir, name := filepath.Split(rel)
			key, err := uuid.Parse(name)
			require.NoError(t, err, rel)
			require.Equal(t, key.String(), name)
			require.Equal(t, name[len(name)-2:]+string(filepath.Separator), dir)
		}
	})

	t.Run("tampered file is refused and audited", func(t *testing.T) {
		a := s.storeFile(acme, cuID, &ticket, nil, "contract.pdf", pdfHead+"the agreed price is 100")
		p, err := s.files.Path(a.StorageKey)
		require.NoError(t, err)
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		copy(b[len(b)-3:], "999") // same size, different content
		require.NoError(t, os.WriteFile(p, b, 0o600))

		path := "/api/v1/attachments/" + a.ID.String()
		res := s.do("GET", path, cu, nil)
		require.Equal(t, 500, res.status)
		require.Equal(t, "application/problem+json", res.header.Get("Content-Type"))
		require.Equal(t, "sha256-mismatch", res.json(t)["integrity"])
		require.NotContains(t, string(res.body), "999")
		require.EqualValues(t, 1, s.count(`SELECT count(*) FROM audit_log WHERE action = 'attachment.integrity_failed' AND entity_id = ? AND ticket_id = ?`, a.ID, ticket))
		require.EqualValues(t, 0, s.count(`SELECT access_count FROM attachments WHERE id = ?`, a.ID))

		require.NoError(t, os.Remove(p))
		require.Equal(t, 500, s.do("GET", path, agent, nil).status, "a lost file is an integrity failure too")
		require.EqualValues(t, 2, s.count(`SELECT count(*) FROM audit_log WHERE action = 'attachment.integrity_failed' AND entity_id = ?`, a.ID))
	})

	t.Run("default limit: exactly 50 MB is accepted", func(t *testing.T) {
		h := sha256.New()
		content := io.TeeReader(io.LimitReader(letters{}, storage.DefaultMaxBytes), h)
		res := s.upload("/api/v1/attachments", cu, "big.txt", content)
		require.Equal(t, 201, res.status, string(res.body))
		v := res.json(t)
		require.EqualValues(t, storage.DefaultMaxBytes, v["size_bytes"])
		require.Equal(t, hex.EncodeToString(h.Sum(nil)), v["sha256"])
	})
}

// letters is endless text.
type letters struct{}

var alphabet = strings.Repeat("abcdefghijklmnopqrstuvwxyz", 1<<10)

func (letters) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], alphabet)
	}
	return n, nil
}

// readCounter counts the request body bytes the server's handler read.
type readCounter struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c readCounter) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func TestAttachmentSizeLimit(t *testing.T) {
	const limit = 64 << 10
	s := newStack(t, func(d *httpapi.Deps) { d.Config.AttachmentMaxBytes = limit })
	cu := s.login("customer_user@acme.test")

	exact := s.upload("/api/v1/attachments", cu, "exact.txt", io.LimitReader(letters{}, limit))
	require.Equal(t, 201, exact.status, string(exact.body))
	require.EqualValues(t, limit, exact.json(t)["size_bytes"])
	over := s.upload("/api/v1/attachments", cu, "over.txt", io.LimitReader(letters{}, limit+1))
	require.Equal(t, 413, over.status, string(over.body))
	require.EqualValues(t, limit, over.json(t)["max_bytes"])

	// A 1 GB upload is cut off right after the limit: the handler reads
	// little more than the limit and the client never has to send it all.
	var read atomic.Int64
	var status atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = readCounter{r.Body, &read}
		rec := &statusRecorder{ResponseWriter: w}
		s.api.Handler().ServeHTTP(rec, r)
		status.Store(int32(rec.status))
	}))
	t.Cleanup(srv.Close)
	var sent atomic.Int64
	body := &sentCounter{r: io.LimitReader(letters{}, 1<<30), n: &sent}
	res, err := http.DefaultClient.Do(uploadRequest(t, srv.URL+"/api/v1/attachments", cu, "huge.txt", body))
	if err == nil { // the server may also just close the connection on the client
		require.Equal(t, 413, res.StatusCode)
		_ = res.Body.Close()
	}
	require.EqualValues(t, 413, status.Load())
	require.Less(t, read.Load(), int64(limit+64<<10), "the handler read past the limit")
	require.Less(t, sent.Load(), int64(64<<20), "the client had to send (nearly) everything")
	t.Logf("1 GiB upload, limit %d: handler read %d bytes, client sent %d bytes", limit, read.Load(), sent.Load())

	// A declared oversized length is refused before the body is read.
	read.Store(0)
	req := uploadRequest(t, srv.URL+"/api/v1/attachments", cu, "declared.txt", io.LimitReader(letters{}, 1<<30))
	req.ContentLength = 1 << 30
	res, err = http.DefaultClient.Do(req)
	if err == nil {
		require.Equal(t, 413, res.StatusCode)
		_ = res.Body.Close()
	} else {
		require.False(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	}
	require.EqualValues(t, 413, status.Load())
	require.Zero(t, read.Load())
	require.Len(t, s.storedFiles(), 1, "only the exact-limit file is stored")
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

type sentCounter struct {
	r io.Reader
	n *atomic.Int64
}

func (c *sentCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

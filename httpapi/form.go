package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/atumdesk/atumdesk/ingest"
	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/database"
	"github.com/atumdesk/atumdesk/internal/ratelimit"
	"github.com/atumdesk/atumdesk/pipeline"
)

// The anonymous public web form of an organisation: a plain HTML form that
// works without JavaScript, embeddable on the customer's own site. It is
// protected by the organisation's form key (in the URL), a honeypot field
// and a rate limit per client address.
const (
	formRateLimit  = 10
	formRateWindow = 10 * time.Minute
	honeypotField  = "website"
)

var formPage = template.Must(template.New("form").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Contact {{.Org}} support</title>
<style>body{background:#000;color:#eee;font:16px/1.5 Inter,system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}
h1{font-family:Cinzel,serif;color:#eab308}label{display:block;margin-top:1rem}input,textarea,select{width:100%;padding:.5rem;background:#111;color:#eee;border:1px solid #333;border-radius:4px}
button{margin-top:1.5rem;background:#eab308;color:#000;border:0;padding:.6rem 1.4rem;border-radius:4px;font-weight:600}.hp{position:absolute;left:-10000px}
.ok{border:1px solid #eab308;padding:1rem;border-radius:4px}</style></head><body>
<h1>{{.Org}} support</h1>
{{if .TicketID}}<p class="ok">Thank you — your request was received. Reference: <code>{{.TicketID}}</code>. We will reply by e-mail.</p>
{{else}}<form method="post" action="">
<label>Your name <input name="name" maxlength="200" autocomplete="name"></label>
<label>E-mail <input name="email" type="email" required maxlength="320" autocomplete="email"></label>
<label>Subject <input name="subject" required maxlength="1000"></label>
<label>How can we help? <textarea name="description" rows="8" required></textarea></label>
<label>Priority <select name="priority"><option value="low">Low</option><option value="medium" selected>Medium</option><option value="high">High</option><option value="critical">Critical</option></select></label>
<label class="hp" aria-hidden="true">Website <input name="website" tabindex="-1" autocomplete="off"></label>
<button type="submit">Send</button></form>{{end}}
</body></html>`))

type publicForm struct {
	OrgID uuid.UUID
	Name  string
}

func (s *Server) formOrg(r *http.Request) (*publicForm, error) {
	key := chi.URLParam(r, "formKey")
	var row struct {
		ID   uuid.UUID
		Name string
	}
	if len(key) < 8 || len(key) > 128 {
		return nil, apperr.New(apperr.NotFound, "Form not found.")
	}
	err := s.db.WithContext(r.Context()).Raw(`SELECT id, name FROM organizations WHERE form_key = ? AND is_active`, key).Scan(&row).Error
	if err != nil {
		return nil, database.Classify(err)
	}
	if row.ID == uuid.Nil {
		return nil, apperr.New(apperr.NotFound, "Form not found.")
	}
	return &publicForm{OrgID: row.ID, Name: row.Name}, nil
}

func (s *Server) handleFormPage(w http.ResponseWriter, r *http.Request) {
	f, err := s.formOrg(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors *")
	w.Header().Del("X-Frame-Options") // embeddable on the customer's site
	_ = formPage.Execute(w, map[string]any{"Org": f.Name, "TicketID": r.URL.Query().Get("received")})
}

func (s *Server) handleFormSubmit(w http.ResponseWriter, r *http.Request) {
	f, err := s.formOrg(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ok, retry, err := ratelimit.Allow(r.Context(), s.rdb, "form:"+f.OrgID.String()+":"+clientIPFrom(r.Context()), formRateLimit, formRateWindow)
	if err != nil {
		s.writeError(w, r, apperr.Wrap(apperr.Unavailable, "The form is temporarily unavailable.", err))
		return
	}
	if !ok {
		s.writeError(w, r, &apperr.Error{Kind: apperr.RateLimited, Msg: "Too many submissions from your address; try again later.", RetryAfter: retry})
		return
	}
	if !isForm(r) {
		s.writeError(w, r, apperr.New(apperr.Unsupported, "Send the form as application/x-www-form-urlencoded."))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxJSONBody)
	if err := r.ParseForm(); err != nil {
		s.writeError(w, r, apperr.Wrap(apperr.BadRequest, "Malformed form.", err))
		return
	}
	v := r.PostForm
	if v.Get(honeypotField) != "" {
		// A bot filled the hidden field: answer like a success, store nothing.
		s.log.InfoContext(r.Context(), "form honeypot triggered", "org_id", f.OrgID)
		http.Redirect(w, r, r.URL.Path+"?received="+uuid.NewString(), http.StatusSeeOther)
		return
	}
	email := strings.ToLower(strings.TrimSpace(v.Get("email")))
	// The same person sending the same text again (a double click, a
	// reload) within the hour is one submission.
	sum := sha256.Sum256([]byte(email + "\x00" + v.Get("subject") + "\x00" + v.Get("description") + "\x00" + time.Now().UTC().Format("2006-01-02T15")))
	rec, err := s.intake.Submit(r.Context(), ingest.Submission{
		Channel: pipeline.ChannelForm, OrgID: f.OrgID,
		Requester: pipeline.Requester{Email: email, Name: v.Get("name")},
		Subject:   v.Get("subject"), Description: v.Get("description"), Priority: v.Get("priority"),
		IdempotencyKey: "form:" + hex.EncodeToString(sum[:]), IdempotencyScope: "email:" + email,
		ClientIP: clientIPFrom(r.Context()), UserAgent: r.UserAgent(), RequestID: requestIDFrom(r.Context()),
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, http.StatusAccepted, intakeReceipt{TicketID: rec.TicketID, Status: "queued", Replayed: rec.Replayed})
		return
	}
	http.Redirect(w, r, r.URL.Path+"?received="+rec.TicketID.String(), http.StatusSeeOther)
}

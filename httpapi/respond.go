package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/atumdesk/atumdesk/internal/apperr"
)

// problemBase is the prefix of every problem type URI. Types are stable:
// clients may switch on them.
const problemBase = "https://atumdesk.dev/problems/"

// Problem is an RFC 9457 problem document.
type Problem struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Detail    string            `json:"detail,omitempty"`
	Instance  string            `json:"instance,omitempty"`
	Errors    map[string]string `json:"errors,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	Extra     map[string]any    `json:"-"`
}

// kindStatus is the one mapping from error kind to HTTP status.
var kindStatus = map[apperr.Kind]int{
	apperr.Invalid:      http.StatusUnprocessableEntity,
	apperr.BadRequest:   http.StatusBadRequest,
	apperr.Unauthorized: http.StatusUnauthorized,
	apperr.Forbidden:    http.StatusForbidden,
	apperr.NotFound:     http.StatusNotFound,
	apperr.Conflict:     http.StatusConflict,
	apperr.InvalidState: http.StatusConflict,
	apperr.TooLarge:     http.StatusRequestEntityTooLarge,
	apperr.Unsupported:  http.StatusUnsupportedMediaType,
	apperr.RateLimited:  http.StatusTooManyRequests,
	apperr.Unavailable:  http.StatusServiceUnavailable,
	apperr.Internal:     http.StatusInternalServerError,
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// writeError turns err into a problem document. Unclassified errors are
// logged and answered as 500 without detail.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e, ok := apperr.As(err)
	if !ok {
		e = apperr.Wrap(apperr.Internal, "Internal server error.", err)
	}
	status := kindStatus[e.Kind]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if status >= 500 && e.Kind != apperr.Unavailable {
		s.log.ErrorContext(r.Context(), "request failed", "err", err, "method", r.Method, "path", r.URL.Path)
	} else if e.Err != nil {
		s.log.DebugContext(r.Context(), "request rejected", "kind", e.Kind, "err", e.Err)
	}
	p := Problem{
		Type:      problemBase + string(e.Kind),
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    e.Msg,
		Instance:  r.URL.Path,
		Errors:    e.Fields,
		RequestID: requestIDFrom(r.Context()),
		Extra:     e.Extra,
	}
	if e.RetryAfter > 0 {
		secs := int(e.RetryAfter.Seconds() + 0.999)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	}
	writeProblem(w, p)
}

func writeProblem(w http.ResponseWriter, p Problem) {
	body := map[string]any{"type": p.Type, "title": p.Title, "status": p.Status}
	if p.Detail != "" {
		body["detail"] = p.Detail
	}
	if p.Instance != "" {
		body["instance"] = p.Instance
	}
	if len(p.Errors) > 0 {
		body["errors"] = p.Errors
	}
	if p.RequestID != "" {
		body["request_id"] = p.RequestID
	}
	for k, v := range p.Extra {
		if _, taken := body[k]; !taken {
			body[k] = v
		}
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(body)
}

// maxJSONBody bounds every JSON request body.
const maxJSONBody = 1 << 20

// decodeJSON reads exactly one JSON object into dst. Unknown fields are an
// error (mass-assignment protection): sending role or org_id where they are
// not accepted is a 400, never silently ignored.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	ct := r.Header.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return apperr.New(apperr.Unsupported, "Content-Type must be application/json.")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var tooLarge *http.MaxBytesError
		var syntax *json.SyntaxError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooLarge):
			return apperr.Wrap(apperr.TooLarge, "Request body too large.", err)
		case errors.Is(err, io.EOF):
			return apperr.New(apperr.BadRequest, "Request body must not be empty.")
		case errors.As(err, &syntax):
			return apperr.Wrap(apperr.BadRequest, fmt.Sprintf("Malformed JSON at offset %d.", syntax.Offset), err)
		case errors.As(err, &typeErr):
			return &apperr.Error{Kind: apperr.BadRequest, Msg: "A field has the wrong type.",
				Fields: map[string]string{typeErr.Field: "must be " + typeErr.Type.String()}, Err: err}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return &apperr.Error{Kind: apperr.BadRequest, Msg: "Unknown field.",
				Fields: map[string]string{field: "is not accepted here"}, Err: err}
		default:
			return apperr.Wrap(apperr.BadRequest, "Malformed JSON.", err)
		}
	}
	if dec.More() {
		return apperr.New(apperr.BadRequest, "Request body must hold a single JSON object.")
	}
	return nil
}

package models

import (
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// NewID returns a new UUIDv7: time-ordered, so primary-key B-trees grow at
// their right edge and ids sort roughly by creation time.
func NewID() uuid.UUID {
	return uuid.Must(uuid.NewV7())
}

// ensureID gives a row an id before INSERT when the caller did not.
func ensureID(id *uuid.UUID) {
	if *id == uuid.Nil {
		*id = NewID()
	}
}

// JSONB is a jsonb column holding raw JSON. The empty value is SQL NULL and
// JSON null. Columns declared NOT NULL with a default carry a gorm default tag,
// so leaving them empty on Create lets the database fill them.
type JSONB json.RawMessage

// GormDataType tells gorm the column type.
func (JSONB) GormDataType() string { return "jsonb" }

// Value implements driver.Valuer. JSON is sent as text so it works under both
// the extended and the simple query protocol.
func (j JSONB) Value() (driver.Value, error) {
	if len(j) == 0 {
		return nil, nil
	}
	if !json.Valid(j) {
		return nil, errors.New("models: JSONB value is not valid JSON")
	}
	return string(j), nil
}

// Scan implements sql.Scanner.
func (j *JSONB) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*j = nil
	case []byte:
		*j = append(JSONB(nil), v...)
	case string:
		*j = JSONB(v)
	default:
		return fmt.Errorf("models: cannot scan %T into JSONB", src)
	}
	return nil
}

// MarshalJSON emits the raw JSON (null when empty).
func (j JSONB) MarshalJSON() ([]byte, error) {
	if len(j) == 0 {
		return []byte("null"), nil
	}
	return j, nil
}

// UnmarshalJSON stores a copy of the raw JSON; JSON null becomes empty.
func (j *JSONB) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*j = nil
		return nil
	}
	*j = append(JSONB(nil), b...)
	return nil
}

// StringArray is a text[] column. Every text[] column in the schema is
// NOT NULL DEFAULT '{}', so a nil StringArray is stored as an empty array.
type StringArray []string

// GormDataType tells gorm the column type.
func (StringArray) GormDataType() string { return "text[]" }

// Value implements driver.Valuer using the array literal syntax.
func (a StringArray) Value() (driver.Value, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range a {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for _, r := range s {
			if r == '"' || r == '\\' {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String(), nil
}

// Scan implements sql.Scanner.
func (a *StringArray) Scan(src any) error {
	if src == nil {
		*a = nil
		return nil
	}
	lit, err := literal(src)
	if err != nil {
		return err
	}
	elems, err := parseArray(lit)
	if err != nil {
		return err
	}
	out := make(StringArray, len(elems))
	for i, e := range elems {
		if e == nil {
			return errors.New("models: NULL element in text[]")
		}
		out[i] = *e
	}
	*a = out
	return nil
}

// MarshalJSON emits [] rather than null for an empty array.
func (a StringArray) MarshalJSON() ([]byte, error) {
	if a == nil {
		return []byte("[]"), nil
	}
	return json.Marshal([]string(a))
}

// Float32Array is a real[] column (ticket embeddings). Nil is SQL NULL.
type Float32Array []float32

// GormDataType tells gorm the column type.
func (Float32Array) GormDataType() string { return "real[]" }

// Value implements driver.Valuer using the array literal syntax.
func (a Float32Array) Value() (driver.Value, error) {
	if a == nil {
		return nil, nil
	}
	var b strings.Builder
	b.Grow(len(a)*12 + 2)
	b.WriteByte('{')
	for i, f := range a {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatFloat(float64(f), 'g', -1, 32))
	}
	b.WriteByte('}')
	return b.String(), nil
}

// Scan implements sql.Scanner.
func (a *Float32Array) Scan(src any) error {
	if src == nil {
		*a = nil
		return nil
	}
	lit, err := literal(src)
	if err != nil {
		return err
	}
	elems, err := parseArray(lit)
	if err != nil {
		return err
	}
	out := make(Float32Array, len(elems))
	for i, e := range elems {
		if e == nil {
			return errors.New("models: NULL element in real[]")
		}
		f, err := strconv.ParseFloat(*e, 32)
		if err != nil {
			return fmt.Errorf("models: real[] element %q: %w", *e, err)
		}
		out[i] = float32(f)
	}
	*a = out
	return nil
}

func literal(src any) (string, error) {
	switch v := src.(type) {
	case []byte:
		return string(v), nil
	case string:
		return v, nil
	default:
		return "", fmt.Errorf("models: cannot scan %T into an array", src)
	}
}

// parseArray parses a one-dimensional PostgreSQL array literal such as
// {a,"b c",NULL}. A nil element is SQL NULL.
func parseArray(s string) ([]*string, error) {
	// An array with non-default bounds is printed as "[0:2]={...}".
	if strings.HasPrefix(s, "[") {
		if i := strings.Index(s, "="); i >= 0 {
			s = s[i+1:]
		}
	}
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, fmt.Errorf("models: malformed array literal %q", s)
	}
	body := s[1 : len(s)-1]
	if strings.TrimSpace(body) == "" {
		return []*string{}, nil
	}
	var out []*string
	i := 0
	for {
		for i < len(body) && body[i] == ' ' {
			i++
		}
		if i < len(body) && body[i] == '{' {
			return nil, errors.New("models: multi-dimensional arrays are not supported")
		}
		var elem strings.Builder
		quoted := i < len(body) && body[i] == '"'
		if quoted {
			i++
			closed := false
			for i < len(body) {
				c := body[i]
				if c == '\\' && i+1 < len(body) {
					elem.WriteByte(body[i+1])
					i += 2
					continue
				}
				i++
				if c == '"' {
					closed = true
					break
				}
				elem.WriteByte(c)
			}
			if !closed {
				return nil, fmt.Errorf("models: unterminated quote in array literal %q", s)
			}
			for i < len(body) && body[i] == ' ' {
				i++
			}
		} else {
			for i < len(body) && body[i] != ',' {
				c := body[i]
				if c == '\\' && i+1 < len(body) {
					elem.WriteByte(body[i+1])
					i += 2
					continue
				}
				elem.WriteByte(c)
				i++
			}
		}
		v := elem.String()
		if !quoted {
			v = strings.TrimSpace(v)
		}
		if !quoted && strings.EqualFold(v, "NULL") {
			out = append(out, nil)
		} else {
			out = append(out, &v)
		}
		if i >= len(body) {
			return out, nil
		}
		if body[i] != ',' {
			return nil, fmt.Errorf("models: malformed array literal %q", s)
		}
		i++
	}
}

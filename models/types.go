package models

import (
	"database/sql/driver"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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

// Vector is a float32 vector stored as bytea: each element little-endian
// in 4 bytes (ticket_embeddings.embedding). Sending and receiving it is a
// copy, where real[] cost a text rendering or a per-element conversion on
// both sides. Nil is SQL NULL.
type Vector []float32

// GormDataType tells gorm the column type.
func (Vector) GormDataType() string { return "bytea" }

// Value implements driver.Valuer.
func (v Vector) Value() (driver.Value, error) {
	if v == nil {
		return nil, nil
	}
	return v.Bytes(), nil
}

// Bytes returns the stored form of v.
func (v Vector) Bytes() []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// Scan implements sql.Scanner. It copies: pgx may reuse src.
func (v *Vector) Scan(src any) error {
	var b []byte
	switch s := src.(type) {
	case nil:
		*v = nil
		return nil
	case []byte:
		b = s
	case string:
		b = []byte(s)
	default:
		return fmt.Errorf("models: scan vector from %T", src)
	}
	if len(b)%4 != 0 {
		return fmt.Errorf("models: vector of %d bytes, not a multiple of 4", len(b))
	}
	out := make(Vector, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	*v = out
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

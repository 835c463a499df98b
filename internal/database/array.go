package database

import (
	"strings"

	"github.com/google/uuid"
)

// UUIDArray renders ids as one PostgreSQL array literal, to be passed as a
// single parameter and cast in the query (`id = ANY(?::uuid[])`): a batch of
// ids costs one bind value, not one placeholder each.
func UUIDArray(ids []uuid.UUID) string {
	var b strings.Builder
	b.Grow(2 + 37*len(ids))
	b.WriteByte('{')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(id.String())
	}
	b.WriteByte('}')
	return b.String()
}

package httpapi

import (
	"net/url"
	"strconv"

	"github.com/google/uuid"

	"github.com/atumdesk/atumdesk/internal/apperr"
)

// page is a keyset page request: items after a cursor (the last id seen;
// UUIDv7 ids sort by creation), at most Limit of them.
type page struct {
	After uuid.UUID
	Limit int
}

const (
	defaultPageSize = 50
	maxPageSize     = 200
)

func parsePage(v url.Values) (page, error) {
	p := page{Limit: defaultPageSize}
	fields := map[string]string{}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageSize {
			fields["limit"] = "must be 1.." + strconv.Itoa(maxPageSize)
		}
		p.Limit = n
	}
	if s := v.Get("after"); s != "" {
		id, err := uuid.Parse(s)
		if err != nil {
			fields["after"] = "must be a cursor returned as next_cursor"
		}
		p.After = id
	}
	return p, apperr.Fields(fields)
}

// pageResult is the list envelope.
type pageResult[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// pageOf trims the extra row fetched to detect a next page.
func pageOf[T any](rows []T, limit int, id func(T) uuid.UUID) pageResult[T] {
	res := pageResult[T]{Items: rows}
	if res.Items == nil {
		res.Items = []T{}
	}
	if len(rows) > limit {
		res.Items = rows[:limit]
		res.NextCursor = id(rows[limit-1]).String()
	}
	return res
}

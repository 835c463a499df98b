package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/uuid"
)

// Local is a Store on the local filesystem: dir/<last two hex digits of the
// key>/<key>. Put writes to dir/tmp first and renames into place, so a
// reader never sees a partial file. dir must be outside any web root; files
// are created 0600 and directories 0700.
type Local struct {
	dir string
}

// NewLocal creates dir (and its tmp subdirectory) when missing.
func NewLocal(dir string) (*Local, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("storage: create %s: %w", abs, err)
	}
	return &Local{dir: abs}, nil
}

// Dir is the absolute directory holding the files.
func (l *Local) Dir() string { return l.dir }

// Path is where key is stored. Only canonical UUID keys are accepted, so a
// key can never name anything outside dir.
func (l *Local) Path(key string) (string, error) {
	u, err := uuid.Parse(key)
	if err != nil || u.String() != key {
		return "", fmt.Errorf("storage: invalid key %q", key)
	}
	return filepath.Join(l.dir, key[len(key)-2:], key), nil
}

// Put implements Store.
func (l *Local) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	dst, err := l.Path(key)
	if err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Join(l.dir, "tmp"), "upload-*")
	if err != nil {
		return 0, fmt.Errorf("storage: temp file: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	n, err := io.Copy(tmp, ctxReader{ctx, r})
	if err != nil {
		return n, err // the caller's reader error (too large, client gone) as is
	}
	if err := tmp.Sync(); err != nil {
		return n, fmt.Errorf("storage: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return n, fmt.Errorf("storage: close: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return n, fmt.Errorf("storage: shard dir: %w", err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return n, fmt.Errorf("storage: rename: %w", err)
	}
	committed = true
	return n, nil
}

// Open implements Store.
func (l *Local) Open(_ context.Context, key string) (io.ReadSeekCloser, error) {
	p, err := l.Path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: open: %w", err)
	}
	return f, nil
}

// Delete implements Store.
func (l *Local) Delete(_ context.Context, key string) error {
	p, err := l.Path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage: delete: %w", err)
	}
	return nil
}

// ctxReader stops a copy when ctx is cancelled (client gone, shutdown).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

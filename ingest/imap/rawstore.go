package imap

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
)

// RawStore keeps raw messages on the filesystem, content-addressed:
// dir/<sha[0:2]>/<sha[2:4]>/<sha>.eml. The same bytes are stored once, a
// file is written to dir/tmp, fsynced and renamed into place, so a reader
// never sees a partial message. (internal/storage.Local accepts only UUID
// keys, hence this small store of its own.)
type RawStore struct {
	dir string
}

var shaHex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// NewRawStore creates dir (and dir/tmp) when missing.
func NewRawStore(dir string) (*RawStore, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("imap: raw store %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("imap: raw store: %w", err)
	}
	return &RawStore{dir: abs}, nil
}

// Path is where the message with this SHA-256 (lower-case hex) is stored.
func (s *RawStore) Path(sha string) (string, error) {
	if !shaHex.MatchString(sha) {
		return "", fmt.Errorf("imap: raw store: invalid sha256 %q", sha)
	}
	return filepath.Join(s.dir, sha[0:2], sha[2:4], sha+".eml"), nil
}

// Put stores raw and returns its SHA-256 and path. Storing bytes that are
// already there is a no-op.
func (s *RawStore) Put(raw []byte) (sha, path string, err error) {
	sum := sha256.Sum256(raw)
	sha = hex.EncodeToString(sum[:])
	path, _ = s.Path(sha)
	if fi, err := os.Stat(path); err == nil && fi.Size() == int64(len(raw)) {
		return sha, path, nil
	}
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "raw-*")
	if err != nil {
		return "", "", fmt.Errorf("imap: raw store: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(raw); err != nil {
		return "", "", fmt.Errorf("imap: raw store: write: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return "", "", fmt.Errorf("imap: raw store: sync: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return "", "", fmt.Errorf("imap: raw store: close: %w", err)
	}
	if err = os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", "", fmt.Errorf("imap: raw store: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return "", "", fmt.Errorf("imap: raw store: rename: %w", err)
	}
	return sha, path, nil
}

// Get reads the message with this SHA-256 and checks its content.
func (s *RawStore) Get(sha string) ([]byte, string, error) {
	path, err := s.Path(sha)
	if err != nil {
		return nil, "", err
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, path, fmt.Errorf("imap: raw message %s is missing from the raw store", sha)
	}
	if err != nil {
		return nil, path, fmt.Errorf("imap: raw store: %w", err)
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != sha {
		return nil, path, fmt.Errorf("imap: raw message %s does not match its SHA-256", sha)
	}
	return raw, path, nil
}

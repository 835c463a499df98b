// Package secretbox seals small secrets stored in the database (IMAP and
// SMTP passwords) with AES-256-GCM under a key from the environment
// (ATUMDESK_SECRET_KEY). A sealed value is bound to associated data chosen
// by the caller (e.g. the row's id), so it cannot be moved to another row.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the key length in bytes (AES-256).
const KeySize = 32

// version is the first byte of every sealed value; a key ring or another
// algorithm would take a new version.
const version byte = 1

// ErrOpen means a sealed value could not be opened: wrong key, tampered or
// moved to other associated data, or not a sealed value at all.
var ErrOpen = errors.New("secretbox: cannot open sealed value (wrong key, tampered, or bound to other data)")

// Box seals and opens values with one key. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
}

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secretbox: key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	return &Box{aead: aead}, nil
}

// ParseKey decodes a base64 key (standard or URL alphabet, padded or not),
// as given in ATUMDESK_SECRET_KEY, and checks its length.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != KeySize {
				return nil, fmt.Errorf("secretbox: key must decode to %d bytes, got %d", KeySize, len(k))
			}
			return k, nil
		}
	}
	return nil, errors.New("secretbox: key is not valid base64")
}

// FromBase64 is New(ParseKey(s)).
func FromBase64(s string) (*Box, error) {
	k, err := ParseKey(s)
	if err != nil {
		return nil, err
	}
	return New(k)
}

// Seal encrypts plaintext bound to ad: version || nonce || ciphertext+tag.
// Every call uses a fresh random nonce, so equal secrets seal differently.
func (b *Box) Seal(plaintext, ad []byte) ([]byte, error) {
	ns := b.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plaintext)+b.aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1 : 1+ns]); err != nil {
		return nil, fmt.Errorf("secretbox: nonce: %w", err)
	}
	return b.aead.Seal(out, out[1:1+ns], plaintext, b.additional(ad)), nil
}

// Open decrypts a value sealed with the same key and ad.
func (b *Box) Open(sealed, ad []byte) ([]byte, error) {
	ns := b.aead.NonceSize()
	if len(sealed) < 1+ns+b.aead.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	pt, err := b.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], b.additional(ad))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// additional binds the version byte too, so a value cannot be replayed
// under another format.
func (b *Box) additional(ad []byte) []byte {
	return append([]byte{version}, ad...)
}

package auth

import (
	"fmt"
	"unicode/utf8"

	"github.com/alexedwards/argon2id"
)

// Password length bounds (ASVS 2.1.1/2.1.2): at least 12, at most 128
// characters; no composition rules.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 128
)

// argonParams are OWASP's argon2id recommendation (m=19 MiB, t=2, p=1).
var argonParams = &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// dummyHash is compared against when no user matches, so that an unknown
// account costs the same time as a wrong password.
var dummyHash = mustHash("atumdesk-timing-equaliser-password")

// HashPassword returns the argon2id PHC string of password.
func HashPassword(password string) (string, error) {
	h, err := argon2id.CreateHash(password, argonParams)
	if err != nil {
		return "", fmt.Errorf("auth: hash password: %w", err)
	}
	return h, nil
}

// CheckPassword reports whether password matches hash. An empty hash (a
// user without a password) never matches but still costs one hash.
func CheckPassword(password, hash string) bool {
	if hash == "" {
		_, _ = argon2id.ComparePasswordAndHash(password, dummyHash)
		return false
	}
	ok, err := argon2id.ComparePasswordAndHash(password, hash)
	return err == nil && ok
}

// SpendPasswordTime runs one comparison against a dummy hash; used on the
// unknown-account path of login.
func SpendPasswordTime(password string) {
	_, _ = argon2id.ComparePasswordAndHash(password, dummyHash)
}

// ValidatePassword returns a user-facing reason when password is not
// acceptable, or "".
func ValidatePassword(password string) string {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLen:
		return fmt.Sprintf("must be at least %d characters", MinPasswordLen)
	case n > MaxPasswordLen:
		return fmt.Sprintf("must be at most %d characters", MaxPasswordLen)
	}
	return ""
}

func mustHash(p string) string {
	h, err := argon2id.CreateHash(p, argonParams)
	if err != nil {
		panic(err)
	}
	return h
}

package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Claims is what an access token says about its bearer. Role and org are
// re-read from the database on each request, so a demoted or deactivated
// user loses access at once; the token only names the user.
type Claims struct {
	jwt.RegisteredClaims
	OrgID uuid.UUID `json:"org"`
	Role  string    `json:"role"`
}

const (
	issuer   = "atumdesk"
	audience = "atumdesk-api"
)

// ErrInvalidToken is returned for any token that does not verify.
var ErrInvalidToken = errors.New("auth: invalid token")

// Tokens issues and verifies access tokens (HS256 JWTs).
type Tokens struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time
}

// NewTokens returns a token issuer; secret must be at least 32 bytes.
func NewTokens(secret []byte, ttl time.Duration) (*Tokens, error) {
	if len(secret) < 32 {
		return nil, errors.New("auth: token secret shorter than 32 bytes")
	}
	return &Tokens{secret: secret, ttl: ttl, now: time.Now}, nil
}

// TTL is the access-token lifetime.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue signs an access token for the user.
func (t *Tokens) Issue(userID, orgID uuid.UUID, role string) (string, error) {
	now := t.now()
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   userID.String(),
			Audience:  jwt.ClaimStrings{audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
			ID:        uuid.NewString(),
		},
		OrgID: orgID,
		Role:  role,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.secret)
	if err != nil {
		return "", fmt.Errorf("auth: sign token: %w", err)
	}
	return s, nil
}

// Verify checks signature, algorithm, issuer, audience and expiry.
func (t *Tokens) Verify(raw string) (*Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return t.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(t.now),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if _, err := uuid.Parse(c.Subject); err != nil {
		return nil, ErrInvalidToken
	}
	return &c, nil
}

// NewOpaqueToken returns a random URL-safe token and its SHA-256, which is
// what gets stored.
func NewOpaqueToken() (token string, hash []byte, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("auth: random: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashOpaqueToken(token), nil
}

// HashOpaqueToken is the stored form of an opaque token.
func HashOpaqueToken(token string) []byte {
	s := sha256.Sum256([]byte(token))
	return s[:]
}

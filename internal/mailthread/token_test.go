package mailthread

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestTokenRoundTrip(t *testing.T) {
	s := NewSigner([]byte("a deployment secret of some length"))
	id := uuid.Must(uuid.NewV7())
	subj := s.Subject("Printer on fire", id, 1234)
	if again := s.Subject("Re: "+subj, id, 1234); again != "Re: "+subj {
		t.Fatalf("token added twice: %q", again)
	}
	ref, ok := FromSubject("RE: AW: " + strings.ToUpper(subj))
	if !ok || ref.Number != 1234 || !s.Verify(ref, id) {
		t.Fatalf("subject token not read back: %+v %v", ref, ok)
	}
	addr := s.ReplyTo("support+old@example.com", id, 1234)
	if !strings.HasPrefix(addr, "support+atum1234-") || !strings.HasSuffix(addr, "@example.com") {
		t.Fatalf("reply-to %q", addr)
	}
	ref2, ok := FromAddress(addr)
	if !ok || ref2 != ref {
		t.Fatalf("address token %+v, want %+v", ref2, ref)
	}
}

func TestTokenRefusesForgeries(t *testing.T) {
	s := NewSigner([]byte("secret one"))
	id, other := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	ref, _ := FromSubject(s.Subject("x", id, 7))
	if s.Verify(ref, other) {
		t.Fatal("a tag verified for another ticket")
	}
	if NewSigner([]byte("secret two")).Verify(ref, id) {
		t.Fatal("a tag verified under another key")
	}
	for _, subj := range []string{"[ATUM#7]", "[ATUM#7-short]", "[ATUM#0-abcdefghij]", "ATUM#7-abcdefghij", "[ATUM#-abcdefghij]"} {
		if _, ok := FromSubject(subj); ok {
			t.Errorf("%q parsed as a token", subj)
		}
	}
	for _, a := range []string{"support@example.com", "support+x@example.com", "atum7-abcdefghij", "support+atum7-abcdefghi1@x"} {
		if _, ok := FromAddress(a); ok {
			t.Errorf("%q parsed as a token", a)
		}
	}
}

package models

import (
	"os"
	"strings"
	"testing"
)

// TestREADMETransitionsTable keeps the README's workflow table identical
// to the status machine.
func TestREADMETransitionsTable(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), strings.TrimSpace(TransitionsMarkdown())) {
		t.Fatal("README.md's transitions table differs from models.TransitionsMarkdown(); paste the new one")
	}
}

package mail

import "testing"

// TestAutomatic: the signs of a machine-written message, as opposed to the
// fields that only ask not to be answered automatically.
func TestAutomatic(t *testing.T) {
	cases := []struct {
		name    string
		headers []string
		auto    bool
	}{
		{"human", []string{"From: a@example.com"}, false},
		{"auto-submitted no", []string{"From: a@example.com", "Auto-Submitted: no"}, false},
		{"auto-replied", []string{"From: a@example.com", "Auto-Submitted: auto-replied"}, true},
		{"precedence list", []string{"From: a@example.com", "Precedence: list"}, true},
		{"x-autoreply", []string{"From: a@example.com", "X-Autoreply: yes"}, true},
		{"x-autorespond", []string{"From: a@example.com", "X-Autorespond: vacation"}, true},
		{"empty return-path", []string{"From: a@example.com", "Return-Path: <>"}, true},
		{"mailer-daemon", []string{"From: MAILER-DAEMON@mx.example.com"}, true},
		{"our loop header", []string{"From: a@example.com", LoopHeader + ": 7f3a"}, true},
		{"list-id only", []string{"From: a@example.com", "List-Id: <users.lists.example.org>"}, false},
		{"outlook suppress only", []string{"From: a@example.com", "X-Auto-Response-Suppress: All"}, false},
	}
	for _, c := range cases {
		m, err := Parse(msg(c.headers, "text"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if m.Loop.Automatic != c.auto {
			t.Errorf("%s: automatic=%v, want %v (%+v)", c.name, m.Loop.Automatic, c.auto, m.Loop)
		}
		if m.Loop.Automatic && !m.Loop.SuppressAutoReply {
			t.Errorf("%s: automatic without suppress", c.name)
		}
	}
}

func TestDeliveredTo(t *testing.T) {
	m, err := Parse(msg([]string{"From: a@example.com", "To: Support <support@acme.test>",
		"Delivered-To: support+atum12-abcdefghij@acme.test", "X-Original-To: other@acme.test"}, "text"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.DeliveredTo) != 2 || m.DeliveredTo[0].Email != "support+atum12-abcdefghij@acme.test" || m.DeliveredTo[1].Email != "other@acme.test" {
		t.Errorf("delivered to %+v", m.DeliveredTo)
	}
}

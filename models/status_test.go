package models

import (
	"strings"
	"testing"
	"time"
)

// TestCanTransitionEveryPair checks every (from, to) pair for every role,
// as requester and not, against the workflow written out independently of
// the Transitions table.
func TestCanTransitionEveryPair(t *testing.T) {
	// who may: "M" manager/admin, "S" any staff, "R" the requester.
	want := map[[2]TicketStatus]string{
		{StatusNew, StatusAccepted}:               "M",
		{StatusNew, StatusCancelled}:              "MR",
		{StatusAccepted, StatusAssigned}:          "M",
		{StatusAccepted, StatusCancelled}:         "MR",
		{StatusAssigned, StatusInProgress}:        "S",
		{StatusAssigned, StatusCancelled}:         "MR",
		{StatusInProgress, StatusWaitingCustomer}: "S",
		{StatusInProgress, StatusResolved}:        "S",
		{StatusInProgress, StatusCancelled}:       "MR",
		{StatusWaitingCustomer, StatusInProgress}: "S",
		{StatusWaitingCustomer, StatusResolved}:   "S",
		{StatusWaitingCustomer, StatusCancelled}:  "MR",
		{StatusResolved, StatusInProgress}:        "S",
		{StatusResolved, StatusClosed}:            "SR",
	}
	statuses := append(append([]TicketStatus{}, TicketStatuses...), TicketStatus("bogus"))
	roles := append(append([]Role{}, Roles...), Role("intruder"))
	checked := 0
	for _, from := range statuses {
		for _, to := range statuses {
			who := want[[2]TicketStatus{from, to}]
			for _, role := range roles {
				for _, isReq := range []bool{false, true} {
					exp := (strings.Contains(who, "M") && role.AtLeast(RoleManager)) ||
						(strings.Contains(who, "S") && role.IsStaff()) ||
						(strings.Contains(who, "R") && isReq && role.Valid())
					if got := CanTransition(from, to, role, isReq); got != exp {
						t.Errorf("%s -> %s by %s (requester=%v): got %v, want %v", from, to, role, isReq, got, exp)
					}
					checked++
				}
			}
		}
	}
	if checked != 9*9*6*2 {
		t.Fatalf("checked %d combinations", checked)
	}
}

func TestAllowedOrderAndTerminal(t *testing.T) {
	got := Allowed(StatusInProgress, RoleAdmin, false)
	want := []TicketStatus{StatusWaitingCustomer, StatusResolved, StatusCancelled}
	if strings.Join(toStrings(got), ",") != strings.Join(toStrings(want), ",") {
		t.Fatalf("Allowed(in_progress, admin) = %v, want %v", got, want)
	}
	for _, s := range []TicketStatus{StatusClosed, StatusCancelled} {
		if a := Allowed(s, RoleAdmin, true); a == nil || len(a) != 0 {
			t.Errorf("Allowed(%s) = %#v, want an empty non-nil list", s, a)
		}
		if !s.ReadOnly() || s.IsOpen() {
			t.Errorf("%s must be read-only and not open", s)
		}
	}
	for _, s := range []TicketStatus{StatusNew, StatusAccepted, StatusAssigned, StatusInProgress, StatusWaitingCustomer} {
		if s.ReadOnly() || !s.IsOpen() {
			t.Errorf("%s must be open and writable", s)
		}
	}
	if StatusResolved.ReadOnly() || StatusResolved.IsOpen() {
		t.Error("resolved is neither open nor read-only")
	}
	// Every transition's statuses are real and every status but the terminal
	// ones has a way out.
	out := map[TicketStatus]bool{}
	for _, tr := range Transitions {
		if !tr.From.Valid() || !tr.To.Valid() || len(tr.By) == 0 || tr.Via == "" {
			t.Errorf("malformed transition %+v", tr)
		}
		out[tr.From] = true
	}
	for _, s := range TicketStatuses {
		if out[s] == s.ReadOnly() {
			t.Errorf("%s: has transitions out = %v, read-only = %v", s, out[s], s.ReadOnly())
		}
	}
}

func TestAfterCustomerReply(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := now.Add(-d); return &v }
	week := DefaultReopenWindow
	cases := []struct {
		from       TicketStatus
		resolvedAt *time.Time
		window     time.Duration
		want       TicketStatus
		changed    bool
	}{
		{StatusWaitingCustomer, nil, week, StatusInProgress, true},
		{StatusResolved, at(time.Hour), week, StatusInProgress, true},
		{StatusResolved, at(week), week, StatusInProgress, true},
		{StatusResolved, at(week + time.Second), week, StatusResolved, false},
		{StatusResolved, at(2 * time.Hour), time.Hour, StatusResolved, false},
		{StatusResolved, nil, week, StatusResolved, false},
		{StatusNew, nil, week, StatusNew, false},
		{StatusAssigned, nil, week, StatusAssigned, false},
		{StatusInProgress, nil, week, StatusInProgress, false},
		{StatusClosed, at(time.Minute), week, StatusClosed, false},
		{StatusCancelled, nil, week, StatusCancelled, false},
	}
	for _, c := range cases {
		got, changed := AfterCustomerReply(c.from, c.resolvedAt, now, c.window)
		if got != c.want || changed != c.changed {
			t.Errorf("AfterCustomerReply(%s, %v, %s) = %s, %v; want %s, %v", c.from, c.resolvedAt, c.window, got, changed, c.want, c.changed)
		}
	}
}

func TestTransitionsMarkdown(t *testing.T) {
	md := TransitionsMarkdown()
	if !strings.HasPrefix(md, "| from | to | who | how |") {
		t.Fatalf("header missing:\n%s", md)
	}
	if n := strings.Count(md, "\n| "); n != len(Transitions)+1 {
		t.Errorf("want %d table rows, got %d:\n%s", len(Transitions)+1, n, md)
	}
	if !strings.Contains(md, "| new | accepted | manager |") || !strings.Contains(md, "| resolved | closed | staff, requester |") {
		t.Errorf("rows missing:\n%s", md)
	}
}

func toStrings(s []TicketStatus) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = string(v)
	}
	return out
}

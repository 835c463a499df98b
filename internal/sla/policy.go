package sla

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/atumdesk/atumdesk/internal/apperr"
	"github.com/atumdesk/atumdesk/internal/businesstime"
	"github.com/atumdesk/atumdesk/models"
)

// Limits on a policy's parts.
const (
	MaxNameLen    = 200
	MaxRules      = 10
	MaxNotify     = 20
	MaxPercent    = 1000
	MaxHolidays   = 1000
	MaxMinutes    = 525_600 // a year of minutes
	BreachPercent = 100
)

// Rule is one escalation step: when AtPercent of a clock's target has
// elapsed (in business time), Notify is told. Notify holds staff role names
// (agent, manager, admin), "assignee", or ids of staff users of the
// organisation. A rule at 100 goes with the breach; above 100 escalates
// after it.
type Rule struct {
	AtPercent int      `json:"at_percent"`
	Notify    []string `json:"notify"`
}

// NotifyAssignee in a rule's Notify means the ticket's assignee.
const NotifyAssignee = "assignee"

// Target is the pair of targets, in business minutes, a policy sets for
// one priority.
type Target struct {
	Priority             models.Priority `json:"priority"`
	FirstResponseMinutes int             `json:"first_response_minutes"`
	ResolutionMinutes    int             `json:"resolution_minutes"`
}

// Budget returns the target of metric m.
func (t Target) Budget(m models.SLAMetric) time.Duration {
	if m == models.SLAFirstResponse {
		return time.Duration(t.FirstResponseMinutes) * time.Minute
	}
	return time.Duration(t.ResolutionMinutes) * time.Minute
}

// Policy is an SLA policy with its targets. BusinessHours, Timezone and
// Holidays nil mean "the organisation's".
type Policy struct {
	ID               uuid.UUID              `json:"id"`
	OrgID            uuid.UUID              `json:"-"`
	Name             string                 `json:"name"`
	ServiceID        *uuid.UUID             `json:"service_id"`
	Priority         *models.Priority       `json:"priority"`
	UseBusinessHours bool                   `json:"use_business_hours"`
	BusinessHours    businesstime.Schedule  `json:"business_hours"`
	Timezone         *string                `json:"timezone"`
	Holidays         []businesstime.Holiday `json:"holidays"`
	EscalationRules  []Rule                 `json:"escalation_rules"`
	ClockStart       models.SLAClockStart   `json:"clock_start"`
	IsActive         bool                   `json:"is_active"`
	Targets          []Target               `json:"targets"`
	CreatedAt        time.Time              `json:"created_at"`
	UpdatedAt        time.Time              `json:"updated_at"`
}

// Target returns the policy's target for priority p.
func (p *Policy) Target(pr models.Priority) (Target, bool) {
	for _, t := range p.Targets {
		if t.Priority == pr {
			return t, true
		}
	}
	return Target{}, false
}

// Percents returns the percents at which p's timers fire for one clock:
// every rule's, and the breach, sorted and distinct.
func (p *Policy) Percents() []int {
	out := []int{BreachPercent}
	for _, r := range p.EscalationRules {
		out = append(out, r.AtPercent)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// RulesAt returns the levels (positions in EscalationRules) of the rules at
// percent.
func (p *Policy) RulesAt(percent int) []int {
	var out []int
	for i, r := range p.EscalationRules {
		if r.AtPercent == percent {
			out = append(out, i)
		}
	}
	return out
}

// policyFields are the JSON fields a client may write.
var policyFields = []string{"name", "service_id", "priority", "use_business_hours", "business_hours",
	"timezone", "holidays", "escalation_rules", "clock_start", "is_active", "targets"}

// newPolicy is a policy with the defaults of a create.
func newPolicy(orgID uuid.UUID) *Policy {
	return &Policy{OrgID: orgID, UseBusinessHours: true, ClockStart: models.ClockStartAccepted, IsActive: true,
		EscalationRules: []Rule{}}
}

// apply writes the given JSON fields onto p, collecting one message per bad
// field. An unknown field is a BadRequest (as for every request body).
func (p *Policy) apply(in map[string]json.RawMessage, fields map[string]string) error {
	for k := range in {
		if !slices.Contains(policyFields, k) {
			return &apperr.Error{Kind: apperr.BadRequest, Msg: "Unknown field.", Fields: map[string]string{k: "is not accepted here"}}
		}
	}
	isNull := func(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }
	decode := func(key string, dst any, msg string) bool {
		raw, ok := in[key]
		if !ok {
			return false
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			fields[key] = msg
			return false
		}
		return true
	}

	if raw, ok := in["name"]; ok {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			fields["name"] = "must be a string"
		} else {
			p.Name = strings.TrimSpace(s)
		}
	}
	if raw, ok := in["service_id"]; ok {
		if isNull(raw) {
			p.ServiceID = nil
		} else {
			var id uuid.UUID
			if json.Unmarshal(raw, &id) != nil {
				fields["service_id"] = "must be a service id or null"
			} else {
				p.ServiceID = &id
			}
		}
	}
	if raw, ok := in["priority"]; ok {
		if isNull(raw) {
			p.Priority = nil
		} else {
			var pr models.Priority
			if json.Unmarshal(raw, &pr) != nil || !pr.Valid() {
				fields["priority"] = "must be one of low, medium, high, critical, or null for any"
			} else {
				p.Priority = &pr
			}
		}
	}
	decode("use_business_hours", &p.UseBusinessHours, "must be true or false")
	decode("is_active", &p.IsActive, "must be true or false")
	if raw, ok := in["business_hours"]; ok {
		var s businesstime.Schedule
		if isNull(raw) {
			p.BusinessHours = nil
		} else if json.Unmarshal(raw, &s) != nil || s == nil {
			fields["business_hours"] = `must be an object like {"mon":[["09:00","17:00"]]}, or null for the organisation's`
		} else {
			p.BusinessHours = s
		}
	}
	if raw, ok := in["timezone"]; ok {
		var s string
		if isNull(raw) {
			p.Timezone = nil
		} else if json.Unmarshal(raw, &s) != nil {
			fields["timezone"] = "must be an IANA time zone name, or null for the organisation's"
		} else {
			s = strings.TrimSpace(s)
			p.Timezone = &s
		}
	}
	if raw, ok := in["holidays"]; ok {
		var hs []businesstime.Holiday
		if isNull(raw) {
			p.Holidays = nil
		} else if err := strictUnmarshal(raw, &hs); err != nil || hs == nil {
			fields["holidays"] = `must be an array like [{"date":"2026-12-24"},{"yearly":"12-25","hours":[["09:00","12:00"]]}], or null for the organisation's`
		} else {
			p.Holidays = hs
		}
	}
	if raw, ok := in["escalation_rules"]; ok {
		var rs []Rule
		if isNull(raw) {
			p.EscalationRules = []Rule{}
		} else if strictUnmarshal(raw, &rs) != nil || rs == nil {
			fields["escalation_rules"] = `must be an array like [{"at_percent":80,"notify":["manager"]}]`
		} else {
			p.EscalationRules = rs
		}
	}
	if raw, ok := in["clock_start"]; ok {
		var cs models.SLAClockStart
		if json.Unmarshal(raw, &cs) != nil || !cs.Valid() {
			fields["clock_start"] = "must be accepted or created"
		} else {
			p.ClockStart = cs
		}
	}
	if raw, ok := in["targets"]; ok {
		var ts []Target
		if strictUnmarshal(raw, &ts) != nil || ts == nil {
			fields["targets"] = `must be an array like [{"priority":"high","first_response_minutes":60,"resolution_minutes":480}]`
		} else {
			p.Targets = ts
		}
	}
	return nil
}

// strictUnmarshal decodes raw into dst refusing unknown object fields.
func strictUnmarshal(raw json.RawMessage, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}

// validate checks p's own fields (not those that need the database: the
// service and user ids, and the calendar, which may inherit from the
// organisation).
func (p *Policy) validate(fields map[string]string) {
	set := func(k, msg string) {
		if _, taken := fields[k]; !taken {
			fields[k] = msg
		}
	}
	if p.Name == "" || utf8.RuneCountInString(p.Name) > MaxNameLen {
		set("name", fmt.Sprintf("is required, at most %d characters", MaxNameLen))
	}
	if len(p.Targets) == 0 {
		set("targets", "must give at least one priority's targets")
	}
	seen := map[models.Priority]bool{}
	for i, t := range p.Targets {
		f := fmt.Sprintf("targets[%d]", i)
		switch {
		case !t.Priority.Valid():
			set(f+".priority", "must be one of low, medium, high, critical")
		case seen[t.Priority]:
			set(f+".priority", fmt.Sprintf("%s is given twice", t.Priority))
		}
		seen[t.Priority] = true
		if t.FirstResponseMinutes < 1 || t.FirstResponseMinutes > MaxMinutes {
			set(f+".first_response_minutes", fmt.Sprintf("must be 1..%d", MaxMinutes))
		}
		if t.ResolutionMinutes < 1 || t.ResolutionMinutes > MaxMinutes {
			set(f+".resolution_minutes", fmt.Sprintf("must be 1..%d", MaxMinutes))
		}
	}
	if p.Priority != nil && len(p.Targets) > 0 && !seen[*p.Priority] {
		set("targets", fmt.Sprintf("must include the policy's priority %s", *p.Priority))
	}
	if len(p.EscalationRules) > MaxRules {
		set("escalation_rules", fmt.Sprintf("at most %d rules", MaxRules))
	}
	percents := map[int]int{}
	for i, r := range p.EscalationRules {
		f := fmt.Sprintf("escalation_rules[%d]", i)
		if r.AtPercent < 1 || r.AtPercent > MaxPercent {
			set(f+".at_percent", fmt.Sprintf("must be 1..%d (100 is the breach)", MaxPercent))
		} else if j, dup := percents[r.AtPercent]; dup {
			set(f+".at_percent", fmt.Sprintf("%d%% is already escalation_rules[%d]", r.AtPercent, j))
		}
		percents[r.AtPercent] = i
		if len(r.Notify) == 0 || len(r.Notify) > MaxNotify {
			set(f+".notify", fmt.Sprintf("must name 1..%d recipients", MaxNotify))
		}
		for j, n := range r.Notify {
			if _, ok := notifyTarget(n); !ok {
				set(fmt.Sprintf("%s.notify[%d]", f, j), `must be agent, manager, admin, assignee or a staff user's id`)
			}
		}
	}
	if p.Timezone != nil && *p.Timezone == "" {
		set("timezone", "must be an IANA time zone name, or null for the organisation's")
	}
	if len(p.Holidays) > MaxHolidays {
		set("holidays", fmt.Sprintf("at most %d holidays", MaxHolidays))
	}
}

// notifyTarget parses one Notify entry: a role or "assignee" (returned as
// is, nil id), or a user id.
func notifyTarget(s string) (*uuid.UUID, bool) {
	switch s {
	case string(models.RoleAgent), string(models.RoleManager), string(models.RoleAdmin), NotifyAssignee:
		return nil, true
	}
	id, err := uuid.Parse(s)
	if err != nil || id == uuid.Nil {
		return nil, false
	}
	return &id, true
}

// notifyUsers lists the user ids the rules name.
func (p *Policy) notifyUsers() map[uuid.UUID][]string {
	out := map[uuid.UUID][]string{}
	for i, r := range p.EscalationRules {
		for j, n := range r.Notify {
			if id, ok := notifyTarget(n); ok && id != nil {
				out[*id] = append(out[*id], fmt.Sprintf("escalation_rules[%d].notify[%d]", i, j))
			}
		}
	}
	return out
}

// orgCalendar is the organisation's calendar settings, inherited by
// policies that leave theirs null.
type orgCalendar struct {
	Timezone      string
	BusinessHours json.RawMessage // null: 24×7
	Holidays      json.RawMessage
}

// allDay is the weekly schedule of a 24×7 organisation that has holidays.
var allDay = businesstime.Schedule{
	"mon": {{"00:00", "24:00"}}, "tue": {{"00:00", "24:00"}}, "wed": {{"00:00", "24:00"}},
	"thu": {{"00:00", "24:00"}}, "fri": {{"00:00", "24:00"}}, "sat": {{"00:00", "24:00"}}, "sun": {{"00:00", "24:00"}},
}

// calendar builds p's calendar, inheriting from org what p leaves null.
// The error joins *businesstime.FieldError values whose Field is already
// the policy's JSON field (timezone, business_hours…, holidays…), with
// "inherited from the organisation" said where the value came from there.
func (p *Policy) calendar(org orgCalendar) (*businesstime.Calendar, error) {
	var cfg businesstime.Config
	inherited := map[string]bool{}
	if p.Timezone != nil {
		cfg.TimeZone = *p.Timezone
	} else {
		cfg.TimeZone, inherited["timezone"] = org.Timezone, true
	}
	if !p.UseBusinessHours {
		loc, err := time.LoadLocation(cfg.TimeZone)
		if err != nil || cfg.TimeZone == "" || cfg.TimeZone == "Local" {
			return nil, mapCalendarError(&businesstime.FieldError{Field: "time_zone", Msg: fmt.Sprintf("unknown time zone %q", cfg.TimeZone)}, inherited)
		}
		return businesstime.Always(loc), nil
	}
	var errs []error
	switch {
	case p.BusinessHours != nil:
		cfg.Schedule = p.BusinessHours
	case len(org.BusinessHours) == 0 || string(org.BusinessHours) == "null":
		cfg.Schedule = allDay
	default:
		inherited["business_hours"] = true
		if err := json.Unmarshal(org.BusinessHours, &cfg.Schedule); err != nil {
			errs = append(errs, &businesstime.FieldError{Field: "schedule", Msg: "is not a weekly schedule"})
		}
	}
	if p.Holidays != nil {
		cfg.Holidays = p.Holidays
	} else if len(org.Holidays) > 0 && string(org.Holidays) != "null" {
		inherited["holidays"] = true
		if err := json.Unmarshal(org.Holidays, &cfg.Holidays); err != nil {
			errs = append(errs, &businesstime.FieldError{Field: "holidays", Msg: "is not a list of holidays"})
		}
	}
	if len(errs) > 0 {
		return nil, mapCalendarError(errors.Join(errs...), inherited)
	}
	cal, err := businesstime.New(cfg)
	if err != nil {
		return nil, mapCalendarError(err, inherited)
	}
	return cal, nil
}

// mapCalendarError renames businesstime's fields to the policy's.
func mapCalendarError(err error, inherited map[string]bool) error {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	out := make([]error, 0, len(list))
	for _, e := range list {
		fe, ok := e.(*businesstime.FieldError)
		if !ok {
			out = append(out, e)
			continue
		}
		field := fe.Field
		switch {
		case field == "time_zone":
			field = "timezone"
		case field == "schedule" || strings.HasPrefix(field, "schedule."):
			field = "business_hours" + strings.TrimPrefix(field, "schedule")
		}
		msg := fe.Msg
		if inherited[strings.FieldsFunc(field, func(r rune) bool { return r == '.' || r == '[' })[0]] {
			msg = "inherited from the organisation: " + msg
		}
		out = append(out, &businesstime.FieldError{Field: field, Msg: msg})
	}
	return errors.Join(out...)
}

// calendarFields turns a calendar error into API field errors.
func calendarFields(err error, fields map[string]string) {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		if fe, ok := e.(*businesstime.FieldError); ok {
			if _, taken := fields[fe.Field]; !taken {
				fields[fe.Field] = fe.Msg
			}
			continue
		}
		fields["business_hours"] = e.Error()
	}
}

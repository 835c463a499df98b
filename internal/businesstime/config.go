package businesstime

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is the JSON-friendly description of a calendar.
//
//	{"time_zone": "Europe/Berlin",
//	 "schedule": {"mon": [["09:00","12:00"],["13:00","17:00"]], "sat": [["22:00","06:00"]]},
//	 "holidays": [{"yearly": "12-25"}, {"date": "2026-12-24", "hours": [["09:00","12:00"]]}]}
type Config struct {
	// TimeZone is an IANA zone name such as "Europe/Berlin" or "UTC".
	TimeZone string `json:"time_zone"`
	// Schedule gives the weekly business hours.
	Schedule Schedule `json:"schedule"`
	// Holidays close dates or give them special hours.
	Holidays []Holiday `json:"holidays,omitempty"`
}

// Schedule maps a weekday key ("mon", "tue", "wed", "thu", "fri", "sat",
// "sun") to that day's intervals, each a pair of wall-clock times "HH:MM" (or
// "HH:MM:SS") in the calendar's zone. A missing or empty day is closed. An
// interval whose end is before or equal to its start runs past midnight into
// the next day; "24:00" is the end of the day and is allowed as an end only.
type Schedule map[string][][2]string

// Holiday closes one date (Date, "2006-01-02") or one date every year
// (Yearly, "01-02"; "02-29" applies in leap years only). Exactly one of Date
// and Yearly is set. When Hours is non-empty the date is open with those
// special hours instead of the weekly schedule; otherwise it is closed all
// day.
type Holiday struct {
	Date   string      `json:"date,omitempty"`
	Yearly string      `json:"yearly,omitempty"`
	Name   string      `json:"name,omitempty"` // for people; not used
	Hours  [][2]string `json:"hours,omitempty"`
}

// FieldError is one problem found in a Config. [New] returns all of them
// joined with errors.Join.
type FieldError struct {
	Field string // e.g. `schedule.mon[1]`, `holidays[2].date`, `time_zone`
	Msg   string
}

func (e *FieldError) Error() string {
	return "businesstime: " + e.Field + ": " + e.Msg
}

// dayKeys lists the schedule keys by time.Weekday.
var dayKeys = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// New validates cfg and builds its calendar. The error, if any, joins one
// *FieldError per problem.
func New(cfg Config) (*Calendar, error) {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}

	c := &Calendar{}
	switch tz := strings.TrimSpace(cfg.TimeZone); tz {
	case "":
		fail("time_zone", "required (an IANA zone name such as \"Europe/Berlin\" or \"UTC\")")
	case "Local":
		fail("time_zone", "\"Local\" depends on the machine; give an IANA zone name")
	default:
		loc, err := time.LoadLocation(tz)
		if err != nil {
			fail("time_zone", "unknown time zone %q", tz)
		}
		c.loc = loc
	}

	for key := range cfg.Schedule {
		if !slices.Contains(dayKeys[:], key) {
			fail("schedule."+key, "unknown day (want one of mon, tue, wed, thu, fri, sat, sun)")
		}
	}
	for wd, key := range dayKeys {
		spans, es := parseIntervals(cfg.Schedule[key], "schedule."+key)
		errs = append(errs, es...)
		c.weekly[wd] = spans
	}
	// Keep the errors in a stable order: the days above are walked in a
	// fixed order, the unknown keys come from a map.
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })

	datedAt := map[int64]int{}
	yearlyAt := map[[2]int]int{}
	var yearlyOpen bool
	for i, h := range cfg.Holidays {
		field := fmt.Sprintf("holidays[%d]", i)
		spans, es := parseIntervals(h.Hours, field+".hours")
		errs = append(errs, es...)
		switch {
		case h.Date != "" && h.Yearly != "":
			fail(field, "give either date or yearly, not both")
		case h.Date != "":
			d, err := time.Parse("2006-01-02", h.Date)
			if err != nil {
				fail(field+".date", "%q is not a date (want YYYY-MM-DD)", h.Date)
				continue
			}
			day := daysFromCivil(int64(d.Year()), int(d.Month()), d.Day())
			if j, dup := datedAt[day]; dup {
				fail(field+".date", "%s is already given by holidays[%d]", h.Date, j)
				continue
			}
			datedAt[day] = i
			c.dated = append(c.dated, datedRule{day: day, spans: spans})
		case h.Yearly != "":
			m, d, ok := parseMonthDay(h.Yearly)
			if !ok {
				fail(field+".yearly", "%q is not a month and day (want MM-DD)", h.Yearly)
				continue
			}
			if j, dup := yearlyAt[[2]int{m, d}]; dup {
				fail(field+".yearly", "%s is already given by holidays[%d]", h.Yearly, j)
				continue
			}
			yearlyAt[[2]int{m, d}] = i
			if c.yearly == nil {
				c.yearly = new([13][32]int32)
			}
			c.yearlyRules = append(c.yearlyRules, spans)
			c.yearly[m][d] = int32(len(c.yearlyRules)) // index+1
			yearlyOpen = yearlyOpen || len(spans) > 0
		default:
			fail(field, "set date (YYYY-MM-DD) or yearly (MM-DD)")
		}
	}
	slices.SortFunc(c.dated, func(a, b datedRule) int { return int(a.day - b.day) })

	// Refuse calendars that are never open again after some date: the
	// arithmetic would have nowhere to go.
	weeklyOpen := false
	for _, s := range c.weekly {
		weeklyOpen = weeklyOpen || len(s) > 0
	}
	if !weeklyOpen && !yearlyOpen {
		fail("schedule", "no business hours: give at least one interval on some weekday (or yearly special hours)")
	} else if !yearlyOpen && len(yearlyAt) == 366 {
		fail("holidays", "yearly holidays close every day of the year")
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c.always = len(c.dated) == 0 && c.yearly == nil && isAlways(&c.weekly)
	return c, nil
}

func isAlways(w *[7][]span) bool {
	for _, s := range w {
		if len(s) != 1 || s[0] != (span{0, secondsPerDay}) {
			return false
		}
	}
	return true
}

// parseIntervals parses and checks one day's intervals and returns them
// sorted by start.
func parseIntervals(list [][2]string, field string) ([]span, []error) {
	var errs []error
	fail := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	spans := make([]span, 0, len(list))
	src := make([]int, 0, len(list)) // index in list of each span
	for i, iv := range list {
		f := fmt.Sprintf("%s[%d]", field, i)
		start, ok1 := parseClock(iv[0])
		end, ok2 := parseClock(iv[1])
		if !ok1 {
			fail(f, "start %q is not a time (want HH:MM between 00:00 and 23:59)", iv[0])
		} else if start == secondsPerDay {
			fail(f, "start 24:00 is not allowed (use 00:00)")
			ok1 = false
		}
		if !ok2 {
			fail(f, "end %q is not a time (want HH:MM between 00:00 and 24:00)", iv[1])
		}
		if !ok1 || !ok2 {
			continue
		}
		if end <= start {
			end += secondsPerDay // runs past midnight
		}
		spans = append(spans, span{start: start, end: end})
		src = append(src, i)
	}
	order := make([]int, len(spans))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return spans[order[a]].start < spans[order[b]].start })
	sorted := make([]span, len(spans))
	for i, o := range order {
		sorted[i] = spans[o]
	}
	for i := 1; i < len(sorted); i++ {
		if sorted[i-1].end > sorted[i].start {
			a, b := src[order[i-1]], src[order[i]]
			fail(field, "intervals %d (%s-%s) and %d (%s-%s) overlap", a, list[a][0], list[a][1], b, list[b][0], list[b][1])
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return sorted, nil
}

// parseClock parses "H:MM", "HH:MM" or "HH:MM:SS" from 00:00 to 24:00 and
// returns seconds since midnight.
func parseClock(s string) (int32, bool) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, false
	}
	num := func(p string, minLen, maxLen, max int) (int, bool) {
		if len(p) < minLen || len(p) > maxLen {
			return 0, false
		}
		for _, r := range p {
			if r < '0' || r > '9' {
				return 0, false
			}
		}
		n, err := strconv.Atoi(p)
		return n, err == nil && n <= max
	}
	h, ok := num(parts[0], 1, 2, 24)
	if !ok {
		return 0, false
	}
	m, ok := num(parts[1], 2, 2, 59)
	if !ok {
		return 0, false
	}
	sec := 0
	if len(parts) == 3 {
		if sec, ok = num(parts[2], 2, 2, 59); !ok {
			return 0, false
		}
	}
	total := h*3600 + m*60 + sec
	if total > secondsPerDay {
		return 0, false
	}
	return int32(total), true
}

// parseMonthDay parses "MM-DD" (leap day allowed).
func parseMonthDay(s string) (m, d int, ok bool) {
	if len(s) != 5 || s[2] != '-' {
		return 0, 0, false
	}
	for i, r := range s {
		if i != 2 && (r < '0' || r > '9') {
			return 0, 0, false
		}
	}
	m, _ = strconv.Atoi(s[:2])
	d, _ = strconv.Atoi(s[3:])
	if m < 1 || m > 12 || d < 1 {
		return 0, 0, false
	}
	// 2000 is a leap year, so 02-29 passes.
	if d > time.Date(2000, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return 0, 0, false
	}
	return m, d, true
}

package businesstime

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestVectors runs every row of shared/data/sla/vectors.csv (published
// business-time facts from zendesk/biz, Intrepidd/working_hours and
// bokmann/business_time; see its README.md). No row is skipped. Where a
// row's `conventions` column names a choice this package does not make, the
// row's expected value is kept and our result is mapped explicitly:
//
//	at_close=next_opening      we return the closing instant; map r -> NextOpen(r)
//	zero_duration=roll_forward we return t for a zero budget; map r -> NextOpen(r)
//	day_result=next_opening    AddDays keeps the wall time; map r -> NextOpen(r)
//	elapsed=wall_clock         we count real time; map to the wall-clock reading
//	                           difference summed over the open intervals
//	result=rounded_to_second   we keep sub-seconds; map r -> r.Round(time.Second)
//	start_seconds=truncated    we keep them; map start -> start.Truncate(time.Minute)
//
// Our own choices (at_close=closing_instant, zero_duration=unchanged,
// start_seconds=kept, elapsed=absolute, day_result=same_wall_time) need no
// mapping. An unknown key or value fails the test.
func TestVectors(t *testing.T) {
	path := filepath.Join(repoRoot(t), "..", "shared", "data", "sla", "vectors.csv")
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("the SLA test vectors are required: %v", err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if len(records) < 2 {
		t.Fatalf("%s has no rows", path)
	}
	col := map[string]int{}
	for i, name := range records[0] {
		col[name] = i
	}
	for _, name := range []string{"id", "kind", "schedule_json", "time_zone", "holidays_json", "pauses_json", "start",
		"duration_minutes", "duration_days", "end", "expected", "conventions"} {
		if _, ok := col[name]; !ok {
			t.Fatalf("%s: no column %q", path, name)
		}
	}

	tally := map[string]int{}
	ran := 0
	for _, rec := range records[1:] {
		row := func(name string) string { return strings.TrimSpace(rec[col[name]]) }
		id := row("id")
		t.Run(id, func(t *testing.T) {
			mapped := runVector(t, row)
			key := row("kind") + ": " + strings.Join(mapped, ", ")
			if len(mapped) == 0 {
				key = row("kind") + ": no convention named"
			}
			tally[key]++
			ran++
		})
	}
	if ran != len(records)-1 {
		t.Fatalf("ran %d of %d rows", ran, len(records)-1)
	}
	keys := make([]string, 0, len(tally))
	for k := range tally {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("%d rows from %s", ran, path)
	for _, k := range keys {
		t.Logf("  %-55s %d", k, tally[k])
	}
}

// runVector checks one row and returns the conventions it named: "ours
// k=v" when the row follows our choice, "mapped k=v" when our result was
// mapped to the row's choice.
func runVector(t *testing.T, row func(string) string) (mapped []string) {
	t.Helper()
	var sched Schedule
	if err := json.Unmarshal([]byte(row("schedule_json")), &sched); err != nil {
		t.Fatalf("schedule_json: %v", err)
	}
	hols, err := vectorHolidays(row("holidays_json"))
	if err != nil {
		t.Fatalf("holidays_json: %v", err)
	}
	pauses, err := vectorPauses(row("pauses_json"))
	if err != nil {
		t.Fatalf("pauses_json: %v", err)
	}
	cal := mustNew(t, Config{TimeZone: row("time_zone"), Schedule: sched, Holidays: hols})
	loc := cal.Location()

	conv := map[string]string{}
	if c := row("conventions"); c != "" {
		for _, kv := range strings.Split(c, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok {
				t.Fatalf("conventions: bad entry %q", kv)
			}
			conv[k] = v
		}
	}
	use := func(key string) string { // marks a convention as handled
		v, named := conv[key]
		delete(conv, key)
		if named {
			ours := map[string]string{"at_close": "closing_instant", "zero_duration": "unchanged", "start_seconds": "kept",
				"elapsed": "absolute", "day_result": "same_wall_time"}
			if ours[key] == v {
				mapped = append(mapped, "ours "+key+"="+v)
			}
		}
		return v
	}
	defer func() {
		if len(conv) > 0 {
			t.Fatalf("conventions not mapped: %v (extend the mapping, do not skip the row)", conv)
		}
	}()

	dateOnly := func(s string) bool { return len(s) == len("2006-01-02") }
	var start time.Time
	if s := row("start"); dateOnly(s) {
		d, err := time.ParseInLocation(time.DateOnly, s, loc)
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		start = d
	} else {
		start = rfc(t, s)
	}
	switch v := use("start_seconds"); v {
	case "", "kept":
	case "truncated":
		start = start.Truncate(time.Minute)
		mapped = append(mapped, "mapped start_seconds=truncated")
	default:
		t.Fatalf("start_seconds=%s: unknown", v)
	}

	switch kind := row("kind"); kind {
	case "add":
		minutes, err := strconv.ParseFloat(row("duration_minutes"), 64)
		if err != nil {
			t.Fatalf("duration_minutes: %v", err)
		}
		d := time.Duration(math.Round(minutes*60*1000)) * time.Millisecond
		var got time.Time
		if len(pauses) > 0 {
			got = cal.AddExcluding(start, d, pauses)
			wantDur(t, "ElapsedExcluding(start, result)", cal.ElapsedExcluding(start, got, pauses), d)
		} else {
			got = cal.Add(start, d)
			wantTime(t, "AddExcluding without pauses", cal.AddExcluding(start, d, nil), got)
			wantDur(t, "Elapsed(start, result)", cal.Elapsed(start, got), d)
		}
		switch v := use("at_close"); v {
		case "", "closing_instant":
		case "next_opening":
			if cal.IsOpen(got) {
				t.Errorf("at_close=next_opening but our result %s is not a closing instant", got)
			}
			got = cal.NextOpen(got)
			mapped = append(mapped, "mapped at_close=next_opening")
		default:
			t.Fatalf("at_close=%s: unknown", v)
		}
		switch v := use("zero_duration"); v {
		case "", "unchanged":
		case "roll_forward":
			if d != 0 {
				t.Fatalf("zero_duration=roll_forward on a non-zero duration")
			}
			got = cal.NextOpen(got)
			mapped = append(mapped, "mapped zero_duration=roll_forward")
		default:
			t.Fatalf("zero_duration=%s: unknown", v)
		}
		switch v := use("result"); v {
		case "":
		case "rounded_to_second":
			got = got.Round(time.Second)
			mapped = append(mapped, "mapped result=rounded_to_second")
		default:
			t.Fatalf("result=%s: unknown", v)
		}
		wantTime(t, "due", got, rfc(t, row("expected")))

	case "elapsed":
		end := rfc(t, row("end"))
		want, err := strconv.ParseInt(row("expected"), 10, 64)
		if err != nil {
			t.Fatalf("expected: %v", err)
		}
		var got time.Duration
		if len(pauses) > 0 {
			got = cal.ElapsedExcluding(start, end, pauses)
		} else {
			got = cal.Elapsed(start, end)
		}
		switch v := use("elapsed"); v {
		case "", "absolute":
		case "wall_clock":
			if len(pauses) > 0 {
				t.Fatalf("elapsed=wall_clock with pauses: no mapping defined")
			}
			got = wallClockElapsed(cal, start, end)
			mapped = append(mapped, "mapped elapsed=wall_clock")
		default:
			t.Fatalf("elapsed=%s: unknown", v)
		}
		if got%time.Minute != 0 {
			t.Errorf("elapsed %v is not whole minutes", got)
		}
		wantDur(t, "elapsed", got, time.Duration(want)*time.Minute)

	case "business_days":
		n, err := strconv.Atoi(row("duration_days"))
		if err != nil {
			t.Fatalf("duration_days: %v", err)
		}
		got := cal.AddDays(start, n)
		switch v := use("day_result"); v {
		case "", "same_wall_time":
		case "next_opening":
			got = cal.NextOpen(got)
			mapped = append(mapped, "mapped day_result=next_opening")
		default:
			t.Fatalf("day_result=%s: unknown", v)
		}
		if exp := row("expected"); dateOnly(exp) {
			if g := got.In(loc).Format(time.DateOnly); g != exp {
				t.Errorf("date = %s, want %s", g, exp)
			}
		} else {
			wantTime(t, "result", got, rfc(t, exp))
		}

	default:
		t.Fatalf("unknown kind %q", kind)
	}
	return mapped
}

// wallClockElapsed is the wall-clock count of working_hours: each open
// interval counts as the difference of the wall-clock readings at its ends,
// so a 25-hour day from 00:00 to 24:00 counts 24 h.
func wallClockElapsed(cal *Calendar, from, to time.Time) time.Duration {
	reading := func(u time.Time) time.Duration {
		_, off := u.Zone()
		return time.Duration(u.Unix()+int64(off))*time.Second + time.Duration(u.Nanosecond())
	}
	var sum time.Duration
	for iv := range cal.Intervals(from, to) {
		sum += reading(iv.End) - reading(iv.Start)
	}
	return sum
}

// vectorHolidays reads holidays_json: a list of closed dates, or an object
// mapping dates to their hours ([] = closed).
func vectorHolidays(s string) ([]Holiday, error) {
	var dates []string
	if err := json.Unmarshal([]byte(s), &dates); err == nil {
		hs := make([]Holiday, len(dates))
		for i, d := range dates {
			hs[i] = Holiday{Date: d}
		}
		return hs, nil
	}
	var special map[string][][2]string
	if err := json.Unmarshal([]byte(s), &special); err != nil {
		return nil, fmt.Errorf("neither a list of dates nor an object of hours: %w", err)
	}
	var hs []Holiday
	for d, hours := range special {
		hs = append(hs, Holiday{Date: d, Hours: hours})
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].Date < hs[j].Date })
	return hs, nil
}

func vectorPauses(s string) ([]Interval, error) {
	var raw [][2]string
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, err
	}
	var ps []Interval
	for _, p := range raw {
		a, err := time.Parse(time.RFC3339Nano, p[0])
		if err != nil {
			return nil, err
		}
		b, err := time.Parse(time.RFC3339Nano, p[1])
		if err != nil {
			return nil, err
		}
		ps = append(ps, Interval{a, b})
	}
	return ps, nil
}

// repoRoot walks up from the package directory to the directory of go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the package directory")
		}
		dir = parent
	}
}

package businesstime

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// Zones with DST of whole hours, half hours (Lord Howe), odd offsets
// (Chatham, Kolkata) and midnight switches (Santiago, Havana).
var propZones = []string{
	"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
	"America/Santiago", "Pacific/Chatham", "Asia/Kolkata", "America/Havana",
}

var (
	transitionsOnce sync.Once
	transitions     map[string][]time.Time // 2024-2028, per zone
)

func zoneTransitions(name string) []time.Time {
	transitionsOnce.Do(func() {
		transitions = map[string][]time.Time{}
		for _, z := range propZones {
			loc, err := time.LoadLocation(z)
			if err != nil {
				panic(err)
			}
			for u := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC); u.Year() < 2028; {
				_, end := u.In(loc).ZoneBounds()
				if end.IsZero() {
					break
				}
				transitions[z] = append(transitions[z], end)
				u = end
			}
		}
	})
	return transitions[name]
}

func clock(min int) string { return fmt.Sprintf("%02d:%02d", min/60, min%60) }

// genIntervals draws up to max non-overlapping intervals of one day on a
// 15-minute grid; the last may run past midnight.
func genIntervals(t *rapid.T, label string, max int) [][2]string {
	n := rapid.IntRange(0, max).Draw(t, label+".n")
	if n == 0 {
		return nil
	}
	// Quarter hours of the day; often 00:00-04:00, where the zones switch.
	mark := rapid.OneOf(rapid.IntRange(0, 96), rapid.IntRange(0, 16))
	marks := rapid.SliceOfNDistinct(mark, 2*n, 2*n, rapid.ID[int]).Draw(t, label+".marks")
	slices.Sort(marks)
	var out [][2]string
	for i := 0; i < n; i++ {
		out = append(out, [2]string{clock(marks[2*i] * 15), clock(marks[2*i+1] * 15)})
	}
	if last := marks[2*n-1]; marks[2*n-2] < 96 && rapid.Bool().Draw(t, label+".overnight") {
		// Run the last one past midnight: its end at or before its start.
		start := marks[2*n-2]
		end := rapid.IntRange(0, start).Draw(t, label+".end")
		out[n-1] = [2]string{clock(start * 15), clock(end * 15)}
		_ = last
	}
	return out
}

func genConfig(t *rapid.T) Config {
	cfg := Config{TimeZone: rapid.SampledFrom(propZones).Draw(t, "zone"), Schedule: Schedule{}}
	open := false
	for _, key := range dayKeys {
		if iv := genIntervals(t, key, 3); len(iv) > 0 {
			cfg.Schedule[key] = iv
			open = true
		}
	}
	if !open {
		cfg.Schedule["mon"] = [][2]string{{"09:00", "17:00"}}
	}
	seen := map[string]bool{}
	for i := range rapid.IntRange(0, 6).Draw(t, "holidays") {
		var h Holiday
		if rapid.Bool().Draw(t, fmt.Sprintf("h%d.yearly", i)) {
			d := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rapid.IntRange(0, 365).Draw(t, fmt.Sprintf("h%d.md", i)))
			h.Yearly = d.Format("01-02")
		} else {
			d := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, rapid.IntRange(0, 2*365).Draw(t, fmt.Sprintf("h%d.day", i)))
			h.Date = d.Format(time.DateOnly)
		}
		if seen[h.Yearly+h.Date] {
			continue
		}
		seen[h.Yearly+h.Date] = true
		h.Hours = genIntervals(t, fmt.Sprintf("h%d.hours", i), 2)
		cfg.Holidays = append(cfg.Holidays, h)
	}
	return cfg
}

// rapid biases integers toward small values, so wide ranges are built
// from narrow draws: a day, a minute of the day, a second, nanoseconds.

// genInstant draws an instant in 2025-2026, often within days of a DST
// switch of the zone, with random seconds and sub-seconds.
func genInstant(t *rapid.T, label, zone string) time.Time {
	jitter := time.Duration(rapid.IntRange(0, 59).Draw(t, label+".s"))*time.Second +
		time.Duration(rapid.SampledFrom([]int64{0, 0, 1, 500_000_000, 999_999_999, 123_456_789}).Draw(t, label+".ns"))
	if trs := zoneTransitions(zone); len(trs) > 0 && rapid.Bool().Draw(t, label+".nearSwitch") {
		tr := trs[rapid.IntRange(0, len(trs)-1).Draw(t, label+".switch")]
		quarters := rapid.IntRange(-3*96, 3*96).Draw(t, label+".quarters") // ±3 days
		return tr.Add(time.Duration(quarters)*15*time.Minute + jitter)
	}
	day := rapid.IntRange(0, 2*365).Draw(t, label+".day")
	minute := rapid.IntRange(0, 24*60-1).Draw(t, label+".minute")
	return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, day).Add(time.Duration(minute)*time.Minute + jitter)
}

// genDuration draws a duration in [0, max]: a count of a random unit, at
// times with sub-seconds.
func genDuration(t *rapid.T, label string, max time.Duration) time.Duration {
	unit := rapid.SampledFrom([]time.Duration{time.Nanosecond, time.Second, time.Minute, 15 * time.Minute, time.Hour, 24 * time.Hour}).Draw(t, label+".unit")
	limit := min(int64(max/unit), 100_000)
	d := time.Duration(rapid.Int64Range(0, limit).Draw(t, label+".n")) * unit
	if rapid.Bool().Draw(t, label+".frac") {
		d += time.Duration(rapid.Int64Range(0, int64(time.Second)).Draw(t, label+".frac.ns"))
	}
	return min(d, max)
}

func genCalendar(t *rapid.T) (*Calendar, Config) {
	cfg := genConfig(t)
	cal, err := New(cfg)
	if err != nil {
		t.Fatalf("generated config rejected: %v\n%+v", err, cfg)
	}
	return cal, cfg
}

func TestPropertyAddElapsedInverse(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cal, cfg := genCalendar(t)
		start := genInstant(t, "t", cfg.TimeZone)
		d := genDuration(t, "d", 2000*time.Hour)
		due := cal.Add(start, d)
		if due.Before(start) {
			t.Fatalf("Add went back: %s -> %s", start, due)
		}
		if got := cal.Elapsed(start, due); got != d {
			t.Fatalf("Elapsed(t, Add(t, %v)) = %v (t=%s, due=%s)", d, got, start, due)
		}
		// The earliest such instant: just before it, less has elapsed.
		if d > 0 && cal.Elapsed(start, due.Add(-time.Nanosecond)) != d-time.Nanosecond {
			t.Fatalf("Add(t, %v) = %s is not the earliest instant", d, due)
		}
	})
}

func TestPropertyAddMonotonicAndComposes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cal, cfg := genCalendar(t)
		start := genInstant(t, "t", cfg.TimeZone)
		a := genDuration(t, "a", 500*time.Hour)
		b := genDuration(t, "b", 500*time.Hour)
		ra, rab := cal.Add(start, a), cal.Add(start, a+b)
		if rab.Before(ra) {
			t.Fatalf("Add(t, %v) = %s before Add(t, %v) = %s", a+b, rab, a, ra)
		}
		if got := cal.Add(ra, b); !got.Equal(rab) {
			t.Fatalf("Add(Add(t, a), b) = %s, Add(t, a+b) = %s", got, rab)
		}
	})
}

func TestPropertyElapsedAdditive(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cal, cfg := genCalendar(t)
		a := genInstant(t, "a", cfg.TimeZone)
		b := a.Add(genDuration(t, "ab", 60*24*time.Hour))
		c := b.Add(genDuration(t, "bc", 60*24*time.Hour))
		ab, bc, ac := cal.Elapsed(a, b), cal.Elapsed(b, c), cal.Elapsed(a, c)
		if ab < 0 || bc < 0 || ab > b.Sub(a) || bc > c.Sub(b) {
			t.Fatalf("Elapsed out of range: %v of %v, %v of %v", ab, b.Sub(a), bc, c.Sub(b))
		}
		if ab+bc != ac {
			t.Fatalf("Elapsed(a,b)+Elapsed(b,c) = %v + %v != Elapsed(a,c) = %v", ab, bc, ac)
		}
		if cal.Elapsed(c, a) != -ac {
			t.Fatal("Elapsed not antisymmetric")
		}
		var sum time.Duration
		var last time.Time
		for iv := range cal.Intervals(a, c) {
			if !iv.Start.Before(iv.End) || iv.Start.Before(a) || iv.End.After(c) || (!last.IsZero() && !last.Before(iv.Start)) {
				t.Fatalf("bad interval %v (previous end %s)", iv, last)
			}
			if !cal.IsOpen(iv.Start) || (iv.End.Before(c) && cal.IsOpen(iv.End)) {
				t.Fatalf("interval %v: open at start %v, open at end %v", iv, cal.IsOpen(iv.Start), cal.IsOpen(iv.End))
			}
			sum += iv.End.Sub(iv.Start)
			last = iv.End
		}
		if sum != ac {
			t.Fatalf("sum of Intervals %v != Elapsed %v", sum, ac)
		}
	})
}

func TestPropertyIsOpenNextOpen(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cal, cfg := genCalendar(t)
		x := genInstant(t, "x", cfg.TimeZone)
		next := cal.NextOpen(x)
		if next.Before(x) {
			t.Fatalf("NextOpen(%s) = %s is before", x, next)
		}
		if cal.IsOpen(x) != next.Equal(x) {
			t.Fatalf("IsOpen(%s) = %v but NextOpen = %s", x, cal.IsOpen(x), next)
		}
		if !cal.IsOpen(next) {
			t.Fatalf("closed at NextOpen(%s) = %s", x, next)
		}
		if cal.Elapsed(x, next) != 0 || cal.Elapsed(x, next.Add(time.Nanosecond)) != time.Nanosecond {
			t.Fatalf("NextOpen(%s) = %s is not the first open instant", x, next)
		}
		if !cal.Add(x, time.Nanosecond).Equal(next.Add(time.Nanosecond)) {
			t.Fatal("Add(x, 1ns) != NextOpen(x)+1ns")
		}
	})
}

func TestPropertyPauses(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cal, cfg := genCalendar(t)
		start := genInstant(t, "t", cfg.TimeZone)
		var pauses []Interval
		for i := range rapid.IntRange(0, 4).Draw(t, "pauses") {
			a := start.Add(genDuration(t, fmt.Sprintf("p%d.from", i), 20*24*time.Hour) - 2*24*time.Hour)
			pauses = append(pauses, Interval{a, a.Add(genDuration(t, fmt.Sprintf("p%d.len", i), 4*24*time.Hour))})
		}
		d := genDuration(t, "d", 300*time.Hour)
		due := cal.AddExcluding(start, d, pauses)
		if got := cal.ElapsedExcluding(start, due, pauses); got != d {
			t.Fatalf("ElapsedExcluding(t, AddExcluding(t, %v)) = %v", d, got)
		}
		if due.Before(cal.Add(start, d)) {
			t.Fatal("pauses made the due time earlier")
		}
		// Pauses that end before the due time extend it by the business
		// time they cover.
		allBefore := true
		var paused time.Duration
		for _, p := range normalizePauses(pauses) {
			allBefore = allBefore && !p.End.After(due)
			lo := p.Start
			if lo.Before(start) {
				lo = start
			}
			if lo.Before(p.End) {
				paused += cal.Elapsed(lo, p.End)
			}
		}
		if allBefore && !cal.Add(cal.Add(start, d), paused).Equal(due) {
			t.Fatalf("due %s != Add(Add(t, d), paused %v) = %s", due, paused, cal.Add(cal.Add(start, d), paused))
		}
	})
}

// TestPropertyMatchesReference compares the calendar with a slow, separate
// model built from the Config: per-date intervals from the strings, wall
// times mapped to instants by searching the zone's offsets and switches.
func TestPropertyMatchesReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cal, cfg := genCalendar(t)
		ref := newRefModel(cfg)
		from := genInstant(t, "from", cfg.TimeZone)
		to := from.Add(24*time.Hour + genDuration(t, "span", 7*24*time.Hour))
		ivs := ref.intervals(from.Add(-3*24*time.Hour), to.Add(40*24*time.Hour))

		if got, want := cal.Elapsed(from, to), refElapsed(ivs, from, to); got != want {
			t.Fatalf("Elapsed(%s, %s) = %v, reference %v", from, to, got, want)
		}
		xs := []time.Time{}
		for i := range 5 {
			xs = append(xs, from.Add(time.Duration(rapid.Int64Range(0, int64(to.Sub(from))).Draw(t, fmt.Sprintf("x%d", i)))))
		}
		// Every quarter hour from 4 h before to 4 h after each switch.
		for _, tr := range zoneTransitions(cfg.TimeZone) {
			if tr.After(from.Add(-4*time.Hour)) && tr.Before(to.Add(4*time.Hour)) {
				for k := -16; k <= 16; k++ {
					xs = append(xs, tr.Add(time.Duration(k)*15*time.Minute))
				}
			}
		}
		for _, x := range xs {
			if got, want := cal.IsOpen(x), refOpen(ivs, x); got != want {
				t.Fatalf("IsOpen(%s) = %v, reference %v", x.In(cal.loc), got, want)
			}
		}
		if want, ok := refNextOpen(ivs, from); ok {
			if got := cal.NextOpen(from); !got.Equal(want) {
				t.Fatalf("NextOpen(%s) = %s, reference %s", from, got, want)
			}
		}
		// A budget that the reference window surely covers.
		d := time.Duration(rapid.Float64Range(0, 1).Draw(t, "frac") * float64(refElapsed(ivs, from, from.Add(30*24*time.Hour))))
		if want, ok := refAdd(ivs, from, d); ok {
			if got := cal.Add(from, d); !got.Equal(want) {
				t.Fatalf("Add(%s, %v) = %s, reference %s", from, d, got, want)
			}
		}
	})
}

// refModel is the reference: deliberately simple and slow.
type refModel struct {
	cfg Config
	loc *time.Location
}

func newRefModel(cfg Config) refModel {
	loc, err := time.LoadLocation(cfg.TimeZone)
	if err != nil {
		panic(err)
	}
	return refModel{cfg, loc}
}

// hours returns the intervals of one date as minutes after its midnight.
func (m refModel) hours(date time.Time) [][2]int {
	pick := func(list [][2]string) [][2]int {
		var out [][2]int
		for _, iv := range list {
			a, b := refMinutes(iv[0]), refMinutes(iv[1])
			if b <= a {
				b += 24 * 60
			}
			out = append(out, [2]int{a, b})
		}
		return out
	}
	for _, h := range m.cfg.Holidays {
		if h.Date == date.Format(time.DateOnly) {
			return pick(h.Hours)
		}
	}
	for _, h := range m.cfg.Holidays {
		if h.Yearly != "" && h.Yearly == date.Format("01-02") {
			return pick(h.Hours)
		}
	}
	return pick(m.cfg.Schedule[strings.ToLower(date.Weekday().String()[:3])])
}

func refMinutes(s string) int {
	h, m, _ := strings.Cut(s, ":")
	hh, _ := strconv.Atoi(h)
	mm, _ := strconv.Atoi(m)
	return hh*60 + mm
}

// wall returns the clock reading at u as seconds of a zone-less calendar.
func (m refModel) wall(u time.Time) int64 {
	lt := u.In(m.loc)
	y, mo, d := lt.Date()
	h, mi, s := lt.Clock()
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC).Unix()
}

// instant: the earliest instant whose clock reads w or later. The answer is
// either w minus an offset in force nearby or a switch instant; try all.
func (m refModel) instant(w int64) time.Time {
	var cands []time.Time
	offsets := map[int]bool{}
	prevOff := 0
	for i, u := 0, time.Unix(w-2*86400, 0); i <= 4*24; i, u = i+1, u.Add(time.Hour) {
		_, off := u.In(m.loc).Zone()
		offsets[off] = true
		if i > 0 && off != prevOff { // a switch in (u-1h, u]: bisect it
			lo, hi := u.Add(-time.Hour), u
			for hi.Sub(lo) > time.Second {
				mid := lo.Add(hi.Sub(lo) / 2).Truncate(time.Second)
				if _, o := mid.In(m.loc).Zone(); o == prevOff {
					lo = mid
				} else {
					hi = mid
				}
			}
			cands = append(cands, hi)
		}
		prevOff = off
	}
	for off := range offsets {
		cands = append(cands, time.Unix(w-int64(off), 0))
	}
	var best time.Time
	for _, c := range cands {
		if m.wall(c) >= w && (best.IsZero() || c.Before(best)) {
			best = c
		}
	}
	return best
}

func (m refModel) intervals(from, to time.Time) []Interval {
	var raw []Interval
	y, mo, d := from.In(m.loc).Date()
	for date := time.Date(y, mo, d-1, 0, 0, 0, 0, time.UTC); !date.After(to.UTC().AddDate(0, 0, 1)); date = date.AddDate(0, 0, 1) {
		for _, iv := range m.hours(date) {
			s := m.instant(date.Unix() + int64(iv[0])*60)
			e := m.instant(date.Unix() + int64(iv[1])*60)
			if s.Before(e) {
				raw = append(raw, Interval{s, e})
			}
		}
	}
	slices.SortFunc(raw, func(a, b Interval) int { return a.Start.Compare(b.Start) })
	var out []Interval
	for _, iv := range raw {
		if n := len(out); n > 0 && !iv.Start.After(out[n-1].End) {
			if iv.End.After(out[n-1].End) {
				out[n-1].End = iv.End
			}
			continue
		}
		out = append(out, iv)
	}
	return out
}

func refElapsed(ivs []Interval, from, to time.Time) time.Duration {
	var sum time.Duration
	for _, iv := range ivs {
		lo, hi := iv.Start, iv.End
		if lo.Before(from) {
			lo = from
		}
		if hi.After(to) {
			hi = to
		}
		if lo.Before(hi) {
			sum += hi.Sub(lo)
		}
	}
	return sum
}

func refOpen(ivs []Interval, x time.Time) bool {
	for _, iv := range ivs {
		if !x.Before(iv.Start) && x.Before(iv.End) {
			return true
		}
	}
	return false
}

func refNextOpen(ivs []Interval, x time.Time) (time.Time, bool) {
	for _, iv := range ivs {
		if iv.End.After(x) {
			if iv.Start.After(x) {
				return iv.Start, true
			}
			return x, true
		}
	}
	return time.Time{}, false
}

func refAdd(ivs []Interval, x time.Time, d time.Duration) (time.Time, bool) {
	if d <= 0 {
		return x, true
	}
	for _, iv := range ivs {
		if !iv.End.After(x) {
			continue
		}
		p := iv.Start
		if p.Before(x) {
			p = x
		}
		if avail := iv.End.Sub(p); d <= avail {
			return p.Add(d), true
		} else {
			d -= avail
		}
	}
	return time.Time{}, false
}

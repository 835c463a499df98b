package businesstime

import (
	"iter"
	"slices"
	"time"
)

// Calendar is a time zone, a weekly schedule and holidays. Build one with
// [New] or [Always]; the zero value is not usable. It is immutable and safe
// for concurrent use.
type Calendar struct {
	loc         *time.Location
	weekly      [7][]span      // by time.Weekday, sorted, non-overlapping
	dated       []datedRule    // sorted by day
	yearly      *[13][32]int32 // [month][day] -> index+1 into yearlyRules; nil when none
	yearlyRules [][]span
	always      bool // open at every instant: pure time arithmetic
}

// span is one interval of a day in seconds since that day's midnight (wall
// clock); end > start and end may pass 86400 (past midnight).
type span struct {
	start, end int32
}

type datedRule struct {
	day   int64
	spans []span // empty: closed all day
}

// Interval is a half-open stretch of time [Start, End).
type Interval struct {
	Start, End time.Time
}

// Always returns a calendar that is open at every instant (24×7) in loc
// (nil means UTC). The zone matters only for AddDays and Intervals.
func Always(loc *time.Location) *Calendar {
	if loc == nil {
		loc = time.UTC
	}
	c := &Calendar{loc: loc, always: true}
	for i := range c.weekly {
		c.weekly[i] = []span{{0, secondsPerDay}}
	}
	return c
}

// Location returns the calendar's time zone.
func (c *Calendar) Location() *time.Location { return c.loc }

// Add returns the earliest instant at which d of business time has elapsed
// since t: a budget that runs out exactly at a closing time gives the closing
// instant, and d <= 0 gives t unchanged (see the package conventions). The
// result is in t's location.
func (c *Calendar) Add(t time.Time, d time.Duration) time.Time {
	t = t.Round(0)
	if d <= 0 {
		return t
	}
	if c.always {
		return t.Add(d)
	}
	// Instants as whole seconds plus nanoseconds; interval boundaries are
	// whole seconds.
	k := c.cursorAt(t)
	ts, tn := t.Unix(), int64(t.Nanosecond())
	rem := int64(d)
	for {
		s, e := k.next()
		if e <= ts { // e <= t
			continue
		}
		ps, pn := ts, tn // max(s, t)
		if s > ts {
			ps, pn = s, 0
		}
		avail := (e-ps)*1e9 - pn
		if rem <= avail {
			return time.Unix(ps, pn+rem).In(t.Location())
		}
		rem -= avail
	}
}

// Elapsed returns the business time in [from, to); it is -Elapsed(to, from)
// when to is before from.
func (c *Calendar) Elapsed(from, to time.Time) time.Duration {
	if to.Before(from) {
		return -c.Elapsed(to, from)
	}
	if c.always {
		return to.Sub(from)
	}
	k := c.cursorAt(from)
	fs, fn := from.Unix(), int64(from.Nanosecond())
	us, un := to.Unix(), int64(to.Nanosecond())
	var sum int64
	for {
		s, e := k.next()
		if e <= fs { // e <= from
			continue
		}
		if s > us || (s == us && un == 0) { // s >= to
			return time.Duration(sum)
		}
		ls, ln := s, int64(0) // max(s, from)
		if s <= fs {
			ls, ln = fs, fn
		}
		hs, hn := e, int64(0) // min(e, to)
		if us < e {           // to < e
			hs, hn = us, un
		}
		sum += (hs-ls)*1e9 + hn - ln
	}
}

// NextOpen returns t when the calendar is open at t, otherwise the next
// opening after t. The result is in t's location.
func (c *Calendar) NextOpen(t time.Time) time.Time {
	t = t.Round(0)
	if c.always {
		return t
	}
	k := c.cursorAt(t)
	ts := t.Unix()
	for {
		s, e := k.next()
		if e <= ts {
			continue
		}
		if s > ts {
			return time.Unix(s, 0).In(t.Location())
		}
		return t
	}
}

// IsOpen reports whether t is within business hours (openings included,
// closings excluded).
func (c *Calendar) IsOpen(t time.Time) bool {
	if c.always {
		return true
	}
	k := c.cursorAt(t)
	ts := t.Unix()
	for {
		s, e := k.next()
		if e <= ts {
			continue
		}
		return s <= ts
	}
}

// AddDays returns the same wall-clock time as t on the n-th business day
// after t's date in the calendar's zone (before it when n < 0); n == 0 gives
// t. A business day is a date that has at least one interval once holidays
// are applied. The result is not moved into business hours. A wall time that
// does not exist on the target date maps to the DST switch, an ambiguous one
// to its first occurrence. The result is in t's location.
func (c *Calendar) AddDays(t time.Time, n int) time.Time {
	t = t.Round(0)
	if n == 0 {
		return t
	}
	lt := t.In(c.loc)
	y, m, d := lt.Date()
	day := daysFromCivil(int64(y), int(m), d)
	step := int64(1)
	if n < 0 {
		step, n = -1, -n
	}
	for n > 0 {
		day += step
		if len(c.spansOn(day)) > 0 {
			n--
		}
	}
	hh, mm, ss := lt.Clock()
	z := zconv{loc: c.loc}
	u := z.instant(day*secondsPerDay + int64(hh*3600+mm*60+ss))
	return time.Unix(u, int64(lt.Nanosecond())).In(t.Location())
}

// Intervals yields the open intervals within [from, to), clipped to it and
// with touching intervals joined, in the calendar's zone.
func (c *Calendar) Intervals(from, to time.Time) iter.Seq[Interval] {
	return func(yield func(Interval) bool) {
		if !from.Before(to) {
			return
		}
		if c.always {
			yield(Interval{from.In(c.loc), to.In(c.loc)})
			return
		}
		k := c.cursorAt(from)
		fs := from.Unix()
		var cur Interval
		has := false
		for {
			s, e := k.next()
			if e <= fs {
				continue
			}
			lo := time.Unix(s, 0)
			if !lo.Before(to) {
				break
			}
			if s <= fs {
				lo = from
			}
			hi := time.Unix(e, 0)
			if to.Before(hi) {
				hi = to
			}
			if has && lo.Equal(cur.End) {
				cur.End = hi.In(c.loc)
				continue
			}
			if has && !yield(cur) {
				return
			}
			cur, has = Interval{lo.In(c.loc), hi.In(c.loc)}, true
		}
		if has {
			yield(cur)
		}
	}
}

// ElapsedExcluding returns the business time in [from, to) outside every
// pause: the SLA clock with clock-stop. Pauses may overlap and may reach
// outside [from, to); an ongoing pause is given with End = now. It is
// -ElapsedExcluding(to, from, pauses) when to is before from.
func (c *Calendar) ElapsedExcluding(from, to time.Time, pauses []Interval) time.Duration {
	if to.Before(from) {
		return -c.ElapsedExcluding(to, from, pauses)
	}
	total := c.Elapsed(from, to)
	for _, p := range normalizePauses(pauses) {
		lo, hi := p.Start, p.End
		if lo.Before(from) {
			lo = from
		}
		if to.Before(hi) {
			hi = to
		}
		if lo.Before(hi) {
			total -= c.Elapsed(lo, hi)
		}
	}
	return total
}

// AddExcluding returns the earliest instant u at which
// ElapsedExcluding(t, u, pauses) == d: the SLA due time of a budget d started
// at t, the clock stopped during the pauses. With no pause overlapping
// business time after t it equals Add(t, d). The result is in t's location.
func (c *Calendar) AddExcluding(t time.Time, d time.Duration, pauses []Interval) time.Time {
	t = t.Round(0)
	if d <= 0 {
		return t
	}
	ps := normalizePauses(pauses)
	j := 0
	k := c.cursorAt(t)
	ts := t.Unix()
	for {
		s, e := k.next()
		if e <= ts {
			continue
		}
		p := t
		if s > ts {
			p = time.Unix(s, 0)
		}
		end := time.Unix(e, 0)
		for p.Before(end) {
			for j < len(ps) && !ps[j].End.After(p) {
				j++
			}
			segEnd := end
			if j < len(ps) && ps[j].Start.Before(end) {
				if !ps[j].Start.After(p) { // paused at p
					p = ps[j].End
					continue
				}
				segEnd = ps[j].Start
			}
			avail := segEnd.Sub(p)
			if d <= avail {
				return p.Add(d).In(t.Location())
			}
			d -= avail
			p = segEnd
		}
	}
}

// normalizePauses drops empty pauses and returns the rest sorted and merged.
func normalizePauses(pauses []Interval) []Interval {
	out := make([]Interval, 0, len(pauses))
	for _, p := range pauses {
		if p.Start.Before(p.End) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b Interval) int { return a.Start.Compare(b.Start) })
	merged := out[:0]
	for _, p := range out {
		if n := len(merged); n > 0 && !p.Start.After(merged[n-1].End) {
			if p.End.After(merged[n-1].End) {
				merged[n-1].End = p.End
			}
			continue
		}
		merged = append(merged, p)
	}
	return merged
}

// spansOn returns the intervals of a day, holidays applied.
func (c *Calendar) spansOn(day int64) []span {
	if i, ok := slices.BinarySearchFunc(c.dated, day, func(r datedRule, d int64) int {
		return cmpInt64(r.day, d)
	}); ok {
		return c.dated[i].spans
	}
	return c.ruleNoDated(day)
}

func (c *Calendar) ruleNoDated(day int64) []span {
	if c.yearly != nil {
		_, m, d := civilFromDays(day)
		if i := c.yearly[m][d]; i != 0 {
			return c.yearlyRules[i-1]
		}
	}
	return c.weekly[weekdayOf(day)]
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cursor walks the open intervals of a calendar forward in time, day by
// day, as Unix seconds. Intervals come out sorted, non-empty and
// non-overlapping (overlaps across days are merged; touching intervals may
// come out separately).
type cursor struct {
	c    *Calendar
	z    zconv
	day  int64        // next day to expand
	y    int64        // its date
	m, d int          //
	wd   time.Weekday // its weekday
	di   int          // first dated rule with day >= k.day
	buf  []span       // spans of day bday
	bi   int          // next one to emit
	bday int64
	ps   int64 // pending (look-ahead) interval
	pe   int64
	has  bool
}

// cursorAt returns a cursor whose intervals include every interval that
// ends after t. Intervals belong to the day they start on and last at most
// 24 h of wall time, so starting at the day before t's date is enough.
func (c *Calendar) cursorAt(t time.Time) cursor {
	day := dayOf(t, c.loc) - 1
	di, _ := slices.BinarySearchFunc(c.dated, day, func(r datedRule, d int64) int {
		return cmpInt64(r.day, d)
	})
	y, m, d := civilFromDays(day)
	return cursor{c: c, z: zconv{loc: c.loc}, day: day, y: y, m: m, d: d, wd: weekdayOf(day), di: di}
}

// raw returns the next non-empty interval of the schedule, unmerged.
func (k *cursor) raw() (s, e int64) {
	for {
		for k.bi < len(k.buf) {
			sp := k.buf[k.bi]
			k.bi++
			base := k.bday * secondsPerDay
			s = k.z.instant(base + int64(sp.start))
			e = k.z.instant(base + int64(sp.end))
			if s < e { // empty when it lies in a DST gap
				return s, e
			}
		}
		c := k.c
		k.bday, k.bi = k.day, 0
		for k.di < len(c.dated) && c.dated[k.di].day < k.bday {
			k.di++
		}
		switch {
		case k.di < len(c.dated) && c.dated[k.di].day == k.bday:
			k.buf = c.dated[k.di].spans
		case c.yearly != nil && c.yearly[k.m][k.d] != 0:
			k.buf = c.yearlyRules[c.yearly[k.m][k.d]-1]
		default:
			k.buf = c.weekly[k.wd]
		}
		// Move to the next day.
		k.day++
		if k.wd++; k.wd == 7 {
			k.wd = 0
		}
		if k.d++; k.d > 28 && k.d > daysIn(k.y, k.m) {
			k.d = 1
			if k.m++; k.m == 13 {
				k.m = 1
				k.y++
			}
		}
	}
}

func daysIn(y int64, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// next returns the next open interval.
func (k *cursor) next() (s, e int64) {
	if !k.has {
		k.ps, k.pe = k.raw()
		k.has = true
	}
	for {
		ns, ne := k.raw()
		if ns < k.pe { // overlaps the pending one: merge
			k.pe = max(k.pe, ne)
			continue
		}
		s, e = k.ps, k.pe
		k.ps, k.pe = ns, ne
		return s, e
	}
}

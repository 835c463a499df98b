package businesstime

import (
	"math"
	"time"
)

// Civil (zone-less) calendar arithmetic. A day is the number of days since
// 1970-01-01 in the proleptic Gregorian calendar; a wall time is a day times
// 86400 plus the seconds since that day's midnight, as read on a clock.

const secondsPerDay = 86400

// daysFromCivil returns the day number of y-m-d (m in 1..12).
// Algorithm from H. Hinnant, "chrono-compatible low-level date algorithms".
func daysFromCivil(y int64, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400
	mp := int64((m + 9) % 12)
	doy := (153*mp+2)/5 + int64(d) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(z int64) (y int64, m, d int) {
	z += 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		m = int(mp + 3)
	} else {
		m = int(mp - 9)
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

// weekdayOf returns the weekday of day z (1970-01-01 was a Thursday).
func weekdayOf(z int64) time.Weekday {
	return time.Weekday(floorMod(z+4, 7))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 {
	return a - floorDiv(a, b)*b
}

// dayOf returns the day number of t's date in loc.
func dayOf(t time.Time, loc *time.Location) int64 {
	y, m, d := t.In(loc).Date()
	return daysFromCivil(int64(y), int(m), d)
}

// zone periods

const (
	minInstant = math.MinInt64
	maxInstant = math.MaxInt64
)

// period is a stretch of time with one UTC offset: [start, end) in Unix
// seconds, minInstant/maxInstant when unbounded.
type period struct {
	start, end int64
	off        int64 // seconds east of UTC
}

func periodAt(loc *time.Location, u int64) period {
	t := time.Unix(u, 0).In(loc)
	_, off := t.Zone()
	p := period{start: minInstant, end: maxInstant, off: int64(off)}
	s, e := t.ZoneBounds()
	if !s.IsZero() {
		p.start = s.Unix()
	}
	if !e.IsZero() {
		p.end = e.Unix()
	}
	return p
}

// zconv converts wall times to instants in one location. It caches the
// offset period of the last answer, so converting wall times in increasing
// order costs a subtraction and a few comparisons per call. The zero value
// is not usable; set loc.
type zconv struct {
	loc     *time.Location
	cur     period
	prev    period // the period just before cur, valid when hasPrev
	hasCur  bool
	hasPrev bool
	// Wall times in [fastLo, fastHi) exist once, in cur: their instant is
	// w - cur.off. Valid when hasFast.
	fastLo, fastHi int64
	hasFast        bool
}

func (z *zconv) setCur(p period) {
	z.cur, z.hasCur, z.hasPrev, z.hasFast = p, true, false, false
}

func (z *zconv) previous() period {
	if !z.hasPrev {
		z.prev, z.hasPrev = periodAt(z.loc, z.cur.start-1), true
	}
	return z.prev
}

// instant returns the earliest instant (Unix seconds) at which the clock of
// z.loc reads wall time w or later. For a wall time that exists once this is
// the instant itself; in a spring-forward gap it is the instant of the
// switch; in a repeated fall-back hour it is the first occurrence.
func (z *zconv) instant(w int64) int64 {
	if z.hasFast && w >= z.fastLo && w < z.fastHi {
		return w - z.cur.off
	}
	u := z.search(w)
	if !z.hasFast {
		p := z.cur
		z.fastLo, z.fastHi, z.hasFast = minInstant, maxInstant, true
		if p.start != minInstant {
			z.fastLo = p.start + max(p.off, z.previous().off)
		}
		if p.end != maxInstant {
			z.fastHi = p.end + p.off
		}
	}
	return u
}

func (z *zconv) search(w int64) int64 {
	if !z.hasCur {
		// The instant numerically equal to w is within a day of the answer.
		z.setCur(periodAt(z.loc, w))
	}
	for range 64 {
		p := z.cur
		u := w - p.off
		switch {
		case u < p.start:
			// w is read before this period began: in the previous period,
			// or in the gap between the two.
			pr := z.previous()
			if w-pr.off < p.start {
				z.setCur(pr)
				continue
			}
			return p.start
		case u >= p.end:
			nx := periodAt(z.loc, p.end)
			if w-nx.off >= p.end {
				z.setCur(nx)
				z.prev, z.hasPrev = p, true
				continue
			}
			return p.end
		}
		if p.start != minInstant {
			// After a fall-back the previous period may already have read w.
			if pr := z.previous(); w-pr.off < p.start {
				z.setCur(pr)
				continue
			}
		}
		return u
	}
	// Not reached for real zones (transitions are far apart).
	return w - z.cur.off
}

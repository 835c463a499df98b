package businesstime

import (
	"fmt"
	"testing"
	"time"
)

// Transition dates used below (2026):
//   Europe/Berlin     spring Sun 03-29 02:00 CET -> 03:00 CEST (01:00Z); fall Sun 10-25 03:00 CEST -> 02:00 CET (01:00Z)
//   America/New_York  spring Sun 03-08 02:00 EST -> 03:00 EDT (07:00Z); fall Sun 11-01 02:00 EDT -> 01:00 EST (06:00Z)
//   Australia/Lord_Howe  30-minute DST: spring Sun 10-04 02:00 -> 02:30; fall Sun 04-05 02:00 -> 01:30
//   America/Santiago  switches at midnight: spring Sun 09-06 00:00 -> 01:00; fall Sun 04-05 00:00 -> Sat 23:00

func sunday(zone string, hours ...[2]string) Config {
	return Config{TimeZone: zone, Schedule: Schedule{"sun": hours}}
}

func TestDSTDayLengths(t *testing.T) {
	tests := []struct {
		zone  string
		hours [2]string
		day   string // a Sunday
		want  time.Duration
	}{
		{"Europe/Berlin", [2]string{"00:00", "24:00"}, "2026-03-29", 23 * time.Hour},
		{"Europe/Berlin", [2]string{"00:00", "24:00"}, "2026-10-25", 25 * time.Hour},
		{"Europe/Berlin", [2]string{"00:00", "24:00"}, "2026-03-22", 24 * time.Hour},
		{"Europe/Berlin", [2]string{"01:00", "04:00"}, "2026-03-29", 2 * time.Hour},
		{"Europe/Berlin", [2]string{"01:00", "04:00"}, "2026-10-25", 4 * time.Hour},
		{"Europe/Berlin", [2]string{"09:00", "17:00"}, "2026-03-29", 8 * time.Hour}, // switch outside the interval
		{"Europe/Berlin", [2]string{"09:00", "17:00"}, "2026-10-25", 8 * time.Hour},
		{"America/New_York", [2]string{"00:00", "24:00"}, "2026-03-08", 23 * time.Hour},
		{"America/New_York", [2]string{"00:00", "24:00"}, "2026-11-01", 25 * time.Hour},
		{"America/New_York", [2]string{"01:00", "04:00"}, "2026-03-08", 2 * time.Hour},
		{"America/New_York", [2]string{"01:00", "04:00"}, "2026-11-01", 4 * time.Hour},
		{"Australia/Lord_Howe", [2]string{"00:00", "24:00"}, "2026-10-04", 23*time.Hour + 30*time.Minute},
		{"Australia/Lord_Howe", [2]string{"00:00", "24:00"}, "2026-04-05", 24*time.Hour + 30*time.Minute},
		{"America/Santiago", [2]string{"00:00", "24:00"}, "2026-09-06", 23 * time.Hour}, // Sunday 00:00 does not exist
		{"America/Santiago", [2]string{"00:00", "24:00"}, "2026-04-05", 24 * time.Hour}, // the repeated hour is Saturday's
		// Boundaries in the spring-forward gap map to the switch.
		{"Europe/Berlin", [2]string{"02:30", "05:00"}, "2026-03-29", 2 * time.Hour},
		{"Europe/Berlin", [2]string{"01:30", "03:30"}, "2026-03-29", time.Hour},
		{"Europe/Berlin", [2]string{"02:00", "03:00"}, "2026-03-29", 0},
		{"Europe/Berlin", [2]string{"02:15", "02:45"}, "2026-03-29", 0},
		// Boundaries in the repeated hour map to their first occurrence.
		{"Europe/Berlin", [2]string{"02:30", "05:00"}, "2026-10-25", 3*time.Hour + 30*time.Minute},
		{"Europe/Berlin", [2]string{"00:00", "02:30"}, "2026-10-25", 2*time.Hour + 30*time.Minute},
		{"Europe/Berlin", [2]string{"02:00", "02:30"}, "2026-10-25", 30 * time.Minute},
		{"Europe/Berlin", [2]string{"02:00", "03:00"}, "2026-10-25", 2 * time.Hour},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %s %s-%s", tc.zone, tc.day, tc.hours[0], tc.hours[1]), func(t *testing.T) {
			loc := mustLoc(t, tc.zone)
			cal := mustNew(t, sunday(tc.zone, tc.hours))
			// Noon on the days around: midnight may not exist (Santiago).
			sat := at(t, loc, tc.day+" 12:00").AddDate(0, 0, -1)
			mon := sat.AddDate(0, 0, 2)
			got := cal.Elapsed(sat, mon)
			wantDur(t, "Elapsed", got, tc.want)
			if got > 0 {
				open := cal.NextOpen(sat)
				wantTime(t, "Add of the whole day ends at its close", cal.Add(open, got), open.Add(got))
			}
		})
	}
}

func TestDSTBoundaryInstants(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	utc := func(s string) time.Time { return at(t, time.UTC, s) }

	gap := mustNew(t, sunday("Europe/Berlin", [2]string{"02:30", "05:00"}))
	wantTime(t, "opening in the gap", gap.NextOpen(at(t, berlin, "2026-03-28 12:00")), utc("2026-03-29 01:00")) // 03:00 CEST
	if gap.IsOpen(utc("2026-03-29 00:59:59")) || !gap.IsOpen(utc("2026-03-29 01:00")) {
		t.Error("IsOpen around the gap")
	}

	empty := mustNew(t, sunday("Europe/Berlin", [2]string{"02:00", "03:00"}))
	wantTime(t, "an interval inside the gap is skipped", empty.NextOpen(at(t, berlin, "2026-03-28 12:00")), at(t, berlin, "2026-04-05 02:00"))
	wantTime(t, "Add skips it too", empty.Add(at(t, berlin, "2026-03-22 02:30"), time.Hour), at(t, berlin, "2026-04-05 02:30"))

	rep := mustNew(t, sunday("Europe/Berlin", [2]string{"02:00", "02:30"}))
	for _, tc := range []struct {
		at   string
		open bool
	}{
		{"2026-10-25 00:00", true},    // 02:00 CEST, first pass
		{"2026-10-25 00:29", true},    // 02:29 CEST
		{"2026-10-25 00:30", false},   // 02:30 CEST
		{"2026-10-25 01:10", false},   // 02:10 CET, second pass: not counted
		{"2026-10-24 23:59", false},   // 01:59 CEST
		{"2026-10-25 01:30", false},   // 02:30 CET
		{"2026-11-01 01:15", true},    // a normal Sunday: 02:15 CET
		{"2026-11-01 01:30", false},   // 02:30 CET
		{"2026-10-25 00:15:30", true}, // seconds
	} {
		if got := rep.IsOpen(utc(tc.at)); got != tc.open {
			t.Errorf("IsOpen(%sZ) = %v", tc.at, got)
		}
	}
}

func TestDSTOvernightShift(t *testing.T) {
	for _, tc := range []struct {
		zone, spring, fall string // the Saturdays before the switches
	}{
		{"Europe/Berlin", "2026-03-28", "2026-10-24"},
		{"America/New_York", "2026-03-07", "2026-10-31"},
	} {
		t.Run(tc.zone, func(t *testing.T) {
			loc := mustLoc(t, tc.zone)
			cal := mustNew(t, Config{TimeZone: tc.zone, Schedule: Schedule{"sat": {{"22:00", "06:00"}}}})
			shift := func(sat string) (time.Time, time.Time) {
				return at(t, loc, sat+" 22:00"), at(t, loc, sat+" 22:00").AddDate(0, 0, 1).Add(8 * time.Hour)
			}
			// A normal week: 8 h.
			s, e := shift("2026-01-10")
			wantDur(t, "normal shift", cal.Elapsed(s, e), 8*time.Hour)

			// Spring forward: the shift is 7 h; a 7 h budget ends at its close (06:00 summer time).
			s, e = shift(tc.spring)
			wantDur(t, "spring shift", cal.Elapsed(s.Add(-time.Hour), e.Add(time.Hour)), 7*time.Hour)
			end := cal.Add(s, 7*time.Hour)
			wantTime(t, "7 h ends at the close", end, at(t, loc, tc.spring+" 06:00").AddDate(0, 0, 1))
			if h, m, _ := end.In(loc).Clock(); h != 6 || m != 0 {
				t.Errorf("close at wall %02d:%02d", h, m)
			}
			// An 8th hour goes into the next Saturday's shift.
			wantTime(t, "8 h rolls a week", cal.Add(s, 8*time.Hour), at(t, loc, tc.spring+" 23:00").AddDate(0, 0, 7))

			// Fall back: the shift is 9 h; 8 h end at 05:00 standard time.
			s, e = shift(tc.fall)
			wantDur(t, "fall shift", cal.Elapsed(s.Add(-time.Hour), e.Add(time.Hour)), 9*time.Hour)
			wantTime(t, "8 h in the long night", cal.Add(s, 8*time.Hour), at(t, loc, tc.fall+" 05:00").AddDate(0, 0, 1))
			wantTime(t, "9 h ends at the close", cal.Add(s, 9*time.Hour), at(t, loc, tc.fall+" 06:00").AddDate(0, 0, 1))
			// Both passes of the repeated hour are inside the shift.
			first := s.Add(4*time.Hour + 30*time.Minute) // the first 01:30 or 02:30
			if !cal.IsOpen(first) || !cal.IsOpen(first.Add(time.Hour)) {
				t.Error("repeated hour not open")
			}
		})
	}
}

func TestDSTAddDays(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	cal := Always(berlin)
	utc := func(s string) time.Time { return at(t, time.UTC, s) }
	// 02:30 does not exist on 2026-03-29: the switch instant (03:00 CEST).
	wantTime(t, "into the gap", cal.AddDays(at(t, berlin, "2026-03-28 02:30:15"), 1), utc("2026-03-29 01:00"))
	// 02:30 happens twice on 2026-10-25: the first one (CEST).
	wantTime(t, "into the repeated hour", cal.AddDays(at(t, berlin, "2026-10-24 02:30"), 1), utc("2026-10-25 00:30"))
	// From the second 02:30 the wall time is kept, not the offset.
	second := utc("2026-10-25 01:30")
	wantTime(t, "from the repeated hour", cal.AddDays(second, 1), at(t, berlin, "2026-10-26 02:30"))
	wantTime(t, "across the switch", cal.AddDays(at(t, berlin, "2026-03-28 12:00"), 2), at(t, berlin, "2026-03-30 12:00"))
}

// TestZoneInstantBruteForce checks the wall-time mapping against a scan:
// the earliest whole minute whose wall clock reads w or later, around every
// transition of several zones from 2010 to 2030 (offsets and transitions are
// whole minutes there, so the scan is exact).
func TestZoneInstantBruteForce(t *testing.T) {
	zones := []string{
		"Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago",
		"America/Havana", "Pacific/Chatham", "Africa/Casablanca", "Pacific/Apia", "Asia/Kolkata", "UTC",
	}
	for _, name := range zones {
		loc := mustLoc(t, name)
		wall := func(u int64) int64 {
			lt := time.Unix(u, 0).In(loc)
			h, m, s := lt.Clock()
			y, mo, d := lt.Date()
			return daysFromCivil(int64(y), int(mo), d)*secondsPerDay + int64(h*3600+m*60+s)
		}
		scan := func(w int64) int64 {
			// wall(u) <= u + the largest offset nearby, so the answer is not
			// before w minus that offset.
			maxOff := -24 * 3600
			for h := int64(-48); h <= 48; h++ {
				_, off := time.Unix(w+h*3600, 0).In(loc).Zone()
				maxOff = max(maxOff, off)
			}
			for u := floorDiv(w-int64(maxOff), 60)*60 - 60; ; u += 60 {
				if wall(u) >= w {
					return u
				}
			}
		}
		var points []int64
		u := time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
		limit := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
		for u < limit {
			points = append(points, u)
			p := periodAt(loc, u)
			if p.end == maxInstant {
				break
			}
			u = p.end
		}
		checked := 0
		for _, tr := range points {
			base := wall(tr-1) / 60 * 60
			for dw := int64(-150); dw <= 150; dw += 5 {
				w := base + dw*60
				// A fresh converter, one used on an earlier period, one used
				// on a later time (the converter caches).
				want := scan(w)
				for _, before := range []int64{0, w - 40*secondsPerDay, w - 3*3600, w + 3*3600, w + 40*secondsPerDay} {
					z := zconv{loc: loc}
					if before != 0 {
						z.instant(before)
					}
					if got := z.instant(w); got != want {
						t.Fatalf("%s: instant(%s) after instant(%s) = %s, want %s", name, civilString(w), civilString(before),
							time.Unix(got, 0).In(loc), time.Unix(want, 0).In(loc))
					}
				}
				checked++
			}
		}
		if checked == 0 {
			t.Fatalf("%s: nothing checked", name)
		}
	}
}

func civilString(w int64) string {
	y, m, d := civilFromDays(floorDiv(w, secondsPerDay))
	s := floorMod(w, secondsPerDay)
	return fmt.Sprintf("%04d-%02d-%02d %02d:%02d:%02d", y, m, d, s/3600, s/60%60, s%60)
}

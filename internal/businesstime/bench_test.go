package businesstime

import (
	"testing"
	"time"
)

// benchCalendar: Europe/Berlin (two DST switches a year), a lunch break,
// yearly and dated holidays, some with special hours.
func benchCalendar(b *testing.B) *Calendar {
	day := [][2]string{{"09:00", "12:00"}, {"13:00", "17:00"}}
	short := [][2]string{{"09:00", "12:00"}}
	return mustNew(b, Config{
		TimeZone: "Europe/Berlin",
		Schedule: Schedule{"mon": day, "tue": day, "wed": day, "thu": day, "fri": day},
		Holidays: []Holiday{
			{Yearly: "01-01"}, {Yearly: "05-01"}, {Yearly: "10-03"}, {Yearly: "12-25"}, {Yearly: "12-26"},
			{Yearly: "12-24", Hours: short}, {Yearly: "12-31", Hours: short},
			{Date: "2026-04-03"}, {Date: "2026-04-06"}, {Date: "2026-05-14"}, {Date: "2026-05-25"}, {Date: "2026-06-04"},
		},
	})
}

var (
	sinkTime time.Time
	sinkDur  time.Duration
)

// BenchmarkAdd adds a year's worth of business time (Jan 2 -> late Dec).
func BenchmarkAdd(b *testing.B) {
	cal := benchCalendar(b)
	berlin := cal.Location()
	start := time.Date(2026, 1, 2, 10, 0, 0, 0, berlin)
	budget := cal.Elapsed(start, time.Date(2026, 12, 30, 10, 0, 0, 0, berlin))
	if want := time.Date(2026, 12, 30, 10, 0, 0, 0, berlin); !cal.Add(start, budget).Equal(want) {
		b.Fatalf("Add = %s, want %s", cal.Add(start, budget), want)
	}
	b.ReportAllocs()
	for b.Loop() {
		sinkTime = cal.Add(start, budget)
	}
}

// BenchmarkElapsed measures the business time of one calendar year.
func BenchmarkElapsed(b *testing.B) {
	cal := benchCalendar(b)
	berlin := cal.Location()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, berlin)
	to := time.Date(2027, 1, 1, 0, 0, 0, 0, berlin)
	// 2026: 261 weekdays; 8 closed by holidays (10-03 and 12-26 are Saturdays), 12-24 and 12-31 short.
	if got, want := cal.Elapsed(from, to), time.Duration(251*7+2*3)*time.Hour; got != want {
		b.Fatalf("Elapsed = %v, want %v", got, want)
	}
	b.ReportAllocs()
	for b.Loop() {
		sinkDur = cal.Elapsed(from, to)
	}
}

// BenchmarkAddSLA is the everyday case: a 4-hour budget over a weekend.
func BenchmarkAddSLA(b *testing.B) {
	cal := benchCalendar(b)
	start := time.Date(2026, 1, 16, 16, 0, 0, 0, cal.Location())
	b.ReportAllocs()
	for b.Loop() {
		sinkTime = cal.Add(start, 4*time.Hour)
	}
}

// BenchmarkElapsedExcluding: a year with ten pauses.
func BenchmarkElapsedExcluding(b *testing.B) {
	cal := benchCalendar(b)
	berlin := cal.Location()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, berlin)
	var pauses []Interval
	for i := range 10 {
		s := from.AddDate(0, i, 3)
		pauses = append(pauses, Interval{s, s.Add(36 * time.Hour)})
	}
	b.ReportAllocs()
	for b.Loop() {
		sinkDur = cal.ElapsedExcluding(from, from.AddDate(1, 0, 0), pauses)
	}
}

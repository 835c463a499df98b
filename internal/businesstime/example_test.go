package businesstime_test

import (
	"fmt"
	"time"

	"github.com/atumdesk/atumdesk/internal/businesstime"
)

func Example() {
	cal, err := businesstime.New(businesstime.Config{
		TimeZone: "Europe/Berlin",
		Schedule: businesstime.Schedule{
			"mon": {{"09:00", "12:00"}, {"13:00", "17:00"}},
			"tue": {{"09:00", "12:00"}, {"13:00", "17:00"}},
			"wed": {{"09:00", "12:00"}, {"13:00", "17:00"}},
			"thu": {{"09:00", "12:00"}, {"13:00", "17:00"}},
			"fri": {{"09:00", "12:00"}, {"13:00", "17:00"}},
		},
		Holidays: []businesstime.Holiday{{Yearly: "12-25"}, {Date: "2026-12-24", Hours: [][2]string{{"09:00", "12:00"}}}},
	})
	if err != nil {
		panic(err)
	}
	berlin := cal.Location()
	created := time.Date(2026, 12, 23, 15, 30, 0, 0, berlin)
	due := cal.Add(created, 8*time.Hour)
	fmt.Println("due:", due.Format("Mon 2006-01-02 15:04"))

	// The ticket waits on the customer from Dec 24 10:00 to Dec 28 10:00:
	// the clock stops, and the due time moves by the business time paused.
	wait := []businesstime.Interval{{Start: time.Date(2026, 12, 24, 10, 0, 0, 0, berlin), End: time.Date(2026, 12, 28, 10, 0, 0, 0, berlin)}}
	fmt.Println("due with the wait:", cal.AddExcluding(created, 8*time.Hour, wait).Format("Mon 2006-01-02 15:04"))
	fmt.Println("used by Dec 28 12:00:", cal.ElapsedExcluding(created, time.Date(2026, 12, 28, 12, 0, 0, 0, berlin), wait))
	// Output:
	// due: Mon 2026-12-28 13:30
	// due with the wait: Mon 2026-12-28 16:30
	// used by Dec 28 12:00: 4h30m0s
}

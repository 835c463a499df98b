package ai

import (
	"strings"

	"github.com/atumdesk/atumdesk/internal/ai/textvec"
	"github.com/atumdesk/atumdesk/models"
)

// Urgency cues, matched as whole words or phrases on the tokenised text
// (lower case, apostrophes dropped: "can't" is "cant").
var (
	criticalCues = []string{
		"urgent", "urgently", "emergency", "asap", "immediately", "outage", "critical",
		"server down", "site down", "system down", "service down", "website down", "is down", "are down", "went down",
		"down for everyone", "data loss", "lost data", "security breach", "breach", "hacked", "ransomware",
		"production", "prod down", "sev1", "p1", "all users", "nobody can", "no one can", "cannot work", "cant work",
		"losing money", "revenue",
	}
	highCues = []string{
		"not working", "doesnt work", "does not work", "stopped working", "broken", "error", "errors", "failed",
		"failing", "failure", "crash", "crashed", "crashes", "cannot login", "cant login", "cannot log in",
		"cant log in", "locked out", "blocked", "deadline", "today", "as soon as possible", "unable to",
	}
	lowCues = []string{
		"question", "how do i", "how can i", "feature request", "suggestion", "no rush", "whenever",
		"when you have time", "fyi", "feedback", "newsletter", "just wondering", "nice to have",
	}
)

// Urgency is the priority the cues suggest with its confidence. The
// confidences are fixed estimates (no shared data carries priorities to
// calibrate them on): two critical cues make "critical" very likely, a
// lone cue less so, and no cue leaves the prior, "medium", at a low 0.4.
type Urgency struct {
	Priority   models.Priority
	Confidence float64
	Cues       []string
}

// UrgencyOf scans text for urgency cues.
func UrgencyOf(text string) Urgency {
	s := " " + strings.Join(textvec.Tokens(text), " ") + " "
	find := func(cues []string) []string {
		var out []string
		for _, c := range cues {
			if strings.Contains(s, " "+c+" ") {
				out = append(out, c)
			}
		}
		return out
	}
	crit, high, low := find(criticalCues), find(highCues), find(lowCues)
	cues := append(append(append([]string{}, crit...), high...), low...)
	switch {
	case len(crit) >= 2:
		return Urgency{models.PriorityCritical, 0.9, cues}
	case len(crit) == 1 && len(high) >= 1:
		return Urgency{models.PriorityCritical, 0.75, cues}
	case len(crit) == 1:
		return Urgency{models.PriorityHigh, 0.6, cues}
	case len(high) >= 2:
		return Urgency{models.PriorityHigh, 0.65, cues}
	case len(high) == 1:
		return Urgency{models.PriorityHigh, 0.5, cues}
	case len(low) >= 1:
		return Urgency{models.PriorityLow, 0.55, cues}
	}
	return Urgency{models.PriorityMedium, 0.4, nil}
}

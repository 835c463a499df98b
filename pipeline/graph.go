package pipeline

import (
	"slices"

	"github.com/google/uuid"
)

// The asynq queues, one per stage. Workers are sized per queue
// (`atumdesk worker --queues dedup=2,triage=8`).
const (
	QueueDedup  = "dedup"
	QueueTriage = "triage"
	QueueEmbed  = "embed"
	QueueSLA    = "sla"
	QueueNotify = "notify"
)

// Queues lists every known queue, including those whose stage has not
// arrived yet (they then hold no tasks).
var Queues = []string{QueueDedup, QueueTriage, QueueEmbed, QueueSLA, QueueNotify}

// KnownQueue reports whether q is one of Queues.
func KnownQueue(q string) bool { return slices.Contains(Queues, q) }

// Task types, "<entity>:<stage>".
const (
	TaskDedup  = "ticket:dedup"
	TaskSLA    = "ticket:sla" // also the SLA timers, scheduled by the stage itself
	TaskTriage = "ticket:triage"
	TaskEmbed  = "ticket:embed"
	// TaskAIRetrain schedules (on a resolution) and runs (when due) the
	// retraining of an organisation's AI classifiers.
	TaskAIRetrain = "ticket:ai_retrain"
	// TaskNotify sends the e-mail an event calls for (workers/notify).
	TaskNotify = "ticket:notify"
)

// Stage is one edge of the stage graph: an event of type On fans out to a
// task of TaskType on Queue.
type Stage struct {
	Queue    string
	TaskType string
	On       string // event type, e.g. EventTicketCreated
}

// TaskID is the asynq task ID of this stage for one event. Enqueueing the
// same (stage, event) twice conflicts, so a redelivered event never makes a
// second task while the first one (or its retention) lives.
func (s Stage) TaskID(eventID uuid.UUID) string { return s.TaskType + ":" + eventID.String() }

// Graph is the stage graph: which asynq tasks each domain event fans out
// to. Adding a stage is one package in workers/ plus one line here; the
// workers' registry test checks that every line has a handler and every
// handler a line.
var Graph = []Stage{
	{Queue: QueueDedup, TaskType: TaskDedup, On: EventTicketCreated},
	{Queue: QueueSLA, TaskType: TaskSLA, On: EventTicketCreated},
	{Queue: QueueSLA, TaskType: TaskSLA, On: EventSLAChanged},
	{Queue: QueueTriage, TaskType: TaskTriage, On: EventTicketCreated},
	{Queue: QueueEmbed, TaskType: TaskEmbed, On: EventTicketCreated},
	{Queue: QueueTriage, TaskType: TaskAIRetrain, On: EventStatusChanged},
	// Outbound e-mail: the acknowledgement follows dedup's verdict; replies,
	// status changes (and the CSAT invitation) and SLA escalations follow
	// their events. workers/notify decides per event whether a mail is due.
	{Queue: QueueNotify, TaskType: TaskNotify, On: EventDedupPassed},
	{Queue: QueueNotify, TaskType: TaskNotify, On: EventCommentAdded},
	{Queue: QueueNotify, TaskType: TaskNotify, On: EventStatusChanged},
	{Queue: QueueNotify, TaskType: TaskNotify, On: EventSLAThreshold},
	{Queue: QueueNotify, TaskType: TaskNotify, On: EventSLABreached},
}

// StagesFor returns the stages an event of type eventType fans out to.
func StagesFor(graph []Stage, eventType string) []Stage {
	var out []Stage
	for _, s := range graph {
		if s.On == eventType {
			out = append(out, s)
		}
	}
	return out
}

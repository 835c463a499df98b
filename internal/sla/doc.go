// Package sla is the SLA engine's state: policies (which one applies to a
// ticket, their targets, calendars and escalation rules), and each ticket's
// two clocks, first response and resolution, computed from the ticket's
// history. The asynq timers that fire thresholds and breaches live in
// workers/sla; the calendar arithmetic in internal/businesstime.
//
// # Which policy applies
//
// Among the organisation's active policies that have a target for the
// ticket's priority, the most specific wins: service and priority, then
// service, then priority, then the organisation default (neither). At most
// one active policy exists per scope (a unique index). The policy is chosen
// when the clock starts and again when the ticket's priority or service
// changes; creating or changing other policies does not move running
// tickets to them.
//
// # The clock
//
//   - It starts when the ticket is accepted (clock_start "accepted", the
//     default: at accepted_at) or at the ticket's creation (clock_start
//     "created": at created_at, started by the ticket.created task or by the
//     first status change, whichever comes first).
//   - waiting_customer and resolved stop both clocks: sla_paused_at is set
//     on entering; on leaving, [sla_paused_at, now) is appended to
//     sla_paused_intervals. Closed and cancelled end the clocks.
//   - A due time is always recomputed from the history, never from "now":
//     AddExcluding(sla_started_at, target, sla_paused_intervals) in the
//     policy's calendar. So a pause extends the due time by the business
//     time it lasted (a pause outside business hours changes nothing), and a
//     priority or policy change gives the due time the ticket would have had
//     with the new target from the start.
//   - While a pause runs, the stored due times are those before it; the
//     timers do nothing while paused and are rescheduled on resume.
//   - First response is met by the first public staff reply
//     (first_responded_at), resolution by resolved (resolved_at; a reopen
//     clears it and the clock goes on). A met clock's due time is frozen.
//   - Breached flags and sla_breaches rows are written by the timer that
//     fires at the due time (or later, when the clock was met late). A
//     breach is never undone by a later recomputation.
//
// Times are kept to the microsecond (what PostgreSQL stores), so a due time
// recomputed from the stored history is bit-for-bit the stored one; timers
// carry the due time they were scheduled for and a timer whose ticket has
// another due time is stale.
//
// # Calendars
//
// A policy's business_hours, timezone and holidays are in the
// businesstime.Config JSON format; each one that is null is inherited from
// the organisation (organizations.business_hours null meaning 24×7).
// use_business_hours false makes the policy 24×7 in its time zone.
package sla

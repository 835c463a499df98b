// Command atumdesk is the one binary of ATUM DESK. Each subcommand is a role;
// `all` runs every role in one process (the embedded default).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	_ "time/tzdata" // business hours need zone data even on minimal images

	"github.com/atumdesk/atumdesk/internal/ai"
	"github.com/atumdesk/atumdesk/internal/config"
)

const usage = `atumdesk — the ATUM DESK helpdesk

Usage:
  atumdesk all                      every role in one process (API, pipeline, workers, embedded Kafka)
  atumdesk api [-migrate]           the HTTP API and SSE
  atumdesk pipeline                 the Kafka consumers: persister, outbox relay, stage dispatcher
  atumdesk worker [--queues dedup=2,triage=8]  asynq worker pools, one per queue
  atumdesk imap                     the IMAP pollers (one per mailbox across processes, by lease)
  atumdesk migrate up|status        apply or list the database migrations
  atumdesk seed --demo [--password P]  create the demo organisations and users (idempotent)

  atumdesk mail parse FILE.eml      print, as JSON, what ingest makes of a raw message
  atumdesk ai-eval -train FILE.csv  evaluate the built-in classifier (accuracy, calibration)
  atumdesk loadtest -password P [-rate 500 -duration 20s]  measure intake throughput and latency

Configuration is read from ATUMDESK_* environment variables (see README).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cfg, err := config.Load(environ())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	log := newLogger(stderr, cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	cmd, rest := args[0], args[1:]
	switch cmd {
	case "all":
		err = runAll(ctx, cfg, log)
	case "api":
		err = runAPI(ctx, cfg, log, rest)
	case "pipeline":
		err = runPipeline(ctx, cfg, log)
	case "imap":
		err = runIMAP(ctx, cfg, log)
	case "worker":
		err = runWorker(ctx, cfg, log, rest)
	case "migrate":
		err = runMigrate(ctx, cfg, rest, stdout)
	case "mail":
		err = runMail(rest, stdout)
	case "ai-eval":
		err = ai.EvalCommand(rest, stdout)
	case "loadtest":
		err = runLoadtest(ctx, cfg, rest, stdout)
	case "seed":
		err = runSeed(ctx, cfg, rest, stdout)
	default:
		fmt.Fprintf(stderr, "atumdesk: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "atumdesk %s: %v\n", cmd, err)
		return 2
	default:
		log.Error("atumdesk stopped with an error", "command", cmd, "err", err)
		return 1
	}
}

// usageError is a bad command line.
type usageError struct{ error }

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	return nil
}

func environ() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

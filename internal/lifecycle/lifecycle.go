// Package lifecycle runs the long-lived components of a process and stops
// them in reverse order of start: the HTTP server stops taking requests and
// finishes in-flight ones before the workers and consumers it feeds stop,
// and those before the broker they read from.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Component is anything with a blocking Run that returns when ctx is done.
type Component struct {
	Name string
	Run  func(ctx context.Context) error
}

// Group is an ordered set of components.
type Group struct {
	log     *slog.Logger
	timeout time.Duration // per component, on shutdown
	comps   []Component
}

// New returns an empty group; timeout bounds each component's shutdown.
func New(log *slog.Logger, timeout time.Duration) *Group {
	return &Group{log: log, timeout: timeout}
}

// Add appends a component; later components stop first.
func (g *Group) Add(name string, run func(ctx context.Context) error) {
	g.comps = append(g.comps, Component{Name: name, Run: run})
}

type result struct {
	i   int
	err error
}

// Run starts every component and blocks until ctx is cancelled or one
// component returns. Then it cancels the components one at a time, last
// added first, waiting for each to return (or its timeout) before the next.
// It returns the first component error, if any.
func (g *Group) Run(ctx context.Context) error {
	n := len(g.comps)
	cancels := make([]context.CancelFunc, n)
	done := make([]chan error, n)
	first := make(chan result, n)
	for i, c := range g.comps {
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		cancels[i] = cancel
		done[i] = make(chan error, 1)
		go func(i int, c Component) {
			err := c.Run(cctx)
			done[i] <- err
			first <- result{i, err}
		}(i, c)
		g.log.Info("component started", "component", c.Name)
	}
	var failed error
	exited := -1
	select {
	case <-ctx.Done():
		g.log.Info("shutting down", "reason", context.Cause(ctx))
	case r := <-first:
		exited = r.i
		if r.err != nil && !errors.Is(r.err, context.Canceled) {
			failed = fmt.Errorf("%s: %w", g.comps[r.i].Name, r.err)
			g.log.Error("component failed; shutting down", "component", g.comps[r.i].Name, "err", r.err)
		} else {
			g.log.Info("component exited; shutting down", "component", g.comps[r.i].Name)
		}
	}
	for i := n - 1; i >= 0; i-- {
		cancels[i]()
		if i == exited {
			continue
		}
		select {
		case err := <-done[i]:
			if err != nil && !errors.Is(err, context.Canceled) {
				g.log.Warn("component stopped with an error", "component", g.comps[i].Name, "err", err)
			}
		case <-time.After(g.timeout):
			g.log.Error("component did not stop in time", "component", g.comps[i].Name, "timeout", g.timeout)
		}
		g.log.Info("component stopped", "component", g.comps[i].Name)
	}
	return failed
}

package lifecycle

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

func TestStopsInReverseOrder(t *testing.T) {
	g := New(slog.New(slog.NewTextHandler(io.Discard, nil)), time.Second)
	var mu sync.Mutex
	var stopped []string
	for _, name := range []string{"broker", "workers", "http"} {
		g.Add(name, func(ctx context.Context) error {
			<-ctx.Done()
			time.Sleep(5 * time.Millisecond) // a slow drain must still finish before the next stops
			mu.Lock()
			stopped = append(stopped, name)
			mu.Unlock()
			return nil
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if err := g.Run(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"http", "workers", "broker"}
	if len(stopped) != 3 || stopped[0] != want[0] || stopped[1] != want[1] || stopped[2] != want[2] {
		t.Fatalf("stop order %v, want %v", stopped, want)
	}
}

func TestFailingComponentStopsTheRest(t *testing.T) {
	g := New(slog.New(slog.NewTextHandler(io.Discard, nil)), time.Second)
	boom := errors.New("boom")
	var otherStopped bool
	g.Add("steady", func(ctx context.Context) error { <-ctx.Done(); otherStopped = true; return nil })
	g.Add("faulty", func(ctx context.Context) error { return boom })
	err := g.Run(context.Background())
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if !otherStopped {
		t.Fatal("steady component was not stopped")
	}
}

func TestShutdownTimeout(t *testing.T) {
	g := New(slog.New(slog.NewTextHandler(io.Discard, nil)), 20*time.Millisecond)
	block := make(chan struct{})
	defer close(block)
	g.Add("stuck", func(ctx context.Context) error { <-block; return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	start := time.Now()
	_ = g.Run(ctx)
	if time.Since(start) > 2*time.Second {
		t.Fatal("Run did not honour the shutdown timeout")
	}
}

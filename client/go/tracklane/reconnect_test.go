package tracklane_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"example.com/tracklane/client/go/tracklane"
)

// The server is killed (-9) while batches are in flight and started again on the same port and
// data: the Streamer reconnects, replays its window, and every point is stored exactly once.
func TestStreamerReplaysAcrossServerRestart(t *testing.T) {
	if os.Getenv("TRACKLANE_TEST_SERVER_URI") != "" {
		t.Skip("needs a server of its own to kill: TRACKLANE_TEST_SERVER_URI is set")
	}
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	server, err := launch(addr, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := tracklane.NewClient(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	run, err := c.CreateRun(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	runID := run.GetInfo().GetRunId()
	s := c.NewStreamer(tracklane.WithBatchPoints(1_000), tracklane.WithWindow(16))
	const half = 50_000
	for i := range half {
		if err := s.Log(runID, "acc", float64(i), int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	server.kill()
	// Logged while the server is away: buffered, sent after the restart.
	for i := half; i < 2*half; i++ {
		if err := s.Log(runID, "acc", float64(i), int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	err = s.Flush(short)
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush with the server away: want context.DeadlineExceeded, got %v", err)
	}
	server, err = launch(addr, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := c.GetMetricHistory(ctx, runID, "acc")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.GetSteps()) != 2*half {
		t.Fatalf("history has %d points, want %d (stats %+v)", len(h.GetSteps()), 2*half, s.Stats())
	}
	for i, step := range h.GetSteps() {
		if step != int64(i) || h.GetValues()[i] != float64(i) {
			t.Fatalf("point %d: step %d value %v", i, step, h.GetValues()[i])
		}
	}
}

package tracklane_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"example.com/tracklane/client/go/tracklane"
)

const bootstrapToken = "tlk_go-test-bootstrap-token-0123456789abcdef"

// A server with auth on: the right token works for calls and streams; a wrong one is refused
// promptly, by unary calls and by the Streamer (which must not retry a refusal forever).
func TestTokens(t *testing.T) {
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := t.TempDir()
	p, err := launch(addr, dataDir, "TRACKLANE_AUTH=true", "TRACKLANE_AUTH_BOOTSTRAP_TOKEN="+bootstrapToken)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	admin, err := tracklane.NewClient(ctx, addr, tracklane.WithToken(bootstrapToken))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	exp, err := admin.CreateExperiment(ctx, "go-auth")
	if err != nil {
		t.Fatal(err)
	}
	run, err := admin.CreateRun(ctx, exp.GetExperimentId(), "")
	if err != nil {
		t.Fatal(err)
	}
	runID := run.GetInfo().GetRunId()
	s := admin.NewStreamer()
	for i := range 1000 {
		if err := s.Log(runID, "loss", float64(i), int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	series, err := admin.GetMetricHistory(ctx, runID, "loss")
	if err != nil || len(series.GetSteps()) != 1000 {
		t.Fatalf("history: %d steps, %v", len(series.GetSteps()), err)
	}

	// The token from the environment, as every Tracklane client reads it.
	t.Setenv("TRACKLANE_TRACKING_TOKEN", "tlk_wrong")
	intruder, err := tracklane.NewClient(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	if _, err := intruder.GetExperiment(ctx, exp.GetExperimentId()); !errors.Is(err, tracklane.ErrUnauthenticated) {
		t.Fatalf("GetExperiment with a wrong token: %v", err)
	}
	bad := intruder.NewStreamer()
	if err := bad.Log(runID, "loss", 1, 5000); err != nil {
		t.Fatal(err)
	}
	closeCtx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	if err := bad.Close(closeCtx); !errors.Is(err, tracklane.ErrUnauthenticated) {
		t.Fatalf("Streamer with a wrong token: %v", err)
	}
	if series, _ := admin.GetMetricHistory(ctx, runID, "loss"); len(series.GetSteps()) != 1000 {
		t.Fatalf("the refused point was stored: %d steps", len(series.GetSteps()))
	}
}

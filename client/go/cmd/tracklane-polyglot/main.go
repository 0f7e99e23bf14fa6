// Command tracklane-polyglot drives the Go client from other languages' tests and benchmarks
// (tests/e2e/test_polyglot.py, bench/polyglot_streaming.py). It prints one JSON object.
//
//	tracklane-polyglot stream -addr HOST:PORT -run RUN_ID [-key K] [-points N] [-t0 MS]
//	    logs N points (step i, value i*0.001, timestamp t0+i) through a Streamer and waits for the acks
//	tracklane-polyglot alias -addr HOST:PORT -model NAME -alias ALIAS
//	    resolves a registered model's version by alias
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"example.com/tracklane/client/go/tracklane"
)

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: tracklane-polyglot stream|alias [flags]"))
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "", "server address (host:port); empty: $TRACKLANE_TRACKING_URI")
	runID := fs.String("run", "", "run id (stream)")
	key := fs.String("key", "loss", "metric key (stream)")
	points := fs.Int("points", 100_000, "points to stream")
	batch := fs.Int("batch", 10_000, "points per batch")
	t0 := fs.Int64("t0", 1_700_000_000_000, "timestamp of the first point, epoch ms")
	model := fs.String("model", "", "registered model (alias)")
	alias := fs.String("alias", "", "alias (alias)")
	_ = fs.Parse(os.Args[2:])

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := tracklane.NewClient(ctx, *addr)
	if err != nil {
		fail(err)
	}
	defer c.Close()
	switch os.Args[1] {
	case "stream":
		start := time.Now()
		s := c.NewStreamer(tracklane.WithBatchPoints(*batch))
		for i := range *points {
			if err := s.LogAt(*runID, *key, float64(i)*0.001, int64(i), time.UnixMilli(*t0+int64(i))); err != nil {
				fail(err)
			}
		}
		logged := time.Since(start)
		if err := s.Close(ctx); err != nil {
			fail(err)
		}
		elapsed := time.Since(start).Seconds()
		st := s.Stats()
		emit(map[string]any{
			"points": st.Logged, "acked": st.Acked, "written": st.Written, "seconds": elapsed,
			"log_seconds": logged.Seconds(), "points_per_second": float64(st.Acked) / elapsed,
		})
	case "alias":
		mv, err := c.GetModelVersionByAlias(ctx, *model, *alias)
		if err != nil {
			fail(err)
		}
		emit(map[string]any{"name": mv.GetName(), "version": mv.GetVersion(), "run_id": mv.GetRunId(), "source": mv.GetSource()})
	default:
		fail(fmt.Errorf("unknown command %q: stream or alias", os.Args[1]))
	}
}

func emit(v any) {
	if err := json.NewEncoder(os.Stdout).Encode(v); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "tracklane-polyglot:", err)
	os.Exit(1)
}

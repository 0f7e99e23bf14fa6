// Package tracklane is a thin, idiomatic Go client for the Tracklane tracking server.
//
// It wraps the generated gRPC stubs in package tracklanev1: context-first methods for the common
// calls, errors that errors.Is understands (ErrNotFound, ErrAlreadyExists...), artifact transfer
// from an io.Reader and to an io.Writer, and a Streamer that ships metric points over one
// bidirectional StreamMetrics call with batching, acknowledgements and replay. Every other RPC is
// one call away through Client.Tracking, Client.Artifacts and Client.Registry.
//
//	c, err := tracklane.NewClient(ctx, "127.0.0.1:50051")
//	exp, err := c.CreateExperiment(ctx, "mnist")
//	run, err := c.CreateRun(ctx, exp.GetExperimentId(), "baseline")
//	s := c.NewStreamer()
//	s.Log(run.GetInfo().GetRunId(), "loss", 0.31, 10)
//	err = s.Close(ctx) // waits until the server has stored every point
package tracklane

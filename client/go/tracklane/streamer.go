package tracklane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "example.com/tracklane/client/go/tracklanev1"
)

// Where a point waits, in order: a per-run builder (open batch) -> queue (sealed, numbered) ->
// window (sent, not yet acknowledged). The server applies each (run, writer, sequence) once and
// acknowledges it after commit, so after a reconnect the whole window is sent again, in order:
// replays are acknowledged as duplicates and nothing is stored twice.

// StreamerOption configures NewStreamer.
type StreamerOption func(*streamerConfig)

type streamerConfig struct {
	batchPoints   int
	flushInterval time.Duration
	window        int
	maxBuffered   int
	writerID      string
}

// WithBatchPoints sets the points per batch (default 10,000; the server takes up to 1,000,000).
func WithBatchPoints(n int) StreamerOption { return func(c *streamerConfig) { c.batchPoints = n } }

// WithFlushInterval sets how long a point may wait in an open batch (default 200 ms).
func WithFlushInterval(d time.Duration) StreamerOption {
	return func(c *streamerConfig) { c.flushInterval = d }
}

// WithWindow sets how many batches may be sent and not yet acknowledged (default 8).
func WithWindow(n int) StreamerOption { return func(c *streamerConfig) { c.window = n } }

// WithMaxBufferedPoints bounds the points held in memory (default 2,000,000): past it, Log blocks
// until the server has acknowledged enough of them.
func WithMaxBufferedPoints(n int) StreamerOption {
	return func(c *streamerConfig) { c.maxBuffered = n }
}

// WithWriterID sets the writer id (8-64 printable ASCII characters; default: 32 random hex digits).
// Reusing a writer id across processes requires continuing its sequence numbers: leave it unset.
func WithWriterID(id string) StreamerOption { return func(c *streamerConfig) { c.writerID = id } }

type batch struct {
	req    *pb.StreamMetricsRequest
	points int
	serial int64 // creation order across runs, for Flush
	gaps   int   // FAILED_PRECONDITION (sequence gap) answers so far
}

type builder struct {
	keys  map[string]uint32
	req   *pb.StreamMetricsRequest
	first time.Time
}

// Streamer ships metric points over one long-lived StreamMetrics call: Log only appends to memory;
// a background goroutine sends batches, keeps up to the window unacknowledged, and reconnects
// (with backoff) and replays them when the stream breaks. Safe for concurrent use.
type Streamer struct {
	client *Client
	cfg    streamerConfig

	mu       sync.Mutex
	cond     *sync.Cond
	open     map[string]*builder
	nextSeq  map[string]int64
	queue    []*batch
	window   []*batch
	buffered int   // points in open builders, queue and window
	sealed   int64 // batches sealed so far
	done     int64 // batches acknowledged (stored, duplicate or refused for good)
	failures []error
	closing  bool
	stopped  bool // the sender gave up (Close's context ended)
	sent     int64
	acked    int64
	written  int64

	stop     context.CancelFunc
	finished chan struct{}
}

// StreamerStats counts points since the Streamer started.
type StreamerStats struct {
	Logged  int64 // passed to Log
	Acked   int64 // acknowledged by the server (stored or replays of stored ones)
	Written int64 // stored by the server (replays excluded)
}

// NewStreamer starts a Streamer on c. Close it to send what is left.
func (c *Client) NewStreamer(opts ...StreamerOption) *Streamer {
	cfg := streamerConfig{batchPoints: 10_000, flushInterval: 200 * time.Millisecond, window: 8, maxBuffered: 2_000_000}
	for _, opt := range opts {
		opt(&cfg)
	}
	if cfg.writerID == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		cfg.writerID = hex.EncodeToString(b[:])
	}
	cfg.batchPoints = max(cfg.batchPoints, 1)
	cfg.window = max(cfg.window, 1)
	cfg.maxBuffered = max(cfg.maxBuffered, cfg.batchPoints)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Streamer{
		client: c, cfg: cfg, open: map[string]*builder{}, nextSeq: map[string]int64{},
		stop: cancel, finished: make(chan struct{}),
	}
	s.cond = sync.NewCond(&s.mu)
	context.AfterFunc(ctx, func() { // wake every waiter when Close stops the sender
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	go s.sendLoop(ctx)
	go s.sealLoop(ctx)
	return s
}

// WriterID is the id this Streamer's batches carry.
func (s *Streamer) WriterID() string { return s.cfg.writerID }

// Log appends a point stamped now. It does no I/O; it blocks only while the buffer is full.
func (s *Streamer) Log(runID, key string, value float64, step int64) error {
	return s.LogAt(runID, key, value, step, time.Now())
}

// LogAt appends a point with an explicit timestamp.
func (s *Streamer) LogAt(runID, key string, value float64, step int64, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.buffered >= s.cfg.maxBuffered && !s.closing {
		s.cond.Wait()
	}
	if s.closing {
		return ErrStreamerClosed
	}
	b := s.open[runID]
	if b == nil {
		b = &builder{keys: map[string]uint32{}, req: &pb.StreamMetricsRequest{RunId: runID, WriterId: s.cfg.writerID}, first: time.Now()}
		s.open[runID] = b
	}
	idx, ok := b.keys[key]
	if !ok {
		idx = uint32(len(b.req.Keys))
		b.keys[key] = idx
		b.req.Keys = append(b.req.Keys, key)
	}
	r := b.req
	r.KeyIndices = append(r.KeyIndices, idx)
	r.Values = append(r.Values, value)
	r.Steps = append(r.Steps, step)
	r.TimestampsMs = append(r.TimestampsMs, at.UnixMilli())
	s.buffered++
	s.sent++
	if len(r.Values) >= s.cfg.batchPoints {
		s.sealLocked(runID, b)
	}
	return nil
}

// sealLocked numbers an open batch and queues it for the sender.
func (s *Streamer) sealLocked(runID string, b *builder) {
	delete(s.open, runID)
	s.nextSeq[runID]++
	b.req.Sequence = s.nextSeq[runID]
	s.sealed++
	s.queue = append(s.queue, &batch{req: b.req, points: len(b.req.Values), serial: s.sealed})
	s.cond.Broadcast()
}

func (s *Streamer) sealAllLocked() {
	for runID, b := range s.open {
		s.sealLocked(runID, b)
	}
}

// sealLoop seals batches older than the flush interval, so a slow producer's points still go out.
func (s *Streamer) sealLoop(ctx context.Context) {
	tick := time.NewTicker(max(s.cfg.flushInterval/2, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			s.mu.Lock()
			for runID, b := range s.open {
				if now.Sub(b.first) >= s.cfg.flushInterval {
					s.sealLocked(runID, b)
				}
			}
			s.mu.Unlock()
		}
	}
}

// Flush sends every point logged so far and waits until the server has acknowledged them, or ctx
// ends. It returns the batches the server refused for good since the last Flush (errors.Join of
// *Error), e.g. ErrNotFound for an unknown run.
func (s *Streamer) Flush(ctx context.Context) error {
	s.mu.Lock()
	s.sealAllLocked()
	target := s.sealed
	s.mu.Unlock()
	// sync.Cond cannot select on ctx: wake the waiters when ctx ends.
	stopWake := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stopWake()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.done < target && ctx.Err() == nil && !s.stopped {
		s.cond.Wait()
	}
	failures := s.failures
	s.failures = nil
	if s.done < target {
		err := ctx.Err()
		if err == nil {
			err = ErrStreamerClosed
		}
		failures = append(failures, fmt.Errorf("tracklane: %d points not acknowledged: %w", s.buffered, err))
	}
	return errors.Join(failures...)
}

// Close flushes (see Flush), then stops the Streamer. When ctx ends first, the points not yet
// acknowledged are dropped and counted in the error.
func (s *Streamer) Close(ctx context.Context) error {
	err := s.Flush(ctx)
	s.mu.Lock()
	s.closing = true
	s.cond.Broadcast()
	s.mu.Unlock()
	s.stop()
	<-s.finished
	return err
}

// Stats reports the points logged, acknowledged and stored so far.
func (s *Streamer) Stats() StreamerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return StreamerStats{Logged: s.sent, Acked: s.acked, Written: s.written}
}

var retryable = map[codes.Code]bool{
	codes.Unavailable: true, codes.DeadlineExceeded: true, codes.Aborted: true,
	codes.ResourceExhausted: true, codes.Canceled: true,
}

// gapTries: a gap on the oldest batch of a writer means its predecessor is gone for good; after
// this many answers the batch is reported instead of retried forever.
const gapTries = 3

func (s *Streamer) sendLoop(ctx context.Context) {
	defer close(s.finished)
	defer func() {
		s.mu.Lock()
		s.stopped = true
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		progressed := s.session(ctx)
		if progressed {
			backoff = 50 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// session runs one StreamMetrics call: replays the window, then sends queued batches while the
// window has room, until the stream breaks or ctx ends. Reports whether any batch was acknowledged.
func (s *Streamer) session(parent context.Context) (progressed bool) {
	s.mu.Lock()
	for len(s.queue) == 0 && len(s.window) == 0 && parent.Err() == nil {
		s.cond.Wait() // nothing to send: no call open while idle
	}
	s.mu.Unlock()
	if parent.Err() != nil {
		return false
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	stopWake := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stopWake()
	stream, err := s.client.tracking.StreamMetrics(ctx)
	if err != nil {
		return false
	}
	recvDone := make(chan struct{})
	var ackedBefore int64
	s.mu.Lock()
	ackedBefore = s.done
	replay := append([]*batch(nil), s.window...)
	s.mu.Unlock()
	go func() {
		defer close(recvDone)
		s.receive(stream, cancel)
	}()
	defer func() {
		cancel()
		<-recvDone // the old receiver must not touch the window once the next session starts
		s.mu.Lock()
		progressed = s.done > ackedBefore
		s.mu.Unlock()
	}()
	for _, b := range replay {
		if stream.Send(b.req) != nil {
			return
		}
	}
	s.mu.Lock()
	for {
		if ctx.Err() != nil {
			s.mu.Unlock()
			return
		}
		if len(s.window) < s.cfg.window && len(s.queue) > 0 {
			b := s.queue[0]
			s.queue = s.queue[1:]
			s.window = append(s.window, b)
			s.mu.Unlock()
			if stream.Send(b.req) != nil {
				return // b stays in the window: the next session replays it
			}
			s.mu.Lock()
			continue
		}
		s.cond.Wait()
	}
}

// receive applies acks to the window, oldest first, and cancels the session when the stream
// breaks or the server asks for a replay (a retryable refusal).
func (s *Streamer) receive(stream pb.TrackingService_StreamMetricsClient, cancel context.CancelFunc) {
	defer cancel()
	for {
		resp, err := stream.Recv()
		if err != nil {
			if c := status.Code(err); c == codes.Unauthenticated || c == codes.PermissionDenied {
				s.refuseAll(err) // a wrong token or a missing grant: retrying cannot help
			}
			return
		}
		s.mu.Lock()
		if len(s.window) == 0 || s.window[0].req.GetSequence() != resp.GetSequence() || s.window[0].req.GetRunId() != resp.GetRunId() {
			s.mu.Unlock()
			return // not the ack expected: start over from the window
		}
		b := s.window[0]
		if e := resp.GetError(); e != nil {
			code := codes.Code(e.GetCode())
			if retryable[code] || (code == codes.FailedPrecondition && b.gaps < gapTries-1 && isGap(e)) {
				if code == codes.FailedPrecondition {
					b.gaps++
				}
				s.mu.Unlock()
				return
			}
			s.failures = append(s.failures, fmt.Errorf("run %s batch %d (%d points): %w", b.req.GetRunId(), b.req.GetSequence(), b.points, fromItemError(e)))
		} else {
			s.acked += int64(b.points)
			s.written += resp.GetPointsWritten()
		}
		s.window = s.window[1:]
		s.buffered -= b.points
		s.done++
		s.cond.Broadcast()
		s.mu.Unlock()
	}
}

// refuseAll drops every batch sent or queued, reporting them once through Flush: the server
// refused the whole stream for good.
func (s *Streamer) refuseAll(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	points := 0
	for _, b := range append(s.window, s.queue...) {
		points += b.points
		s.done++
	}
	if points > 0 {
		s.failures = append(s.failures, fmt.Errorf("tracklane: %d points refused: %w", points, wrap(err)))
	}
	s.buffered -= points
	s.window, s.queue = nil, nil
	s.cond.Broadcast()
}

// isGap tells a sequence gap (worth a replay) from other FAILED_PRECONDITION refusals such as a
// deleted run, which no retry fixes.
func isGap(e *pb.ItemError) bool { return e.GetField() == "sequence" }

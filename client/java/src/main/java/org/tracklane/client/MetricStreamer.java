package org.tracklane.client;

import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.tracklane.v1.StreamMetricsRequest;
import org.tracklane.v1.StreamMetricsResponse;
import org.tracklane.v1.TrackingServiceGrpc;

/**
 * Ships metric points over one long-lived StreamMetrics call. {@link #log} only appends to memory;
 * a sender thread seals per-run batches, keeps up to a window of them unacknowledged, and when the
 * stream breaks reconnects with backoff and sends the window again, in order. The server applies
 * each (run, writer, sequence) once, so nothing is lost or stored twice. Thread-safe.
 *
 * <pre>{@code
 * try (MetricStreamer s = client.metricStreamer()) {
 *   s.log(runId, "loss", 0.31, 10);
 * } // close(): waits until the server stored every point
 * }</pre>
 */
public final class MetricStreamer implements AutoCloseable {
  /** Settings; {@code Options.defaults().batchPoints(5_000)}. */
  public record Options(int batchPoints, Duration flushInterval, int window, int maxBufferedPoints,
      String writerId, Duration closeTimeout) {
    public static Options defaults() {
      return new Options(10_000, Duration.ofMillis(200), 8, 2_000_000, "", Duration.ofMinutes(1));
    }

    /** Points per batch (default 10,000). */
    public Options batchPoints(int n) {
      return new Options(n, flushInterval, window, maxBufferedPoints, writerId, closeTimeout);
    }

    /** How long a point may wait in an open batch (default 200 ms). */
    public Options flushInterval(Duration d) {
      return new Options(batchPoints, d, window, maxBufferedPoints, writerId, closeTimeout);
    }

    /** Batches sent and not yet acknowledged at most (default 8). */
    public Options window(int n) {
      return new Options(batchPoints, flushInterval, n, maxBufferedPoints, writerId, closeTimeout);
    }

    /** Past this many buffered points {@code log} blocks (default 2,000,000). */
    public Options maxBufferedPoints(int n) {
      return new Options(batchPoints, flushInterval, window, n, writerId, closeTimeout);
    }

    /** 8-64 printable ASCII characters (default: 32 random hex digits). */
    public Options writerId(String id) {
      return new Options(batchPoints, flushInterval, window, maxBufferedPoints, id, closeTimeout);
    }

    /** How long {@link MetricStreamer#close()} waits for acknowledgements (default 1 min). */
    public Options closeTimeout(Duration d) {
      return new Options(batchPoints, flushInterval, window, maxBufferedPoints, writerId, d);
    }
  }

  /** Points logged, acknowledged (stored or replays of stored ones) and stored so far. */
  public record Stats(long logged, long acked, long written) {}

  private static final Set<Status.Code> RETRYABLE = Set.of(Status.Code.UNAVAILABLE,
      Status.Code.DEADLINE_EXCEEDED, Status.Code.ABORTED, Status.Code.RESOURCE_EXHAUSTED, Status.Code.CANCELLED);
  // A gap on a writer's oldest batch means its predecessor is gone; reported after this many tries.
  private static final int GAP_TRIES = 3;

  private static final class Batch {
    final StreamMetricsRequest req;
    final int points;
    int gaps;

    Batch(StreamMetricsRequest req) {
      this.req = req;
      this.points = req.getValuesCount();
    }
  }

  private static final class Open {
    final StreamMetricsRequest.Builder req;
    final Map<String, Integer> keys = new HashMap<>();
    final long sinceNanos = System.nanoTime();

    Open(StreamMetricsRequest.Builder req) {
      this.req = req;
    }
  }

  private final TrackingServiceGrpc.TrackingServiceStub stub;
  private final Options options;
  private final String writerId;
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition changed = lock.newCondition();
  private final Map<String, Open> open = new HashMap<>();
  private final Map<String, Long> nextSeq = new HashMap<>();
  private final ArrayDeque<Batch> queue = new ArrayDeque<>();
  private final ArrayDeque<Batch> window = new ArrayDeque<>();
  private final List<TracklaneException> failures = new ArrayList<>();
  private final Thread sender;
  private long buffered;
  private long sealed;
  private long done;
  private long logged;
  private long acked;
  private long written;
  private boolean closing;
  private boolean stopped;

  MetricStreamer(TrackingServiceGrpc.TrackingServiceStub stub, Options options) {
    this.stub = stub;
    this.options = options;
    this.writerId = options.writerId().isEmpty() ? randomId() : options.writerId();
    this.sender = new Thread(this::sendLoop, "tracklane-metric-sender");
    sender.setDaemon(true);
    sender.start();
  }

  private static String randomId() {
    byte[] b = new byte[16];
    new SecureRandom().nextBytes(b);
    return HexFormat.of().formatHex(b);
  }

  /** The writer id this streamer's batches carry. */
  public String writerId() {
    return writerId;
  }

  /** Appends a point stamped now; no I/O. Blocks only while the buffer is full. */
  public void log(String runId, String key, double value, long step) {
    log(runId, key, value, step, System.currentTimeMillis());
  }

  /** Appends a point with an explicit timestamp (epoch millis). */
  public void log(String runId, String key, double value, long step, long timestampMs) {
    lock.lock();
    try {
      while (buffered >= options.maxBufferedPoints() && !closing) {
        changed.awaitUninterruptibly();
      }
      if (closing) {
        throw new IllegalStateException("the metric streamer is closed");
      }
      Open b = open.computeIfAbsent(runId,
          r -> new Open(StreamMetricsRequest.newBuilder().setRunId(r).setWriterId(writerId)));
      Integer idx = b.keys.get(key);
      if (idx == null) {
        idx = b.keys.size();
        b.keys.put(key, idx);
        b.req.addKeys(key);
      }
      b.req.addKeyIndices(idx).addValues(value).addSteps(step).addTimestampsMs(timestampMs);
      buffered++;
      logged++;
      if (b.req.getValuesCount() >= options.batchPoints()) {
        seal(runId, b);
      }
    } finally {
      lock.unlock();
    }
  }

  private void seal(String runId, Open b) {
    open.remove(runId);
    long seq = nextSeq.merge(runId, 1L, Long::sum);
    queue.add(new Batch(b.req.setSequence(seq).build()));
    sealed++;
    changed.signalAll();
  }

  /**
   * Sends everything logged so far and waits until the server acknowledged it.
   *
   * @throws TracklaneException the first batch the server refused for good since the last flush
   *     (others as suppressed), or UNAVAILABLE when {@code timeout} passed first
   */
  public void flush(Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    lock.lock();
    try {
      for (var e : new ArrayList<>(open.entrySet())) {
        seal(e.getKey(), e.getValue());
      }
      long target = sealed;
      while (done < target && !stopped) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          break;
        }
        changed.awaitNanos(left);
      }
      List<TracklaneException> errors = new ArrayList<>(failures);
      failures.clear();
      if (done < target) {
        errors.add(TracklaneException.of(Status.Code.UNAVAILABLE,
            buffered + " points not acknowledged within " + timeout, "", null));
      }
      if (!errors.isEmpty()) {
        TracklaneException first = errors.get(0);
        errors.subList(1, errors.size()).forEach(first::addSuppressed);
        throw first;
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw TracklaneException.of(Status.Code.CANCELLED, "interrupted while flushing", "", e);
    } finally {
      lock.unlock();
    }
  }

  /** Flushes (waiting up to the close timeout), then stops the sender. */
  @Override
  public void close() {
    try {
      flush(options.closeTimeout());
    } finally {
      lock.lock();
      try {
        closing = true;
        changed.signalAll();
      } finally {
        lock.unlock();
      }
      try {
        sender.join(TimeUnit.SECONDS.toMillis(10));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /** Points logged, acknowledged and stored so far. */
  public Stats stats() {
    lock.lock();
    try {
      return new Stats(logged, acked, written);
    } finally {
      lock.unlock();
    }
  }

  // --- sender thread ---

  private void sendLoop() {
    long backoffMs = 50;
    try {
      while (true) {
        lock.lock();
        try {
          while (queue.isEmpty() && window.isEmpty() && !closing) {
            sealOld();
            changed.await(Math.max(1, options.flushInterval().toMillis() / 2), TimeUnit.MILLISECONDS);
          }
          if (closing) {
            return;
          }
        } finally {
          lock.unlock();
        }
        long before = doneCount();
        session();
        if (doneCount() > before) {
          backoffMs = 50;
        }
        lock.lock();
        try {
          if (!closing) {
            changed.await(backoffMs, TimeUnit.MILLISECONDS);
          }
        } finally {
          lock.unlock();
        }
        backoffMs = Math.min(backoffMs * 2, 5_000);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      lock.lock();
      try {
        stopped = true;
        changed.signalAll();
      } finally {
        lock.unlock();
      }
    }
  }

  private long doneCount() {
    lock.lock();
    try {
      return done;
    } finally {
      lock.unlock();
    }
  }

  private void sealOld() {
    long now = System.nanoTime();
    Iterator<Map.Entry<String, Open>> it = open.entrySet().iterator();
    List<Map.Entry<String, Open>> old = new ArrayList<>();
    while (it.hasNext()) {
      var e = it.next();
      if (now - e.getValue().sinceNanos >= options.flushInterval().toNanos()) {
        old.add(e);
      }
    }
    old.forEach(e -> seal(e.getKey(), e.getValue()));
  }

  /** One StreamMetrics call: replay the window, then send while the window has room, until it breaks. */
  private void session() throws InterruptedException {
    Session s = new Session();
    stub.streamMetrics(s);
    // onNext serializes the batch: done outside the lock so log() never waits for it. Only this
    // thread sends, so batches still go out in window order.
    try {
      List<Batch> replay;
      lock.lock();
      try {
        replay = new ArrayList<>(window);
      } finally {
        lock.unlock();
      }
      for (Batch b : replay) {
        s.requests.onNext(b.req); // replay, oldest first
      }
      while (true) {
        Batch next = null;
        lock.lock();
        try {
          if (s.ended || closing) {
            return;
          }
          if (window.size() < options.window() && !queue.isEmpty()) {
            next = queue.poll();
            window.add(next);
          } else {
            sealOld();
            changed.await(Math.max(1, options.flushInterval().toMillis() / 2), TimeUnit.MILLISECONDS);
          }
        } finally {
          lock.unlock();
        }
        if (next != null) {
          s.requests.onNext(next.req);
        }
      }
    } finally {
      boolean graceful;
      lock.lock();
      try {
        graceful = closing && !s.ended;
      } finally {
        lock.unlock();
      }
      if (graceful) {
        s.requests.onCompleted();
      } else {
        s.requests.cancel("tracklane: reconnecting", null);
      }
    }
  }

  /** Receives acks for one call; marks it ended when it breaks or the server asks for a replay. */
  private final class Session implements ClientResponseObserver<StreamMetricsRequest, StreamMetricsResponse> {
    ClientCallStreamObserver<StreamMetricsRequest> requests;
    boolean ended; // guarded by lock

    @Override
    public void beforeStart(ClientCallStreamObserver<StreamMetricsRequest> requests) {
      this.requests = requests;
    }

    @Override
    public void onNext(StreamMetricsResponse resp) {
      lock.lock();
      try {
        if (ended) {
          return;
        }
        Batch b = window.peek();
        if (b == null || b.req.getSequence() != resp.getSequence() || !b.req.getRunId().equals(resp.getRunId())) {
          end(); // not the ack expected: start over from the window
          return;
        }
        if (resp.hasError()) {
          Status.Code code = Status.fromCodeValue(resp.getError().getCode()).getCode();
          boolean gap = code == Status.Code.FAILED_PRECONDITION && resp.getError().getField().equals("sequence");
          if (RETRYABLE.contains(code) || (gap && ++b.gaps < GAP_TRIES)) {
            end();
            return;
          }
          failures.add(TracklaneException.from(resp.getError()));
        } else {
          acked += b.points;
          written += resp.getPointsWritten();
        }
        window.poll();
        buffered -= b.points;
        done++;
        changed.signalAll();
      } finally {
        lock.unlock();
      }
    }

    @Override
    public void onError(Throwable t) {
      lock.lock();
      try {
        Status.Code code = t == null ? Status.Code.OK : Status.fromThrowable(t).getCode();
        if (!ended && (code == Status.Code.UNAUTHENTICATED || code == Status.Code.PERMISSION_DENIED)) {
          refuseAll(t); // a wrong token or a missing grant: retrying cannot help
        }
        end();
      } finally {
        lock.unlock();
      }
    }

    @Override
    public void onCompleted() {
      onError(null);
    }

    /** Drops every batch sent or queued, reported once by the next flush. Called under the lock. */
    private void refuseAll(Throwable t) {
      long points = 0;
      for (Batch b : window) {
        points += b.points;
      }
      for (Batch b : queue) {
        points += b.points;
      }
      if (points > 0 && t instanceof RuntimeException e
          && TracklaneException.from(e) instanceof TracklaneException refusal) {
        failures.add(refusal);
      }
      done += window.size() + queue.size();
      buffered -= points;
      window.clear();
      queue.clear();
    }

    private void end() {
      ended = true;
      changed.signalAll();
    }
  }
}

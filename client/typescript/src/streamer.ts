// MetricStreamer: batches points per run and ships them over one StreamMetrics call.
//
// Where a point waits, in order: an open per-run batch -> queue (sealed, numbered) -> window (sent,
// not yet acknowledged). The server applies each (run, writer, sequence) once and acknowledges it
// after commit, so after a reconnect the whole window is sent again, in order: replays are
// acknowledged as duplicates and nothing is stored twice.
import { randomBytes } from "node:crypto";

import { type ClientDuplexStream, type Metadata, type ServiceError, status } from "@grpc/grpc-js";

import { fromItemError, fromServiceError, type TracklaneError, UnavailableError } from "./errors.js";
import type {
  StreamMetricsRequest,
  StreamMetricsResponse,
  TrackingServiceClient,
} from "./gen/tracklane/v1/tracking.js";

export interface MetricStreamerOptions {
  /** Points per batch (default 10,000; the server takes up to 1,000,000). */
  batchPoints?: number;
  /** How long a point may wait in an open batch, ms (default 200). */
  flushIntervalMs?: number;
  /** Batches sent and not yet acknowledged at most (default 8). */
  window?: number;
  /** Past this many buffered points `log` returns false: `await streamer.drained()` (default 2,000,000). */
  maxBufferedPoints?: number;
  /** 8-64 printable ASCII characters; default 32 random hex digits. */
  writerId?: string;
}

export interface MetricStreamerStats {
  /** Passed to log. */
  logged: number;
  /** Acknowledged by the server (stored, or replays of stored ones). */
  acked: number;
  /** Stored by the server (replays excluded). */
  written: number;
}

interface Batch {
  req: StreamMetricsRequest;
  serial: number;
  gaps: number;
}

interface OpenBatch {
  req: StreamMetricsRequest;
  keys: Map<string, number>;
  since: number;
}

// Refusals that mean "not now": the window is sent again on a new stream.
const RETRYABLE = new Set<number>([
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
  status.ABORTED,
  status.RESOURCE_EXHAUSTED,
  status.CANCELLED,
]);
// A gap on a writer's oldest batch means its predecessor is gone; report it after this many tries.
const GAP_TRIES = 3;

/** Ships metric points in batches; `log` does no I/O. Create with `client.metricStreamer()`. */
export class MetricStreamer {
  readonly writerId: string;
  readonly #stub: TrackingServiceClient;
  readonly #metadata: Metadata;
  readonly #cfg: Required<Omit<MetricStreamerOptions, "writerId">>;
  readonly #open = new Map<string, OpenBatch>();
  readonly #nextSeq = new Map<string, number>();
  #queue: Batch[] = [];
  #window: Batch[] = [];
  #buffered = 0;
  #sealed = 0;
  #done = 0;
  #failures: TracklaneError[] = [];
  #waiters: { target: number; resolve: () => void }[] = [];
  #call: ClientDuplexStream<StreamMetricsRequest, StreamMetricsResponse> | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #backoffMs = 50;
  #doneAtConnect = 0;
  #closed = false;
  readonly #sealTimer: NodeJS.Timeout;
  readonly #stats: MetricStreamerStats = { logged: 0, acked: 0, written: 0 };

  constructor(stub: TrackingServiceClient, metadata: Metadata, opts: MetricStreamerOptions = {}) {
    this.#stub = stub;
    this.#metadata = metadata;
    this.#cfg = {
      batchPoints: Math.max(1, opts.batchPoints ?? 10_000),
      flushIntervalMs: opts.flushIntervalMs ?? 200,
      window: Math.max(1, opts.window ?? 8),
      maxBufferedPoints: opts.maxBufferedPoints ?? 2_000_000,
    };
    this.writerId = opts.writerId ?? randomBytes(16).toString("hex");
    this.#sealTimer = setInterval(() => this.#sealOld(), Math.max(1, this.#cfg.flushIntervalMs / 2));
    this.#sealTimer.unref(); // an idle streamer does not keep the process alive
  }

  /**
   * Appends a point (timestamp: now unless given). Returns false when the buffer is past
   * `maxBufferedPoints`: the point is kept, and `await drained()` before logging more.
   */
  log(runId: string, key: string, value: number, step = 0, timestampMs = Date.now()): boolean {
    if (this.#closed) {
      throw new Error("the metric streamer is closed");
    }
    let b = this.#open.get(runId);
    if (b === undefined) {
      b = {
        req: { runId, writerId: this.writerId, sequence: 0, keys: [], keyIndices: [], values: [], steps: [], timestampsMs: [] },
        keys: new Map(),
        since: Date.now(),
      };
      this.#open.set(runId, b);
    }
    let idx = b.keys.get(key);
    if (idx === undefined) {
      idx = b.req.keys.length;
      b.keys.set(key, idx);
      b.req.keys.push(key);
    }
    b.req.keyIndices.push(idx);
    b.req.values.push(value);
    b.req.steps.push(step);
    b.req.timestampsMs.push(timestampMs);
    this.#buffered++;
    this.#stats.logged++;
    if (b.req.values.length >= this.#cfg.batchPoints) {
      this.#seal(runId, b);
    }
    return this.#buffered < this.#cfg.maxBufferedPoints;
  }

  /** Resolves once the buffer is below `maxBufferedPoints` again. */
  async drained(): Promise<void> {
    while (this.#buffered >= this.#cfg.maxBufferedPoints && !this.#closed) {
      await this.#waitFor(this.#done + 1);
    }
  }

  /**
   * Sends everything logged so far and resolves when the server acknowledged it. Rejects with an
   * AggregateError of the batches refused for good since the last flush (e.g. NotFoundError), or
   * with UnavailableError when `timeoutMs` passes first (the points stay buffered).
   */
  async flush(opts: { timeoutMs?: number } = {}): Promise<void> {
    for (const [runId, b] of this.#open) {
      this.#seal(runId, b);
    }
    const acked = this.#waitFor(this.#sealed);
    if (opts.timeoutMs === undefined) {
      await acked;
    } else {
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<"expired">((resolve) => {
        timer = setTimeout(() => resolve("expired"), opts.timeoutMs);
      });
      const outcome = await Promise.race([acked, expired]);
      clearTimeout(timer);
      if (outcome === "expired") {
        throw new UnavailableError(`${this.#buffered} points not acknowledged within ${opts.timeoutMs} ms`, status.UNAVAILABLE);
      }
    }
    const failures = this.#failures;
    this.#failures = [];
    if (failures.length > 0) {
      throw new AggregateError(failures, failures.map((f) => f.message).join("; "));
    }
  }

  /** Flushes (see `flush`), then ends the stream; points not acknowledged by then are dropped. */
  async close(opts: { timeoutMs?: number } = {}): Promise<void> {
    try {
      await this.flush(opts);
    } finally {
      this.#closed = true;
      clearInterval(this.#sealTimer);
      clearTimeout(this.#retryTimer);
      const call = this.#call;
      this.#call = undefined;
      call?.end();
    }
  }

  /** Points logged, acknowledged and stored so far. */
  get stats(): MetricStreamerStats {
    return { ...this.#stats };
  }

  #waitFor(target: number): Promise<void> {
    if (this.#done >= target) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push({ target, resolve }));
  }

  #seal(runId: string, b: OpenBatch): void {
    this.#open.delete(runId);
    const seq = (this.#nextSeq.get(runId) ?? 0) + 1;
    this.#nextSeq.set(runId, seq);
    b.req.sequence = seq;
    this.#queue.push({ req: b.req, serial: ++this.#sealed, gaps: 0 });
    this.#pump();
  }

  #sealOld(): void {
    const now = Date.now();
    for (const [runId, b] of this.#open) {
      if (now - b.since >= this.#cfg.flushIntervalMs) {
        this.#seal(runId, b);
      }
    }
  }

  /** Opens a stream when there is work, and fills the window. */
  #pump(): void {
    if (this.#call === undefined) {
      if ((this.#queue.length > 0 || this.#window.length > 0) && this.#retryTimer === undefined && !this.#closed) {
        this.#connect();
      }
      return;
    }
    while (this.#window.length < this.#cfg.window && this.#queue.length > 0) {
      const b = this.#queue.shift()!;
      this.#window.push(b);
      this.#call.write(b.req);
    }
  }

  #connect(): void {
    const call = this.#stub.streamMetrics(this.#metadata);
    this.#call = call;
    this.#doneAtConnect = this.#done;
    call.on("data", (res: StreamMetricsResponse) => this.#onAck(call, res));
    // 'error' must always have a listener (a cancelled call emits one); 'end' when the server closes.
    call.on("error", (err: ServiceError) => {
      if (err.code === status.UNAUTHENTICATED || err.code === status.PERMISSION_DENIED) {
        this.#refuseAll(call, err); // a wrong token or a missing grant: retrying cannot help
      } else {
        this.#drop(call);
      }
    });
    call.on("end", () => this.#drop(call));
    for (const b of this.#window) {
      call.write(b.req); // replay, oldest first
    }
    this.#pump();
  }

  /** Ends a broken or refused stream and schedules a reconnect with backoff. */
  #drop(call: ClientDuplexStream<StreamMetricsRequest, StreamMetricsResponse>): void {
    if (this.#call !== call) {
      return;
    }
    this.#call = undefined;
    call.cancel();
    if (this.#done > this.#doneAtConnect) {
      this.#backoffMs = 50;
    }
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, 5_000);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#pump();
    }, delay);
  }

  /** Drops every batch sent or queued, reported once by the next flush: the server refused the stream. */
  #refuseAll(call: ClientDuplexStream<StreamMetricsRequest, StreamMetricsResponse>, err: ServiceError): void {
    if (this.#call !== call) {
      return;
    }
    this.#call = undefined;
    const batches = [...this.#window, ...this.#queue];
    this.#window = [];
    this.#queue = [];
    const points = batches.reduce((n, b) => n + b.req.values.length, 0);
    if (points > 0) {
      this.#failures.push(fromServiceError(err) as TracklaneError);
    }
    this.#buffered -= points;
    this.#done += batches.length;
    this.#waiters = this.#waiters.filter((w) => (this.#done >= w.target ? (w.resolve(), false) : true));
  }

  #onAck(call: ClientDuplexStream<StreamMetricsRequest, StreamMetricsResponse>, res: StreamMetricsResponse): void {
    if (this.#call !== call) {
      return;
    }
    const b = this.#window[0];
    if (b === undefined || b.req.sequence !== res.sequence || b.req.runId !== res.runId) {
      this.#drop(call); // not the ack expected: start over from the window
      return;
    }
    if (res.error) {
      const isGap = res.error.code === status.FAILED_PRECONDITION && res.error.field === "sequence";
      if (RETRYABLE.has(res.error.code) || (isGap && ++b.gaps < GAP_TRIES)) {
        this.#drop(call);
        return;
      }
      this.#failures.push(fromItemError(res.error));
    } else {
      this.#stats.acked += b.req.values.length;
      this.#stats.written += res.pointsWritten;
    }
    this.#window.shift();
    this.#buffered -= b.req.values.length;
    this.#done++;
    this.#waiters = this.#waiters.filter((w) => (this.#done >= w.target ? (w.resolve(), false) : true));
    this.#pump();
  }
}

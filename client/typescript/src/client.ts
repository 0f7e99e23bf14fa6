// TracklaneClient: promise-returning methods for the common calls over the generated grpc-js stubs.
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { userInfo } from "node:os";

import {
  type CallOptions,
  type ChannelCredentials,
  type ClientOptions,
  credentials,
  Metadata,
  type ServiceError,
} from "@grpc/grpc-js";

import { fromServiceError } from "./errors.js";
import {
  ArtifactServiceClient,
  type FileInfo,
  type UploadArtifactRequest,
  type UploadArtifactResponse,
} from "./gen/tracklane/v1/artifacts.js";
import type { Tag } from "./gen/tracklane/v1/common.js";
import { type ModelVersion, type RegisteredModel, RegistryServiceClient } from "./gen/tracklane/v1/registry.js";
import {
  type Experiment,
  type Metric,
  type MetricSeries,
  type Param,
  type Run,
  type RunInfo,
  RunStatus,
  TrackingServiceClient,
} from "./gen/tracklane/v1/tracking.js";
import { MetricStreamer, type MetricStreamerOptions } from "./streamer.js";

/** Default when no address is given and $TRACKLANE_TRACKING_URI is unset. */
export const DEFAULT_ADDRESS = "localhost:50051";
// The server's default message limit: a history page of 1,000,000 points fits.
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
// Upload chunk size: the server takes 1-4 MiB per message.
const CHUNK_BYTES = 1024 * 1024;

export interface ClientConfig {
  /** TLS or custom credentials; default: plaintext for host:port and grpc://, TLS for grpcs://. */
  credentials?: ChannelCredentials;
  /** Recorded by the server on registry changes; default: the login name. */
  user?: string;
  /** API token sent as `authorization: Bearer ...`; default: $TRACKLANE_TRACKING_TOKEN. */
  token?: string;
  /** PEM file of the CA to trust for grpcs://; default: $TRACKLANE_TRACKING_CA_FILE, else system roots. */
  caFile?: string;
  /** Client certificate and key (PEM files) for servers requiring mTLS; default:
   *  $TRACKLANE_TRACKING_CLIENT_CERT_FILE and $TRACKLANE_TRACKING_CLIENT_KEY_FILE. */
  clientCertFile?: string;
  clientKeyFile?: string;
  /** Extra metadata on every call, e.g. `{ "x-request-source": "etl" }`. */
  headers?: Record<string, string>;
  /** grpc-js channel options. */
  channelOptions?: ClientOptions;
}

/** TLS trusting the configured CA (else the system roots), with the client certificate if one is set. */
function tlsCredentials(config: ClientConfig): ChannelCredentials {
  const env = process.env;
  const caFile = config.caFile ?? env.TRACKLANE_TRACKING_CA_FILE;
  const certFile = config.clientCertFile ?? env.TRACKLANE_TRACKING_CLIENT_CERT_FILE;
  const keyFile = config.clientKeyFile ?? env.TRACKLANE_TRACKING_CLIENT_KEY_FILE;
  return credentials.createSsl(
    caFile ? readFileSync(caFile) : null,
    keyFile ? readFileSync(keyFile) : null,
    certFile ? readFileSync(certFile) : null,
  );
}

type Callback<Res> = (err: ServiceError | null, res: Res) => void;
type UnaryMethod<Req, Res> = (req: Req, md: Metadata, opts: Partial<CallOptions>, cb: Callback<Res>) => unknown;

/** A connection to one Tracklane server. `close()` it when done. */
export class TracklaneClient {
  /** The generated stubs, for the RPCs without a helper here (errors are raw grpc-js errors). */
  readonly tracking: TrackingServiceClient;
  readonly artifacts: ArtifactServiceClient;
  readonly registry: RegistryServiceClient;
  readonly #metadata: Metadata;

  /**
   * @param address `host:port`, `grpc://host:port` or `grpcs://host:port`; "" reads
   *   $TRACKLANE_TRACKING_URI, else {@link DEFAULT_ADDRESS}.
   */
  constructor(address = "", config: ClientConfig = {}) {
    const raw = address || process.env.TRACKLANE_TRACKING_URI || DEFAULT_ADDRESS;
    const { target, secure } = parseAddress(raw);
    const creds = config.credentials ?? (secure ? tlsCredentials(config) : credentials.createInsecure());
    const options: ClientOptions = {
      "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
      ...config.channelOptions,
    };
    this.tracking = new TrackingServiceClient(target, creds, options);
    // One channel for the three services: share it.
    const channelOverride = this.tracking.getChannel();
    this.artifacts = new ArtifactServiceClient(target, creds, { ...options, channelOverride });
    this.registry = new RegistryServiceClient(target, creds, { ...options, channelOverride });
    this.#metadata = new Metadata();
    const user = config.user ?? safeUserName();
    if (user) {
      this.#metadata.set("user", user);
    }
    const token = config.token ?? process.env.TRACKLANE_TRACKING_TOKEN;
    if (token) {
      this.#metadata.set("authorization", `Bearer ${token}`);
    }
    for (const [k, v] of Object.entries(config.headers ?? {})) {
      this.#metadata.set(k.toLowerCase(), v);
    }
  }

  /** Creates a client and waits until its connection is ready (rejects after `timeoutMs`). */
  static async connect(address = "", config: ClientConfig = {}, timeoutMs = 10_000): Promise<TracklaneClient> {
    const client = new TracklaneClient(address, config);
    try {
      await new Promise<void>((resolve, reject) =>
        client.tracking.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())),
      );
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  /** Closes the connection; close streamers first. */
  close(): void {
    this.tracking.close();
  }

  /** Metadata for a raw stub call (user and configured headers). */
  metadata(): Metadata {
    return this.#metadata.clone();
  }

  async #call<Req, Res>(method: UnaryMethod<Req, Res>, client: object, req: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      method.call(client, req, this.metadata(), {}, (err, res) => (err ? reject(fromServiceError(err)) : resolve(res)));
    });
  }

  // --- experiments and runs ---

  /** Creates an experiment; AlreadyExistsError when the name is taken. */
  async createExperiment(name: string, opts: { tags?: Record<string, string>; description?: string } = {}): Promise<Experiment> {
    const res = await this.#call(this.tracking.createExperiment, this.tracking, {
      name,
      artifactLocation: "",
      tags: toTags(opts.tags),
      description: opts.description ?? "",
    });
    return res.experiment!;
  }

  /** Reads an experiment; NotFoundError when there is none. */
  async getExperiment(experimentId: string): Promise<Experiment> {
    return (await this.#call(this.tracking.getExperiment, this.tracking, { experimentId })).experiment!;
  }

  /** Reads an experiment by its exact name; NotFoundError when there is none. */
  async getExperimentByName(name: string): Promise<Experiment> {
    return (await this.#call(this.tracking.getExperimentByName, this.tracking, { name })).experiment!;
  }

  /** Starts a run ("" experiment: the default one; no name: a generated one). */
  async createRun(opts: { experimentId?: string; runName?: string; tags?: Record<string, string> } = {}): Promise<Run> {
    const res = await this.#call(this.tracking.createRun, this.tracking, {
      experimentId: opts.experimentId ?? "",
      runName: opts.runName ?? "",
      tags: toTags(opts.tags),
      parentRunId: "",
      userId: "",
      description: "",
      status: RunStatus.RUN_STATUS_UNSPECIFIED,
      requestId: "",
    });
    return res.run!;
  }

  /** Reads a run with its params, tags and latest metrics. */
  async getRun(runId: string): Promise<Run> {
    return (await this.#call(this.tracking.getRun, this.tracking, { runId })).run!;
  }

  /** Ends a run with a terminal status (default FINISHED), end time now. */
  async endRun(runId: string, runStatus: RunStatus = RunStatus.RUN_STATUS_FINISHED): Promise<RunInfo> {
    const res = await this.#call(this.tracking.updateRun, this.tracking, {
      runId,
      status: runStatus,
      runName: "",
      description: "",
      updateMask: ["status", "end_time"],
    });
    return res.runInfo!;
  }

  /** Logs metrics, params and tags in one unary call (limits 10,000 / 1,000 / 1,000). */
  async logBatch(runId: string, batch: { metrics?: Metric[]; params?: Param[]; tags?: Tag[] }): Promise<void> {
    await this.#call(this.tracking.logBatch, this.tracking, {
      runId,
      metrics: batch.metrics ?? [],
      params: batch.params ?? [],
      tags: batch.tags ?? [],
    });
  }

  /** Sets params; one already set must keep its value (else InvalidArgumentError). */
  async logParams(runId: string, params: Record<string, string | number | boolean>): Promise<void> {
    const list = Object.keys(params).sort().map((key) => ({ key, value: String(params[key]) }));
    await this.logBatch(runId, { params: list });
  }

  /** Sets run tags, overwriting existing values. */
  async setTags(runId: string, tags: Record<string, string>): Promise<void> {
    await this.logBatch(runId, { tags: toTags(tags) });
  }

  /** Yields the matching runs, fetching pages as the loop goes on. */
  async *searchRuns(
    experimentIds: string[],
    opts: { filter?: string; orderBy?: string[]; pageSize?: number } = {},
  ): AsyncGenerator<Run> {
    let pageToken = "";
    do {
      const res = await this.#call(this.tracking.searchRuns, this.tracking, {
        experimentIds,
        filter: opts.filter ?? "",
        orderBy: opts.orderBy ?? [],
        runViewType: 0,
        pageSize: opts.pageSize ?? 0,
        pageToken,
      });
      yield* res.runs;
      pageToken = res.nextPageToken;
    } while (pageToken);
  }

  /** Every point of one metric in step order, all pages joined into one series. */
  async getMetricHistory(runId: string, key: string): Promise<MetricSeries> {
    const out: MetricSeries = { runId, key, steps: [], values: [], timestampsMs: [] };
    let pageToken = "";
    do {
      const res = await this.#call(this.tracking.getMetricHistory, this.tracking, {
        runId,
        key,
        pageSize: 0,
        pageToken,
        maxPoints: 0,
      });
      const s = res.series;
      if (s) {
        // push(...) would overflow the call stack on large pages.
        for (let i = 0; i < s.steps.length; i++) {
          out.steps.push(s.steps[i]);
          out.values.push(s.values[i]);
          out.timestampsMs.push(s.timestampsMs[i]);
        }
      }
      pageToken = res.nextPageToken;
    } while (pageToken);
    return out;
  }

  /** Yields a run's points as they are committed (from `startStep` when given) until `signal` aborts. */
  async *watchRun(runId: string, opts: { keys?: string[]; startStep?: number; signal?: AbortSignal } = {}): AsyncGenerator<MetricSeries> {
    const call = this.tracking.watchRun({ runId, keys: opts.keys ?? [], startStep: opts.startStep }, this.metadata());
    const abort = () => call.cancel();
    opts.signal?.addEventListener("abort", abort, { once: true });
    try {
      for await (const res of call) {
        yield* (res as { series: MetricSeries[] }).series;
      }
    } catch (err) {
      if (!opts.signal?.aborted) {
        throw fromServiceError(err);
      }
    } finally {
      opts.signal?.removeEventListener("abort", abort);
      call.cancel();
    }
  }

  /** A streamer for many points over one StreamMetrics call; `close()` it to send the rest. */
  metricStreamer(opts: MetricStreamerOptions = {}): MetricStreamer {
    return new MetricStreamer(this.tracking, this.metadata(), opts);
  }

  // --- artifacts ---

  /**
   * Stores `source` at `path` under the run's artifact root; visible only once complete. `size`,
   * when given, is verified by the server (InvalidArgumentError and nothing stored on a mismatch).
   */
  async uploadArtifact(
    runId: string,
    path: string,
    source: Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    opts: { size?: number } = {},
  ): Promise<FileInfo> {
    const size = opts.size ?? (source instanceof Uint8Array ? source.length : undefined);
    let call!: ReturnType<ArtifactServiceClient["uploadArtifact"]>;
    const done = new Promise<UploadArtifactResponse>((resolve, reject) => {
      call = this.artifacts.uploadArtifact(this.metadata(), (err, res) =>
        err ? reject(fromServiceError(err)) : resolve(res!),
      );
    });
    done.catch(() => undefined); // observed below; avoids an unhandled rejection while writing
    const write = async (msg: UploadArtifactRequest): Promise<void> => {
      if (!call.write(msg)) {
        await Promise.race([once(call, "drain"), done]);
      }
    };
    try {
      await write({ header: { runId, path, size, sha256: "" } });
      for await (const piece of source instanceof Uint8Array ? [source] : source) {
        for (let at = 0; at < piece.length; at += CHUNK_BYTES) {
          await write({ chunk: Buffer.from(piece.buffer, piece.byteOffset + at, Math.min(CHUNK_BYTES, piece.length - at)) });
        }
      }
    } catch (err) {
      call.cancel(); // the server stores nothing for a cancelled upload
      await done.catch(() => undefined);
      throw err;
    }
    call.end();
    return (await done).file!;
  }

  /** Yields the file's bytes in chunks (`for await (const chunk of client.downloadArtifact(...))`). */
  async *downloadArtifact(runId: string, path: string, opts: { offset?: number; length?: number } = {}): AsyncGenerator<Buffer> {
    const call = this.artifacts.downloadArtifact(
      { runId, path, offset: opts.offset ?? 0, length: opts.length ?? 0 },
      this.metadata(),
    );
    try {
      for await (const res of call) {
        yield (res as { chunk: Buffer }).chunk;
      }
    } catch (err) {
      throw fromServiceError(err);
    } finally {
      call.cancel(); // no-op after the end; stops the transfer when the loop breaks early
    }
  }

  /** The whole file in memory. */
  async downloadArtifactBytes(runId: string, path: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const chunk of this.downloadArtifact(runId, path)) {
      parts.push(chunk);
    }
    return Buffer.concat(parts);
  }

  /** Files and folders under `path` ("" for the root); `recursive` lists files only. */
  async listArtifacts(runId: string, path = "", recursive = false): Promise<FileInfo[]> {
    const out: FileInfo[] = [];
    let pageToken = "";
    do {
      const res = await this.#call(this.artifacts.listArtifacts, this.artifacts, {
        runId,
        path,
        recursive,
        pageSize: 0,
        pageToken,
      });
      out.push(...res.files);
      pageToken = res.nextPageToken;
    } while (pageToken);
    return out;
  }

  // --- registry ---

  /** Creates a registered model; AlreadyExistsError when the name is taken. */
  async createRegisteredModel(name: string, description = ""): Promise<RegisteredModel> {
    const res = await this.#call(this.registry.createRegisteredModel, this.registry, { name, description, tags: [] });
    return res.registeredModel!;
  }

  /** Registers a new version from `source` (`runs:/<run_id>/<path>` or an artifact URI). */
  async createModelVersion(name: string, source: string, runId = ""): Promise<ModelVersion> {
    const res = await this.#call(this.registry.createModelVersion, this.registry, {
      name,
      source,
      runId,
      description: "",
      tags: [],
      requestId: "",
    });
    return res.modelVersion!;
  }

  /** Points `alias` (e.g. "champion") at a version. */
  async setRegisteredModelAlias(name: string, alias: string, version: number): Promise<void> {
    await this.#call(this.registry.setRegisteredModelAlias, this.registry, { name, alias, version });
  }

  /** The version an alias points at; NotFoundError for an unknown model or alias. */
  async getModelVersionByAlias(name: string, alias: string): Promise<ModelVersion> {
    return (await this.#call(this.registry.getModelVersionByAlias, this.registry, { name, alias })).modelVersion!;
  }

  /** One version of a model. */
  async getModelVersion(name: string, version: number): Promise<ModelVersion> {
    return (await this.#call(this.registry.getModelVersion, this.registry, { name, version })).modelVersion!;
  }
}

function parseAddress(address: string): { target: string; secure: boolean } {
  const m = /^(grpcs?):\/\/(.*)$/.exec(address);
  if (!m && address.includes("://")) {
    throw new Error(`address ${JSON.stringify(address)}: use host:port, grpc:// or grpcs://`);
  }
  const target = (m ? m[2] : address).replace(/\/$/, "");
  if (!target) {
    throw new Error(`address ${JSON.stringify(address)} has no host`);
  }
  return { target, secure: m?.[1] === "grpcs" };
}

function toTags(tags: Record<string, string> = {}): Tag[] {
  return Object.keys(tags).sort().map((key) => ({ key, value: tags[key] }));
}

function safeUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return "";
  }
}

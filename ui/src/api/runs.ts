// Runs as the table and pages use them: flat rows built once from the protobuf messages.
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { LifecycleStage, ViewType } from "../gen/tracklane/v1/common_pb";
import { type Run, RunStatus } from "../gen/tracklane/v1/tracking_pb";
import { tracking } from "./client";

export interface MetricSummary {
  latest: number;
  step: number;
  min?: number;
  max?: number;
  first?: number;
  count?: number;
}

export interface RunRow {
  id: string;
  experimentId: string;
  name: string;
  status: string;
  start: number;
  end?: number;
  user: string;
  source: string;
  parentId: string;
  deleted: boolean;
  description: string;
  artifactUri: string;
  params: Map<string, string>;
  metrics: Map<string, MetricSummary>;
  tags: Map<string, string>;
  /** The message itself, for pages that show more. */
  run: Run;
}

export const STATUS = (s: RunStatus): string => RunStatus[s]?.replace(/^RUN_STATUS_/, "") ?? "UNSPECIFIED";

/** MLflow's tag for where a run came from; Tracklane's clients set it the same way. */
export const SOURCE_TAG = "mlflow.source.name";

/** MLflow's tags that the server derives from the run's own fields (name, parent, user, description):
 * pages show those fields, so tag lists leave these out rather than show each twice. */
export const ATTRIBUTE_TAGS = new Set(["mlflow.runName", "mlflow.parentRunId", "mlflow.user", "mlflow.note.content"]);

export function toRow(run: Run): RunRow {
  const info = run.info!;
  const data = run.data;
  const metrics = new Map<string, MetricSummary>();
  for (const m of data?.metrics ?? []) {
    const s = m.summary;
    metrics.set(m.key, {
      latest: m.value,
      step: Number(m.step),
      ...(s ? { min: s.min, max: s.max, first: s.first, count: Number(s.count) } : {}),
    });
  }
  const tags = new Map((data?.tags ?? []).map((t) => [t.key, t.value]));
  return {
    id: info.runId,
    experimentId: info.experimentId,
    name: info.runName,
    status: STATUS(info.status),
    start: info.startTime ? timestampMs(info.startTime) : 0,
    end: info.endTime ? timestampMs(info.endTime) : undefined,
    user: info.userId,
    source: tags.get(SOURCE_TAG) ?? "",
    parentId: info.parentRunId,
    deleted: info.lifecycleStage === LifecycleStage.DELETED,
    description: info.description,
    artifactUri: info.artifactUri,
    params: new Map((data?.params ?? []).map((p) => [p.key, p.value])),
    metrics,
    tags,
    run,
  };
}

export interface RunsQuery {
  experimentIds: string[];
  filter: string;
  orderBy: string[];
  deleted: boolean;
}

export interface RunsPage {
  rows: RunRow[];
  nextPageToken: string;
}

export async function searchRuns(q: RunsQuery, pageToken: string, pageSize: number, signal?: AbortSignal): Promise<RunsPage> {
  const res = await tracking.searchRuns(
    {
      experimentIds: q.experimentIds,
      filter: q.filter,
      orderBy: q.orderBy,
      runViewType: q.deleted ? ViewType.ALL : ViewType.ACTIVE_ONLY,
      pageSize,
      pageToken,
    },
    { signal },
  );
  return { rows: res.runs.map(toRow), nextPageToken: res.nextPageToken };
}

/** Every run of a query, page by page (bounded by `limit`). */
export async function searchAllRuns(q: RunsQuery, limit: number, signal?: AbortSignal): Promise<RunRow[]> {
  const rows: RunRow[] = [];
  let token = "";
  do {
    const page = await searchRuns(q, token, 1000, signal);
    rows.push(...page.rows);
    token = page.nextPageToken;
  } while (token && rows.length < limit);
  return rows;
}

export function durationMs(r: RunRow, now: number): number | undefined {
  if (!r.start) return undefined;
  return (r.end ?? (r.status === "RUNNING" ? now : r.start)) - r.start;
}

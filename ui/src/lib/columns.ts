// Runs-table columns: what each shows, how it is named in the URL, and how the server sorts by it.
// Keys may hold dots, spaces and slashes but never ":" or ",", so ids are `entity:key[:summary]`
// and a list of them is comma-separated.

export type Entity = "attr" | "param" | "metric" | "tag";
/** Besides the latest value, the server keeps these per (run, metric key). */
export const SUMMARIES = ["min", "max", "first", "count"] as const;
export type Summary = (typeof SUMMARIES)[number];

export interface ColumnId {
  entity: Entity;
  key: string;
  summary?: Summary;
}

/** Attributes the search grammar knows (`attributes.<name>`), for completion. */
export const ATTRIBUTES = [
  "run_id",
  "run_name",
  "status",
  "start_time",
  "end_time",
  "user_id",
  "artifact_uri",
  "lifecycle_stage",
] as const;

/** Attribute columns the table can show. */
export const ATTRIBUTE_COLUMNS = [
  "run_name",
  "status",
  "start_time",
  "end_time",
  "duration",
  "user_id",
  "source",
  "run_id",
  "experiment_id",
] as const;

/** Columns the server cannot order by (they are derived or come from another resource). */
const NOT_SORTABLE = new Set(["duration", "source", "experiment_id"]);

export function sortable(c: ColumnId): boolean {
  return !(c.entity === "attr" && NOT_SORTABLE.has(c.key));
}

export const DEFAULT_COLUMNS: ColumnId[] = [
  { entity: "attr", key: "run_name" },
  { entity: "attr", key: "status" },
  { entity: "attr", key: "start_time" },
  { entity: "attr", key: "duration" },
  { entity: "attr", key: "user_id" },
  { entity: "attr", key: "source" },
];

export function columnKey(c: ColumnId): string {
  return c.summary ? `${c.entity}:${c.key}:${c.summary}` : `${c.entity}:${c.key}`;
}

export function parseColumnKey(text: string): ColumnId | null {
  const m = /^(attr|param|metric|tag):([^:,]+?)(?::(min|max|first|count))?$/.exec(text);
  if (!m) return null;
  const [, entity, key, summary] = m;
  if (summary && entity !== "metric") return null;
  return summary ? { entity: entity as Entity, key, summary: summary as Summary } : { entity: entity as Entity, key };
}

/** A key as the search grammar spells it: bare when it can be, else in backticks. */
export function grammarKey(key: string): string {
  return /^[A-Za-z0-9_][A-Za-z0-9_./-]*$/.test(key) ? key : "`" + key.replaceAll("`", "``") + "`";
}

const PREFIX: Record<Entity, string> = { attr: "attributes", param: "params", metric: "metrics", tag: "tags" };

/** The column as an identifier of the search grammar, e.g. `metrics.loss.min`, `params.lr`. */
export function grammarName(c: ColumnId): string {
  if (c.entity === "attr") return `attributes.${c.key}`;
  const base = `${PREFIX[c.entity]}.${grammarKey(c.key)}`;
  return c.summary ? `${base}.${c.summary}` : base;
}

/** The server's `order_by` item for this column, or null when only the page can sort it. */
export function orderBy(c: ColumnId, descending: boolean): string | null {
  if (!sortable(c)) return null;
  return `${grammarName(c)} ${descending ? "DESC" : "ASC"}`;
}

export function columnLabel(c: ColumnId): string {
  if (c.entity === "attr") return ATTRIBUTE_LABELS[c.key] ?? c.key;
  return c.summary ? `${c.key} (${c.summary})` : c.key;
}

const ATTRIBUTE_LABELS: Record<string, string> = {
  run_name: "Run",
  status: "Status",
  start_time: "Started",
  end_time: "Ended",
  duration: "Duration",
  user_id: "User",
  source: "Source",
  run_id: "Run ID",
  experiment_id: "Experiment",
};

export const GROUP_LABEL: Record<Entity, string> = {
  attr: "Attributes",
  param: "Params",
  metric: "Metrics",
  tag: "Tags",
};

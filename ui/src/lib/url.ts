// Every view's state lives in the URL's query string so a view can be shared or bookmarked.
// Defaults are left out, so a plain link stays short; unknown or malformed values fall back to them.
import { type ColumnId, columnKey, DEFAULT_COLUMNS, parseColumnKey } from "./columns";

export type XAxis = "step" | "time" | "relative";

export interface ChartOptions {
  x: XAxis;
  logX: boolean;
  logY: boolean;
  /** EMA weight in [0, 0.99]; 0 is off. */
  smoothing: number;
}

export interface RunsView {
  filter: string;
  sort: { column: ColumnId; descending: boolean } | null;
  columns: ColumnId[];
  groupBy: ColumnId[];
  selected: string[];
  /** Expanded parent runs (nested runs shown). */
  expanded: string[];
  mode: "table" | "charts";
  chart: ChartOptions;
  deleted: boolean;
}

export const DEFAULT_CHART: ChartOptions = { x: "step", logX: false, logY: false, smoothing: 0 };

export function defaultRunsView(): RunsView {
  return {
    filter: "",
    sort: null,
    columns: DEFAULT_COLUMNS,
    groupBy: [],
    selected: [],
    expanded: [],
    mode: "table",
    chart: { ...DEFAULT_CHART },
    deleted: false,
  };
}

function list(params: URLSearchParams, name: string): string[] {
  const raw = params.get(name);
  return raw ? raw.split(",").filter(Boolean) : [];
}

function columns(params: URLSearchParams, name: string): ColumnId[] | null {
  if (!params.has(name)) return null;
  return list(params, name)
    .map(parseColumnKey)
    .filter((c): c is ColumnId => c !== null);
}

export function parseChart(params: URLSearchParams): ChartOptions {
  const x = params.get("x");
  const smooth = Number(params.get("smooth") ?? "0");
  return {
    x: x === "time" || x === "relative" ? x : "step",
    logX: params.get("logx") === "1",
    logY: params.get("logy") === "1",
    smoothing: Number.isFinite(smooth) ? Math.min(0.99, Math.max(0, smooth)) : 0,
  };
}

export function writeChart(params: URLSearchParams, chart: ChartOptions): void {
  if (chart.x !== "step") params.set("x", chart.x);
  if (chart.logX) params.set("logx", "1");
  if (chart.logY) params.set("logy", "1");
  if (chart.smoothing > 0) params.set("smooth", String(Math.round(chart.smoothing * 100) / 100));
}

export function parseRunsView(search: string): RunsView {
  const params = new URLSearchParams(search);
  const view = defaultRunsView();
  view.filter = params.get("filter") ?? "";
  const sort = params.get("sort");
  if (sort) {
    const descending = sort.startsWith("-");
    const column = parseColumnKey(descending ? sort.slice(1) : sort);
    if (column) view.sort = { column, descending };
  }
  view.columns = columns(params, "cols") ?? view.columns;
  view.groupBy = columns(params, "group") ?? [];
  view.selected = list(params, "sel");
  view.expanded = list(params, "open");
  view.mode = params.get("mode") === "charts" ? "charts" : "table";
  view.chart = parseChart(params);
  view.deleted = params.get("deleted") === "1";
  return view;
}

const sameColumns = (a: ColumnId[], b: ColumnId[]): boolean =>
  a.length === b.length && a.every((c, i) => columnKey(c) === columnKey(b[i]));

export function writeRunsView(view: RunsView): string {
  const params = new URLSearchParams();
  if (view.filter) params.set("filter", view.filter);
  if (view.sort) params.set("sort", (view.sort.descending ? "-" : "") + columnKey(view.sort.column));
  if (!sameColumns(view.columns, DEFAULT_COLUMNS)) params.set("cols", view.columns.map(columnKey).join(","));
  if (view.groupBy.length) params.set("group", view.groupBy.map(columnKey).join(","));
  if (view.selected.length) params.set("sel", view.selected.join(","));
  if (view.expanded.length) params.set("open", view.expanded.join(","));
  if (view.mode !== "table") params.set("mode", view.mode);
  writeChart(params, view.chart);
  if (view.deleted) params.set("deleted", "1");
  const text = params.toString();
  return text ? `?${text}` : "";
}

/** The experiment ids of a runs-table path segment: `/experiments/1,4`. */
export function parseIds(segment: string): string[] {
  return decodeURIComponent(segment)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

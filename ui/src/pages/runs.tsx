// The runs of one or more experiments: filter, sort, columns, group, nest, select to compare, charts.
// Every choice is in the URL. Pages of runs load as the table scrolls toward its end.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { useLocation, useRoute } from "preact-iso";
import { tracking } from "../api/client";
import { problemOf, type Problem } from "../api/errors";
import { type RunRow, type RunsQuery, searchRuns } from "../api/runs";
import { MetricCharts } from "../charts/metric-charts";
import { ColumnPicker } from "../components/column-picker";
import { ErrorNote } from "../components/common";
import { FilterBox } from "../components/filter-box";
import { RunsTable } from "../components/runs-table";
import { keysOf } from "../lib/autocomplete";
import { type ColumnId, columnKey, orderBy, parseColumnKey } from "../lib/columns";
import { useAsync, useQueryString } from "../lib/hooks";
import { parseIds, parseRunsView, type RunsView, writeRunsView } from "../lib/url";
import { useExperimentWatch } from "../live/experiment-watch";

/** Runs per page; the same for every page of a query (the server ties page tokens to it). */
const PAGE_SIZE = 500;
/** Grouping aggregates over every matching run: load them all, up to this many. */
const GROUP_LIMIT = 100_000;
const MAX_CHART_RUNS = 100;

interface Loaded {
  rows: RunRow[];
  token: string;
  done: boolean;
  error?: Problem;
  loading: boolean;
}

function useRuns(query: RunsQuery, loadAll: boolean) {
  const [state, setState] = useState<Loaded>({ rows: [], token: "", done: false, loading: true });
  const busy = useRef(false);
  const generation = useRef(0);
  const key = JSON.stringify(query);
  const fetchPage = async (gen: number, token: string, size: number) => {
    busy.current = true;
    setState((s) => ({ ...s, loading: true }));
    try {
      const page = await searchRuns(query, token, size);
      if (gen !== generation.current) return;
      setState((s) => ({ rows: token ? [...s.rows, ...page.rows] : page.rows, token: page.nextPageToken, done: !page.nextPageToken, loading: false }));
    } catch (err) {
      if (gen !== generation.current) return;
      setState((s) => ({ ...s, rows: token ? s.rows : [], error: problemOf(err), done: true, loading: false }));
    } finally {
      if (gen === generation.current) busy.current = false;
    }
  };
  useEffect(() => {
    const gen = ++generation.current;
    busy.current = false;
    setState({ rows: [], token: "", done: false, loading: true });
    void fetchPage(gen, "", PAGE_SIZE);
  }, [key]);
  const more = () => {
    if (busy.current || state.done || state.error) return;
    void fetchPage(generation.current, state.token, PAGE_SIZE);
  };
  useEffect(() => {
    if (loadAll && !state.loading && !state.done && state.rows.length < GROUP_LIMIT) more();
  }, [loadAll, state.loading, state.done, state.rows.length]);
  return { ...state, more, setRows: (f: (rows: RunRow[]) => RunRow[]) => setState((s) => ({ ...s, rows: f(s.rows) })) };
}

function ExperimentNames({ ids }: { ids: string[] }) {
  const names = useAsync(
    (signal) => Promise.all(ids.map((id) => tracking.getExperiment({ experimentId: id }, { signal }).then((r) => r.experiment!))),
    [ids.join(",")],
  );
  if (names.error) return <ErrorNote problem={names.error} />;
  const list = names.data ?? [];
  return <h1>{list.length ? list.map((e) => e.name).join(" + ") : "Runs"}</h1>;
}

function GroupBy({ keys, value, onChange }: { keys: { params: string[]; tags: string[] }; value: ColumnId[]; onChange: (c: ColumnId[]) => void }) {
  const current = value[0] ? columnKey(value[0]) : "";
  return (
    <label>
      Group by
      <select
        value={current}
        onChange={(e) => {
          const c = parseColumnKey(e.currentTarget.value);
          onChange(c ? [c] : []);
        }}
      >
        <option value="">Nothing</option>
        <optgroup label="Params">
          {keys.params.map((k) => (
            <option key={k} value={`param:${k}`}>
              {k}
            </option>
          ))}
        </optgroup>
        <optgroup label="Tags">
          {keys.tags.map((k) => (
            <option key={k} value={`tag:${k}`}>
              {k}
            </option>
          ))}
        </optgroup>
        <optgroup label="Attributes">
          <option value="attr:status">Status</option>
          <option value="attr:user_id">User</option>
        </optgroup>
      </select>
    </label>
  );
}

export function RunsPage() {
  const { params } = useRoute();
  const { route } = useLocation();
  const experimentIds = parseIds(params.ids ?? "");
  const [search, setSearch] = useQueryString();
  const view = useMemo(() => parseRunsView(search), [search]);
  const update = (patch: Partial<RunsView>, push = false) => setSearch(writeRunsView({ ...view, ...patch }), push);
  const order = view.sort ? orderBy(view.sort.column, view.sort.descending) : null;
  const query: RunsQuery = { experimentIds, filter: view.filter, orderBy: order ? [order] : [], deleted: view.deleted };
  const runs = useRuns(query, view.groupBy.length > 0);
  // Start watching once the first page is shown: the watch's snapshot must not delay it.
  const [watching, setWatching] = useState(false);
  useEffect(() => {
    if (!runs.loading && runs.rows.length >= 0) setWatching(true);
  }, [runs.loading]);
  useExperimentWatch(experimentIds, runs.setRows, watching, {
    prependNew: !view.filter && !view.sort,
    keepDeleted: view.deleted,
  });
  const keys = useMemo(() => keysOf(runs.rows.map((r) => ({ metrics: [...r.metrics.keys()].map((key) => ({ key })), params: [...r.params.keys()].map((key) => ({ key })), tags: [...r.tags.keys()].map((key) => ({ key })) }))), [runs.rows]);
  const chartRuns = (view.selected.length ? runs.rows.filter((r) => view.selected.includes(r.id)) : runs.rows).slice(0, view.selected.length ? MAX_CHART_RUNS : 10);
  return (
    <section class="page wide">
      <div class="page-head">
        <ExperimentNames ids={experimentIds} />
        <div class="row" role="group" aria-label="View">
          <button type="button" aria-pressed={view.mode === "table"} onClick={() => update({ mode: "table" })}>
            Table
          </button>
          <button type="button" aria-pressed={view.mode === "charts"} onClick={() => update({ mode: "charts" })}>
            Charts
          </button>
        </div>
      </div>
      <FilterBox value={view.filter} keys={keys} error={runs.error} onApply={(filter) => update({ filter }, true)} />
      <div class="toolbar">
        <ColumnPicker keys={keys} columns={view.columns} onChange={(columns) => update({ columns })} />
        <GroupBy keys={keys} value={view.groupBy} onChange={(groupBy) => update({ groupBy })} />
        <label class="check">
          <input type="checkbox" checked={view.deleted} onChange={(e) => update({ deleted: e.currentTarget.checked })} />
          Include deleted runs
        </label>
        <span class="muted" role="status" aria-live="polite">
          {runs.loading && runs.rows.length === 0 ? "Loading runs…" : `${runs.rows.length.toLocaleString("en")}${runs.done ? "" : "+"} runs`}
          {view.groupBy.length > 0 && !runs.done ? " (loading all for the groups)" : ""}
        </span>
        <span class="spacer" />
        {view.selected.length > 0 && (
          <button type="button" class="ghost" onClick={() => update({ selected: [] })}>
            Clear selection
          </button>
        )}
        <button
          type="button"
          disabled={view.selected.length < 2}
          onClick={() => route(`/compare?runs=${view.selected.join(",")}`)}
        >
          Compare {view.selected.length || ""} selected
        </button>
      </div>
      {view.mode === "table" ? (
        <RunsTable
          rows={runs.rows}
          columns={view.columns}
          sort={view.sort}
          onSort={(sort) => update({ sort })}
          groupBy={view.groupBy}
          selected={view.selected}
          onSelect={(selected) => update({ selected })}
          expanded={view.expanded}
          onExpand={(expanded) => update({ expanded })}
          onOpen={(id) => route(`/runs/${id}`)}
          onNearEnd={runs.more}
          loading={runs.loading}
        />
      ) : (
        <>
          <p class="muted">
            {view.selected.length ? `${chartRuns.length} selected runs` : `The first ${chartRuns.length} runs; select runs in the table to choose (up to ${MAX_CHART_RUNS}).`}
          </p>
          <MetricCharts runs={chartRuns} chart={view.chart} onChart={(chart) => update({ chart })} />
        </>
      )}
    </section>
  );
}

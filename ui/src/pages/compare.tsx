// Compare runs: overlaid curves, a params/metrics diff table ("only differences"), parallel
// coordinates of params against a chosen metric (with brushing) and a scatter of any two values.
import { lazy, Suspense } from "preact/compat";
import { useMemo, useState } from "preact/hooks";
import { useRoute } from "preact-iso";
import { tracking } from "../api/client";
import { type RunRow, toRow } from "../api/runs";
import { MetricCharts } from "../charts/metric-charts";
import { colorOf } from "../charts/palette";
import { ErrorNote, Loading } from "../components/common";
import { formatNumber } from "../lib/format";
import { useAsync, useQueryString } from "../lib/hooks";
import { parseChart, writeChart } from "../lib/url";

// ECharts only for what uPlot has no chart type for; loaded when the section opens.
const Parallel = lazy(() => import("../charts/parallel").then((m) => ({ default: m.ParallelChart })));
const Scatter = lazy(() => import("../charts/parallel").then((m) => ({ default: m.ScatterChart })));

export interface Dim {
  id: string;
  label: string;
  value: (r: RunRow) => string | number | undefined;
}

export function dimensions(runs: RunRow[]): Dim[] {
  const params = [...new Set(runs.flatMap((r) => [...r.params.keys()]))].sort();
  const metrics = [...new Set(runs.flatMap((r) => [...r.metrics.keys()]))].sort();
  return [
    ...params.map((k) => ({ id: `param:${k}`, label: `params.${k}`, value: (r: RunRow) => numeric(r.params.get(k)) })),
    ...metrics.map((k) => ({ id: `metric:${k}`, label: `metrics.${k}`, value: (r: RunRow) => r.metrics.get(k)?.latest })),
  ];
}

function numeric(v: string | undefined): string | number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  return v.trim() !== "" && Number.isFinite(n) ? n : v;
}

/** Rows of the diff table: one per key, whether the runs' values differ. */
export function diffRows(runs: RunRow[]): { section: string; key: string; values: string[]; differs: boolean }[] {
  const out: { section: string; key: string; values: string[]; differs: boolean }[] = [];
  const add = (section: string, keys: string[], get: (r: RunRow, k: string) => string) => {
    for (const key of keys) {
      const values = runs.map((r) => get(r, key));
      out.push({ section, key, values, differs: new Set(values).size > 1 });
    }
  };
  const keys = (f: (r: RunRow) => Iterable<string>) => [...new Set(runs.flatMap((r) => [...f(r)]))].sort();
  add("Params", keys((r) => r.params.keys()), (r, k) => r.params.get(k) ?? "");
  add("Metrics", keys((r) => r.metrics.keys()), (r, k) => formatNumber(r.metrics.get(k)?.latest));
  add("Tags", keys((r) => r.tags.keys()), (r, k) => r.tags.get(k) ?? "");
  return out;
}

function DiffTable({ runs }: { runs: RunRow[] }) {
  const [onlyDiff, setOnlyDiff] = useState(false);
  const rows = diffRows(runs).filter((r) => !onlyDiff || r.differs);
  let section = "";
  return (
    <section aria-labelledby="h-diff">
      <div class="row spread">
        <h2 id="h-diff">Params and metrics</h2>
        <label class="check">
          <input type="checkbox" checked={onlyDiff} onChange={(e) => setOnlyDiff(e.currentTarget.checked)} />
          Only differences
        </label>
      </div>
      <div class="table-scroll">
        <table class="grid-table" aria-label="Differences">
          <thead>
            <tr>
              <th scope="col">Key</th>
              {runs.map((r, i) => (
                <th scope="col" key={r.id}>
                  <span class="swatch" style={{ background: colorOf(i) }} aria-hidden="true" /> <a href={`/runs/${r.id}`}>{r.name || r.id}</a>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.flatMap((row) => {
              const head =
                row.section !== section ? (
                  <tr key={`s-${row.section}`} class="section-row">
                    <th scope="rowgroup" colSpan={runs.length + 1}>
                      {(section = row.section)}
                    </th>
                  </tr>
                ) : null;
              return [
                head,
                <tr key={`${row.section}-${row.key}`} class={row.differs ? "differs" : undefined}>
                  <th scope="row">{row.key}</th>
                  {row.values.map((v, i) => (
                    <td key={i} class="num">
                      {v}
                    </td>
                  ))}
                </tr>,
              ];
            })}
          </tbody>
        </table>
      </div>
      {rows.length === 0 && <p class="muted">{onlyDiff ? "No differences." : "Nothing logged."}</p>}
    </section>
  );
}

export function ComparePage() {
  useRoute();
  const [search, setSearch] = useQueryString();
  const params = new URLSearchParams(search);
  const ids = (params.get("runs") ?? "").split(",").filter(Boolean);
  const chart = parseChart(params);
  const loaded = useAsync((signal) => Promise.all(ids.map((runId) => tracking.getRun({ runId }, { signal }).then((r) => toRow(r.run!)))), [ids.join(",")]);
  const runs = loaded.data ?? [];
  const dims = useMemo(() => dimensions(runs), [runs]);
  const metricDims = dims.filter((d) => d.id.startsWith("metric:"));
  const [target, setTarget] = useState("");
  const [xDim, setX] = useState("");
  const [yDim, setY] = useState("");
  const targetDim = dims.find((d) => d.id === target) ?? metricDims[0];
  const x = dims.find((d) => d.id === xDim) ?? dims[0];
  const y = dims.find((d) => d.id === yDim) ?? metricDims[0] ?? dims[1];
  if (ids.length === 0) {
    return (
      <section class="page">
        <h1>Compare runs</h1>
        <p class="muted">Select runs in an experiment's table, then Compare.</p>
      </section>
    );
  }
  const dimSelect = (label: string, value: Dim | undefined, set: (id: string) => void, pool = dims) => (
    <label>
      {label}
      <select value={value?.id ?? ""} onChange={(e) => set(e.currentTarget.value)}>
        {pool.map((d) => (
          <option key={d.id} value={d.id}>
            {d.label}
          </option>
        ))}
      </select>
    </label>
  );
  return (
    <section class="page wide">
      <h1>Compare {ids.length} runs</h1>
      <ErrorNote problem={loaded.error} />
      {!loaded.data && !loaded.error && <Loading what="the runs" />}
      {loaded.data && (
        <>
          <DiffTable runs={runs} />
          <section aria-labelledby="h-curves">
            <h2 id="h-curves">Curves</h2>
            <MetricCharts
              runs={runs}
              chart={chart}
              onChart={(c) => {
                const p = new URLSearchParams();
                p.set("runs", ids.join(","));
                writeChart(p, c);
                setSearch(`?${p.toString()}`);
              }}
            />
          </section>
          <section aria-labelledby="h-parallel">
            <div class="row spread">
              <h2 id="h-parallel">Parallel coordinates</h2>
              {dimSelect("Colour by metric", targetDim, setTarget, metricDims)}
            </div>
            <Suspense fallback={<Loading what="the chart" />}>
              <Parallel runs={runs} dims={dims.filter((d) => d.id.startsWith("param:"))} target={targetDim} />
            </Suspense>
          </section>
          <section aria-labelledby="h-scatter">
            <div class="row spread">
              <h2 id="h-scatter">Scatter</h2>
              <div class="row">
                {dimSelect("X", x, setX)}
                {dimSelect("Y", y, setY)}
              </div>
            </div>
            <Suspense fallback={<Loading what="the chart" />}>{x && y && <Scatter runs={runs} x={x} y={y} />}</Suspense>
          </section>
        </>
      )}
    </section>
  );
}

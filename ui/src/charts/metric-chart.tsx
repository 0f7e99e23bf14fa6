// One metric of one or more runs in uPlot (canvas, columnar arrays). The server sends each series
// downsampled to this chart's pixel width; a zoom or pan asks again for just the range in view at
// the same width, so detail (and every spike) is exact at any scale. Live points are appended.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { problemOf } from "../api/errors";
import { ema } from "../lib/ema";
import { alignForChart, appendPoints, lowerBound, mergeRange, type Series, type XY } from "../lib/series";
import type { ChartOptions } from "../lib/url";
import { chartPng, saveBlob, seriesCsv } from "./download";
import { fetchHistory, pointsFor } from "./history";
import type { LiveBus } from "./live-bus";
import { colorOf } from "./palette";

export interface ChartRun {
  id: string;
  name: string;
  /** Run start, ms since the epoch: the origin of relative time. */
  start: number;
}

const HEIGHT = 240;

function xyOf(s: Series, chart: ChartOptions, origin: number): XY {
  const n = s.steps.length;
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = chart.x === "step" ? s.steps[i] : chart.x === "time" ? s.times[i] / 1000 : (s.times[i] - origin) / 1000;
  }
  return { x, y: chart.smoothing > 0 ? ema(s.values, chart.smoothing) : s.values };
}

/** The steps the x range covers, across series (x is monotone in step for each run). */
function stepsOf(series: Series[], xys: XY[], lo: number, hi: number): { start: number; end: number } | null {
  let start = Infinity;
  let end = -Infinity;
  series.forEach((s, i) => {
    const x = xys[i].x;
    const a = lowerBound(x, lo);
    let b = lowerBound(x, hi);
    if (b < x.length && x[b] <= hi) b++;
    if (a >= x.length || b <= 0) return;
    // One point beyond each edge, so lines run to the border of the chart.
    start = Math.min(start, s.steps[Math.max(0, a - 1)]);
    end = Math.max(end, s.steps[Math.min(x.length - 1, b)]);
  });
  return start <= end ? { start, end } : null;
}

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

export function MetricChart({ metric, runs, chart, live }: { metric: string; runs: ChartRun[]; chart: ChartOptions; live?: LiveBus }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const [width, setWidth] = useState(0);
  const [visible, setVisible] = useState(false);
  const [series, setSeries] = useState<Map<string, Series>>(new Map());
  const [range, setRange] = useState<[number, number] | null>(null);
  const [error, setError] = useState("");
  const [status, setStatus] = useState("Loading…");
  const internal = useRef(false);
  /** The x range this component last gave uPlot: uPlot reports it back (later, batched), and only
   *  a range that differs is the user's zoom or pan. */
  const applied = useRef<[number, number] | null>(null);
  /** What the last draw showed, on the element for tests and benchmarks: points and highest value. */
  const [drawn, setDrawn] = useState<{ points: number; max: number } | null>(null);
  const runIds = runs.map((r) => r.id).join(",");
  const origin = useMemo(() => new Map(runs.map((r) => [r.id, r.start])), [runIds]);
  const names = useMemo(() => new Map(runs.map((r) => [r.id, r.name || r.id.slice(0, 8)])), [runIds]);

  // Load when first scrolled into view; size follows the container.
  useEffect(() => {
    const el = box.current!;
    const io = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && setVisible(true), { rootMargin: "200px" });
    io.observe(el);
    const ro = new ResizeObserver(() => setWidth(Math.floor(el.clientWidth)));
    ro.observe(el);
    return () => {
      io.disconnect();
      ro.disconnect();
    };
  }, []);

  useEffect(() => {
    if (!visible || width === 0) return;
    const ctl = new AbortController();
    setStatus("Loading…");
    fetchHistory(runIds.split(","), [metric], pointsFor(width, runs.length), undefined, ctl.signal).then(
      (list) => {
        setSeries(new Map(list.map((s) => [s.runId, s])));
        setRange(null);
        setStatus("");
      },
      (err) => ctl.signal.aborted || setError(problemOf(err).message),
    );
    return () => ctl.abort();
    // Width changes re-query only through zooms: the first answer already fits a resize well enough.
  }, [visible, runIds, metric, width === 0]);

  useEffect(() => {
    if (!live) return;
    return live.subscribe(metric, (s) => {
      setSeries((old) => {
        const base = old.get(s.runId);
        const next = new Map(old);
        next.set(s.runId, base ? appendPoints(base, s) : s);
        return next;
      });
    });
  }, [live, metric]);

  const ordered = runs.map((r) => series.get(r.id)).filter((s): s is Series => !!s && s.steps.length > 0);
  const xys = useMemo(() => ordered.map((s) => xyOf(s, chart, origin.get(s.runId) ?? s.times[0])), [series, chart.x, chart.smoothing, origin]);
  const extent = useMemo(() => {
    let lo = Infinity;
    let hi = -Infinity;
    for (const xy of xys) {
      if (xy.x.length === 0) continue;
      lo = Math.min(lo, xy.x[0]);
      hi = Math.max(hi, xy.x[xy.x.length - 1]);
    }
    return lo <= hi ? ([lo, hi] as [number, number]) : null;
  }, [xys]);

  // Build the plot when its shape changes; otherwise only its data.
  const shape = `${ordered.map((s) => s.runId).join(",")}|${chart.x}|${chart.logX}|${chart.logY}`;
  useEffect(() => {
    if (!box.current || width === 0 || ordered.length === 0) return;
    const axis = { stroke: cssVar("--muted"), grid: { stroke: cssVar("--grid"), width: 1 }, ticks: { stroke: cssVar("--grid") } };
    const opts: uPlot.Options = {
      width,
      height: HEIGHT,
      title: undefined,
      scales: {
        x: { time: chart.x === "time", distr: chart.logX ? 3 : 1 },
        y: { distr: chart.logY ? 3 : 1 },
      },
      axes: [{ ...axis, label: chart.x === "step" ? "step" : chart.x === "time" ? undefined : "seconds since start" }, axis],
      legend: { live: true },
      cursor: { drag: { x: true, y: false }, focus: { prox: 16 } },
      focus: { alpha: 0.35 },
      series: [
        { label: chart.x === "step" ? "step" : chart.x === "time" ? "time" : "seconds" },
        ...ordered.map((s, i) => ({
          label: names.get(s.runId) ?? s.runId,
          stroke: colorOf(runs.findIndex((r) => r.id === s.runId) >= 0 ? runs.findIndex((r) => r.id === s.runId) : i),
          width: 1.25,
          spanGaps: true,
          // uPlot's default: dots only where points are far apart (a metric logged a few times).
          points: { size: 5 },
        })),
      ],
      hooks: {
        setScale: [
          (u, key) => {
            if (key !== "x" || internal.current) return;
            const { min, max } = u.scales.x;
            if (min === undefined || max === undefined) return;
            const last = applied.current;
            const eps = last ? Math.abs(last[1] - last[0]) * 1e-9 : 0;
            if (last && Math.abs(min - last[0]) <= eps && Math.abs(max - last[1]) <= eps) return;
            applied.current = [min, max];
            setRange([min, max]);
          },
        ],
      },
    };
    const u = new uPlot(opts, [new Float64Array(0), ...ordered.map(() => [])] as uPlot.AlignedData, box.current.querySelector<HTMLElement>(".plot")!);
    plot.current = u;
    return () => {
      u.destroy();
      plot.current = null;
    };
  }, [shape, width]);

  // Data, laid out for the range in view at this width.
  useEffect(() => {
    const u = plot.current;
    if (!u || !extent) return;
    const [lo, hi] = range ?? extent;
    const data = alignForChart(xys, lo, hi, width, chart.logY) as uPlot.AlignedData;
    // The highest value inside the x range in view (the data also holds what is off to the sides).
    let max = -Infinity;
    const xs = data[0] as ArrayLike<number>;
    for (const ys of data.slice(1) as ArrayLike<number | null>[]) {
      for (let i = 0; i < ys.length; i++) {
        const v = ys[i];
        if (v !== null && v > max && xs[i] >= lo && xs[i] <= hi) max = v;
      }
    }
    internal.current = true;
    u.setData(data, range === null);
    if (range) u.setScale("x", { min: lo, max: hi });
    internal.current = false;
    applied.current = range ? [lo, hi] : null;
    // uPlot draws on the next microtask; the frame after it is on screen.
    requestAnimationFrame(() => setDrawn({ points: data[0].length, max }));
  }, [xys, range, extent, width, shape]);

  // A zoom or pan re-queries the server for that range at this chart's width.
  useEffect(() => {
    if (!range || !extent) return;
    const full = range[0] <= extent[0] && range[1] >= extent[1];
    if (full) return;
    const steps = stepsOf(ordered, xys, range[0], range[1]);
    if (!steps) return;
    const ctl = new AbortController();
    const timer = setTimeout(() => {
      setStatus("Loading range…");
      fetchHistory(ordered.map((s) => s.runId), [metric], pointsFor(width, ordered.length), steps, ctl.signal).then(
        (detail) => {
          setSeries((old) => {
            const next = new Map(old);
            for (const d of detail) {
              const base = next.get(d.runId);
              next.set(d.runId, base ? mergeRange(base, d, steps.start, steps.end) : d);
            }
            return next;
          });
          setStatus("");
        },
        (err) => ctl.signal.aborted || setError(problemOf(err).message),
      );
    }, 120);
    return () => {
      clearTimeout(timer);
      ctl.abort();
    };
  }, [range?.[0], range?.[1]]);

  const view = range ?? extent;
  const move = (pan: number, zoom: number) => {
    if (!view || !extent) return;
    const span = view[1] - view[0];
    const mid = (view[0] + view[1]) / 2 + pan * span;
    const half = (span * zoom) / 2;
    setRange([mid - half, mid + half]);
  };
  const label = `Chart of ${metric}`;
  return (
    <figure class="chart" aria-label={label}>
      <figcaption class="row spread">
        <strong>{metric}</strong>
        <span class="row">
          <span class="muted" role="status">
            {error || status}
          </span>
          <button type="button" class="ghost small" aria-label={`Zoom in on ${metric}`} onClick={() => move(0, 0.5)}>
            +
          </button>
          <button type="button" class="ghost small" aria-label={`Zoom out of ${metric}`} onClick={() => move(0, 2)}>
            −
          </button>
          <button type="button" class="ghost small" aria-label={`Reset zoom of ${metric}`} onClick={() => setRange(null)}>
            Reset
          </button>
          <button
            type="button"
            class="ghost small"
            aria-label={`Download ${metric} as PNG`}
            onClick={async () => plot.current && saveBlob(await chartPng(plot.current.ctx.canvas, cssVar("--panel")), `${metric}.png`)}
          >
            PNG
          </button>
          <button
            type="button"
            class="ghost small"
            aria-label={`Download ${metric} as CSV`}
            onClick={() => {
              const steps = range ? stepsOf(ordered, xys, range[0], range[1]) ?? undefined : undefined;
              saveBlob(new Blob([seriesCsv(ordered, names, steps)], { type: "text/csv" }), `${metric}.csv`);
            }}
          >
            CSV
          </button>
        </span>
      </figcaption>
      <div
        ref={box}
        class="plot-box"
        tabIndex={0}
        aria-label={`${label}: drag to zoom, arrow keys to pan, + and - to zoom, 0 to reset`}
        data-points={ordered.reduce((n, s) => n + s.steps.length, 0)}
        data-drawn-points={drawn?.points}
        data-drawn-max={drawn?.max}
        onKeyDown={(e) => {
          const k = e.key;
          if (k === "ArrowLeft" || k === "ArrowRight") move(k === "ArrowLeft" ? -0.25 : 0.25, 1);
          else if (k === "+" || k === "=") move(0, 0.5);
          else if (k === "-") move(0, 2);
          else if (k === "0") setRange(null);
          else return;
          e.preventDefault();
        }}
      >
        <div class="plot" />
        {visible && ordered.length === 0 && !status && <p class="muted">No points.</p>}
      </div>
    </figure>
  );
}

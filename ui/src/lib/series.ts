// Metric series on the page: columns of numbers, merged as the server sends more (a zoomed range at
// a finer resolution, live points) and laid out for uPlot. Everything drawn is bounded by the
// chart's width, whatever the number of points, while each pixel column keeps its first, last,
// lowest and highest point: a single-point spike is never averaged or sampled away.

export interface Series {
  runId: string;
  key: string;
  steps: Float64Array;
  values: Float64Array;
  /** Milliseconds since the epoch. */
  times: Float64Array;
}

export function emptySeries(runId: string, key: string): Series {
  return { runId, key, steps: new Float64Array(0), values: new Float64Array(0), times: new Float64Array(0) };
}

export function fromColumns(
  runId: string,
  key: string,
  steps: ArrayLike<bigint | number>,
  values: ArrayLike<number>,
  times: ArrayLike<bigint | number>,
): Series {
  const n = values.length;
  const s = new Float64Array(n);
  const t = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s[i] = Number(steps[i]);
    t[i] = Number(times[i]);
  }
  return { runId, key, steps: s, values: Float64Array.from(values), times: t };
}

function concat(parts: Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function take(s: Series, from: number, to: number): Float64Array[] {
  return [s.steps.subarray(from, to), s.values.subarray(from, to), s.times.subarray(from, to)];
}

/** First index whose step is >= step (steps ascending). */
export function lowerBound(steps: Float64Array, step: number): number {
  let lo = 0;
  let hi = steps.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (steps[mid] < step) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * `base` with its points in [lo, hi] (steps, inclusive) replaced by `detail`, which the server
 * returned for that range at a finer resolution. Points outside the range are kept, so panning
 * out shows the overview until the next query answers.
 */
export function mergeRange(base: Series, detail: Series, lo: number, hi: number): Series {
  const a = lowerBound(base.steps, lo);
  const b = lowerBound(base.steps, hi + 1);
  const d0 = lowerBound(detail.steps, lo);
  const d1 = lowerBound(detail.steps, hi + 1);
  const before = take(base, 0, a);
  const inside = take(detail, d0, d1);
  const after = take(base, b, base.steps.length);
  return {
    runId: base.runId,
    key: base.key,
    steps: concat([before[0], inside[0], after[0]]),
    values: concat([before[1], inside[1], after[1]]),
    times: concat([before[2], inside[2], after[2]]),
  };
}

/** `base` with `more` points (live ones) added, in step order; ties keep arrival order. */
export function appendPoints(base: Series, more: Series): Series {
  if (more.steps.length === 0) return base;
  const steps = concat([base.steps, more.steps]);
  const values = concat([base.values, more.values]);
  const times = concat([base.times, more.times]);
  const n = steps.length;
  let sorted = true;
  for (let i = base.steps.length; i < n && sorted; i++) sorted = i === 0 || steps[i - 1] <= steps[i];
  if (sorted) return { runId: base.runId, key: base.key, steps, values, times };
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => steps[i] - steps[j] || i - j);
  return {
    runId: base.runId,
    key: base.key,
    steps: Float64Array.from(order, (i) => steps[i]),
    values: Float64Array.from(order, (i) => values[i]),
    times: Float64Array.from(order, (i) => times[i]),
  };
}

export interface XY {
  x: Float64Array;
  y: Float64Array;
}

/** uPlot's aligned columns: one x array, then one y array per series (null: no point there). */
export type Aligned = [ArrayLike<number>, ...ArrayLike<number | null>[]];

const plottable = (v: number, logY: boolean): number | null =>
  Number.isFinite(v) && (!logY || v > 0) ? v : null;

interface Bucket {
  /** Indices of the first, lowest, highest and last point in the column, in x order, deduplicated. */
  picks: number[];
}

/** Per pixel column of [xMin, xMax] (`columns` of them), the first, min, max and last point. */
function bucketize(s: XY, xMin: number, xMax: number, columns: number, logY: boolean): Map<number, Bucket> {
  const width = (xMax - xMin) / columns || 1;
  const out = new Map<number, Bucket>();
  let col = Number.NaN;
  let first = -1;
  let lo = -1;
  let hi = -1;
  let last = -1;
  const flush = () => {
    if (first < 0) return;
    const picks = [...new Set([first, lo, hi, last].filter((i) => i >= 0))].sort((a, b) => a - b);
    out.set(col, { picks });
  };
  for (let i = 0; i < s.x.length; i++) {
    const c = Math.floor((s.x[i] - xMin) / width);
    if (c !== col) {
      flush();
      col = c;
      first = lo = hi = -1;
    }
    if (first < 0) first = i;
    last = i;
    const v = plottable(s.y[i], logY);
    if (v === null) continue;
    if (lo < 0 || v < s.y[lo]) lo = i;
    if (hi < 0 || v > s.y[hi]) hi = i;
  }
  flush();
  return out;
}

/**
 * Lays series out for one uPlot chart of `columns` pixels over [xMin, xMax] (each x ascending).
 * A single series keeps its exact x values (reduced to four points per pixel column when it has
 * more). Several series share one x array: exact when their x values together fit in four per
 * column (runs logged at the same steps), else four slots per column each series fills with its
 * first, lowest, highest and last point there.
 */
export function alignForChart(
  series: XY[],
  xMin: number,
  xMax: number,
  columns: number,
  logY = false,
): Aligned {
  const cols = Math.max(1, Math.floor(columns));
  if (series.length === 0) return [new Float64Array(0)];
  if (series.length === 1) {
    const s = series[0];
    const reduce = s.x.length > 4 * cols;
    const idx: number[] = [];
    if (reduce) {
      for (const b of [...bucketize(s, xMin, xMax, cols, logY).entries()].sort((p, q) => p[0] - q[0])) {
        idx.push(...b[1].picks);
      }
    }
    const n = reduce ? idx.length : s.x.length;
    const x = new Float64Array(n);
    const y: (number | null)[] = new Array(n);
    for (let k = 0; k < n; k++) {
      const i = reduce ? idx[k] : k;
      x[k] = s.x[i];
      y[k] = plottable(s.y[i], logY);
    }
    return [x, y];
  }
  const union = exactUnion(series, 4 * cols);
  if (union) {
    const ys = series.map((s) => {
      const y: (number | null)[] = new Array(union.length).fill(null);
      let j = 0;
      for (let i = 0; i < s.x.length; i++) {
        while (union[j] < s.x[i]) j++;
        y[j] = plottable(s.y[i], logY);
      }
      return y;
    });
    return [union, ...ys];
  }
  return slotted(series, xMin, xMax, cols, logY);
}

/** The sorted distinct x values of all series, or null when there are more than `limit`. */
function exactUnion(series: XY[], limit: number): Float64Array | null {
  const seen = new Set<number>();
  for (const s of series) {
    for (let i = 0; i < s.x.length; i++) {
      seen.add(s.x[i]);
      if (seen.size > limit) return null;
    }
  }
  return Float64Array.from(seen).sort();
}

function slotted(series: XY[], xMin: number, xMax: number, cols: number, logY: boolean): Aligned {
  const width = (xMax - xMin) / cols || 1;
  const buckets = series.map((s) => bucketize(s, xMin, xMax, cols, logY));
  const columnsUsed = [...new Set(buckets.flatMap((b) => [...b.keys()]))].sort((a, b) => a - b);
  const n = columnsUsed.length * 4;
  const x = new Float64Array(n);
  columnsUsed.forEach((c, k) => {
    for (let slot = 0; slot < 4; slot++) x[k * 4 + slot] = xMin + (c + (slot + 0.5) / 4) * width;
  });
  const ys = series.map((s, si) => {
    const y: (number | null)[] = new Array(n).fill(null);
    columnsUsed.forEach((c, k) => {
      const b = buckets[si].get(c);
      if (!b) return;
      // 1 point: slot 0; 2: slots 0 and 3; 3: 0, 1, 3; 4: all, keeping their order.
      const slots = [[0], [0, 3], [0, 1, 3], [0, 1, 2, 3]][b.picks.length - 1];
      b.picks.forEach((i, p) => {
        y[k * 4 + slots[p]] = plottable(s.y[i], logY);
      });
    });
    return y;
  });
  return [x, ...ys];
}

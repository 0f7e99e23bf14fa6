import { describe, expect, it } from "vitest";
import { alignForChart, appendPoints, fromColumns, mergeRange, type Series } from "../src/lib/series";

const series = (steps: number[], values: number[]): Series =>
  fromColumns("r", "loss", steps, values, steps.map((s) => 1000 + s));

describe("merging a zoomed range into the overview", () => {
  it("replaces the points in range and keeps those outside", () => {
    const base = series([0, 10, 20, 30, 40], [0, 1, 2, 3, 4]);
    const detail = series([9, 10, 11, 12, 19, 20, 21, 22], [9, 10, 11, 12, 19, 20, 21, 22]);
    const merged = mergeRange(base, detail, 10, 20);
    expect([...merged.steps]).toEqual([0, 10, 11, 12, 19, 20, 30, 40]);
    expect([...merged.values]).toEqual([0, 10, 11, 12, 19, 20, 3, 4]);
    expect([...merged.times]).toEqual([1000, 1010, 1011, 1012, 1019, 1020, 1030, 1040]);
  });

  it("appends live points, sorting late ones into place", () => {
    const base = series([0, 1, 2], [0, 1, 2]);
    expect([...appendPoints(base, series([3, 4], [3, 4])).steps]).toEqual([0, 1, 2, 3, 4]);
    expect([...appendPoints(base, series([5, 1.5], [5, 1.5])).values]).toEqual([0, 1, 1.5, 2, 5]);
  });
});

describe("laying series out for uPlot", () => {
  it("keeps a single-point spike among a million points at 500 pixels", () => {
    const n = 1_000_000;
    const x = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      x[i] = i;
      y[i] = Math.sin(i / 1000);
    }
    y[777_777] = 50;
    const [xs, ys] = alignForChart([{ x, y }], 0, n - 1, 500);
    expect(xs.length).toBeLessThanOrEqual(4 * 501);
    const col = Array.from(ys as (number | null)[]);
    expect(Math.max(...col.map((v) => v ?? -Infinity))).toBe(50);
    expect(xs[col.indexOf(50)]).toBe(777_777);
  });

  it("shares exact x values when runs logged the same steps", () => {
    const a = { x: Float64Array.from([0, 1, 2]), y: Float64Array.from([1, 2, 3]) };
    const b = { x: Float64Array.from([0, 2]), y: Float64Array.from([5, 6]) };
    expect(alignForChart([a, b], 0, 2, 100)).toEqual([Float64Array.from([0, 1, 2]), [1, 2, 3], [5, null, 6]]);
  });

  it("bounds many runs to four slots per pixel column and keeps each run's extremes", () => {
    const runs = Array.from({ length: 50 }, (_, r) => {
      const x = new Float64Array(100_000);
      const y = new Float64Array(100_000);
      for (let i = 0; i < x.length; i++) {
        x[i] = i + r * 0.01; // interleaved steps: no shared x values
        y[i] = r;
      }
      y[1234 + r] = 1000 + r;
      return { x, y };
    });
    const [xs, ...ys] = alignForChart(runs, 0, 100_000, 800);
    expect(xs.length).toBeLessThanOrEqual(4 * 802);
    ys.forEach((col, r) => expect(Math.max(...Array.from(col as (number | null)[]).map((v) => v ?? -Infinity))).toBe(1000 + r));
  });

  it("turns NaN, infinities and non-positive values on a log scale into gaps", () => {
    const s = { x: Float64Array.from([0, 1, 2, 3]), y: Float64Array.from([1, Number.NaN, -Infinity, 0]) };
    expect(alignForChart([s], 0, 3, 100, true)[1]).toEqual([1, null, null, null]);
  });
});

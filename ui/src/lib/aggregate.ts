// Group aggregates of the runs table: numbers get min, max and mean; anything else a count.

export interface Aggregate {
  min: number;
  max: number;
  mean: number;
  /** Runs with a finite number in this column. */
  n: number;
}

export function aggregate(values: Iterable<unknown>): Aggregate | null {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let n = 0;
  for (const v of values) {
    const x = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
    if (typeof x !== "number" || !Number.isFinite(x)) continue;
    if (x < min) min = x;
    if (x > max) max = x;
    sum += x;
    n++;
  }
  return n === 0 ? null : { min, max, mean: sum / n, n };
}

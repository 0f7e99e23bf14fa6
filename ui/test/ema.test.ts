import { describe, expect, it } from "vitest";
import { ema } from "../src/lib/ema";

describe("EMA smoothing", () => {
  it("is the identity at weight 0", () => {
    expect([...ema([3, 1, 2], 0)]).toEqual([3, 1, 2]);
  });

  it("is debiased: a constant series stays constant from the first point", () => {
    for (const v of ema([5, 5, 5, 5], 0.9)) expect(v).toBeCloseTo(5, 12);
  });

  it("matches the recurrence", () => {
    const out = ema([0, 10], 0.5);
    expect(out[0]).toBe(0);
    // last = 0.5 * 0 + 0.5 * 10 = 5 after the second point; debiased by 1 - 0.5 ** 2
    expect(out[1]).toBeCloseTo(5 / 0.75, 12);
  });

  it("lets NaN and infinities through without poisoning later points", () => {
    const out = ema([1, Number.NaN, Infinity, 1], 0.8);
    expect(out[1]).toBeNaN();
    expect(out[2]).toBe(Infinity);
    expect(out[3]).toBeCloseTo(1, 12);
  });
});

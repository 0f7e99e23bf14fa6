import { describe, expect, it } from "vitest";
import { complete, keysOf } from "../src/lib/autocomplete";

const keys = { metrics: ["loss", "lr_scale", "val acc"], params: ["lr", "layers"], tags: ["team"] };
const labels = (text: string, at = text.length) => complete(text, at, keys)?.items.map((i) => i.label) ?? [];

describe("filter key completion", () => {
  it("offers the entities for a bare word", () => {
    expect(labels("me")).toEqual(["metrics."]);
    expect(labels("")).toEqual(["metrics.", "params.", "tags.", "attributes."]);
  });

  it("offers keys of the entity, with the metric summaries for an exact key", () => {
    expect(labels("metrics.l")).toEqual(["metrics.loss", "metrics.lr_scale"]);
    expect(labels("metrics.loss")).toEqual(["metrics.loss", "metrics.loss.min", "metrics.loss.max", "metrics.loss.first", "metrics.loss.count"]);
    expect(labels("params.la")).toEqual(["params.layers"]);
  });

  it("backticks keys the grammar cannot take bare", () => {
    expect(complete("metrics.va", 10, keys)?.items[0].insert).toBe("metrics.`val acc`");
  });

  it("replaces the whole word under the cursor", () => {
    const c = complete("metrics.lo < 1", 9, keys)!; // cursor inside "lo"
    expect([c.from, c.to]).toEqual([0, 10]);
  });

  it("completes nothing inside quotes or after an operator", () => {
    expect(complete("params.lr = 'met", 16, keys)).toBeNull();
    expect(complete("params.lr = ", 12, keys)).toBeNull();
    expect(complete("metrics.loss < 0.", 17, keys)).toBeNull();
  });

  it("offers AND after a complete comparison", () => {
    expect(labels("metrics.loss < 1 an")).toContain("AND");
  });

  it("collects keys of runs, hiding the clients' system tags", () => {
    const k = keysOf([{ metrics: [{ key: "b" }, { key: "a" }], params: [{ key: "p" }], tags: [{ key: "mlflow.user" }, { key: "team" }] }]);
    expect(k).toEqual({ metrics: ["a", "b"], params: ["p"], tags: ["team"] });
  });
});

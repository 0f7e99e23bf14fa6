import { describe, expect, it } from "vitest";
import { DEFAULT_COLUMNS } from "../src/lib/columns";
import { defaultRunsView, parseRunsView, writeRunsView } from "../src/lib/url";

describe("runs view in the URL", () => {
  it("leaves defaults out, so a plain view has an empty query", () => {
    expect(writeRunsView(defaultRunsView())).toBe("");
  });

  it("round-trips every part of the state", () => {
    const view = {
      ...defaultRunsView(),
      filter: "metrics.loss < 0.1 and params.lr = '0.01'",
      sort: { column: { entity: "metric" as const, key: "loss", summary: "min" as const }, descending: true },
      columns: [...DEFAULT_COLUMNS, { entity: "param" as const, key: "lr" }, { entity: "metric" as const, key: "val/acc.top 1", summary: "max" as const }],
      groupBy: [{ entity: "tag" as const, key: "team" }],
      selected: ["a".repeat(32), "b".repeat(32)],
      expanded: ["c".repeat(32)],
      mode: "charts" as const,
      chart: { x: "relative" as const, logX: false, logY: true, smoothing: 0.6 },
      deleted: true,
    };
    expect(parseRunsView(writeRunsView(view))).toEqual(view);
  });

  it("drops malformed parts instead of failing", () => {
    const view = parseRunsView("?sort=-nonsense&cols=param:lr,bogus,metric:loss:median&x=sideways&smooth=7");
    expect(view.sort).toBeNull();
    expect(view.columns).toEqual([{ entity: "param", key: "lr" }]);
    expect(view.chart.x).toBe("step");
    expect(view.chart.smoothing).toBe(0.99);
  });

  it("keeps an explicitly empty column list apart from the default", () => {
    expect(parseRunsView("?cols=").columns).toEqual([]);
    expect(parseRunsView("").columns).toEqual(DEFAULT_COLUMNS);
  });
});


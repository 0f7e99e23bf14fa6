import { describe, expect, it } from "vitest";
import { grammarName, orderBy, parseColumnKey } from "../src/lib/columns";

describe("columns as the server names them", () => {
  it("spells summaries as the search grammar does", () => {
    expect(grammarName({ entity: "metric", key: "loss", summary: "min" })).toBe("metrics.loss.min");
    expect(orderBy({ entity: "metric", key: "loss", summary: "min" }, true)).toBe("metrics.loss.min DESC");
  });

  it("quotes keys the grammar cannot take bare, doubling backticks", () => {
    expect(grammarName({ entity: "param", key: "my param" })).toBe("params.`my param`");
    expect(grammarName({ entity: "tag", key: "a`b c" })).toBe("tags.`a``b c`");
    expect(grammarName({ entity: "metric", key: "val/acc" })).toBe("metrics.val/acc");
  });

  it("has no server order for derived attributes", () => {
    expect(orderBy({ entity: "attr", key: "duration" }, false)).toBeNull();
    expect(orderBy({ entity: "attr", key: "start_time" }, false)).toBe("attributes.start_time ASC");
  });

  it("parses only known entities and summaries on metrics", () => {
    expect(parseColumnKey("metric:loss:count")).toEqual({ entity: "metric", key: "loss", summary: "count" });
    expect(parseColumnKey("param:lr:min")).toBeNull();
    expect(parseColumnKey("foo:bar")).toBeNull();
  });
});

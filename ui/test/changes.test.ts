import { describe, expect, it } from "vitest";
import { applyChanges } from "../src/lib/changes";
import type { RunRow } from "../src/api/runs";

const row = (id: string, start: number, deleted = false, status = "RUNNING") => ({ id, start, deleted, status }) as RunRow;

describe("live changes to the loaded runs", () => {
  it("replaces changed rows in place, drops deleted ones and adds new runs on top", () => {
    const rows = [row("b", 2), row("a", 1)];
    const out = applyChanges(rows, [row("a", 1, false, "FINISHED"), row("c", 3), row("b", 2, true)], { prependNew: true, keepDeleted: false });
    expect(out.map((r) => [r.id, r.status])).toEqual([
      ["c", "RUNNING"],
      ["a", "FINISHED"],
    ]);
  });

  it("adds nothing new to a filtered or re-sorted view", () => {
    expect(applyChanges([row("a", 1)], [row("z", 9)], { prependNew: false, keepDeleted: false }).map((r) => r.id)).toEqual(["a"]);
  });
});

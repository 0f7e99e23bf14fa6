import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { problemOf } from "../src/api/errors";

describe("server errors for people", () => {
  it("reads the column of a filter parse error", () => {
    const err = new ConnectError("filter: at column 14: expected a comparison operator", Code.InvalidArgument);
    expect(problemOf(err)).toEqual({ code: "InvalidArgument", message: "filter: at column 14: expected a comparison operator", column: 14 });
  });

  it("has no column when the server names none", () => {
    expect(problemOf(new ConnectError("run not found", Code.NotFound)).column).toBeUndefined();
  });
});

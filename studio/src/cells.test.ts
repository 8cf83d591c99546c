import { describe, expect, it } from "vitest";
import { cell, lagText, type StreamLag } from "./cells";

describe("cells", () => {
  it("shows a cut value's length instead of losing it past 200 characters", () => {
    const served = `${"x".repeat(10_000)}… (cut: 5,000,000 characters in all; download the table for the whole value)`;
    const shown = cell(served);
    expect(shown.length).toBeLessThan(300);
    expect(shown).toContain("5,000,000 characters in all");
  });
  it("cuts long text and keeps short text and JSON", () => {
    expect(cell("a".repeat(500))).toBe(`${"a".repeat(200)}…`);
    expect(cell({ a: 1 })).toBe('{"a":1}');
    expect(cell(null)).toBe("");
  });
});

describe("stream lag", () => {
  const base: StreamLag = { node: "n", node_title: "N", table: "t", behind: 0, rows: 10, started: true, on_version: 1, order_by: null };
  it("says how far a stream is", () => {
    expect(lagText(base)).toBe("up to date (0 rows behind)");
    expect(lagText({ ...base, behind: 1 })).toBe("1 row behind");
    expect(lagText({ ...base, behind: 12345 })).toBe(`${(12345).toLocaleString()} rows behind`);
    expect(lagText({ ...base, started: false, behind: 10 })).toBe("not started (10 rows behind)");
    expect(lagText({ ...base, behind: null })).toBe("no rows to read yet");
  });
});

import { describe, expect, it } from "vitest";
import { initialPaging, pageNumber, pageQuery, paging } from "./paging";

describe("paging", () => {
  it("moves forward with the server's cursor and back through the ones it came by", () => {
    let s = paging(initialPaging, { type: "loaded", next: "c2" });
    s = paging(s, { type: "next" });
    expect(pageNumber(s)).toBe(2);
    expect(pageQuery(s, 50)).toContain("after=c2");
    s = paging(s, { type: "loaded", next: "c3" });
    s = paging(s, { type: "next" });
    s = paging(s, { type: "previous" });
    expect(pageNumber(s)).toBe(2);
    expect(pageQuery(s, 50)).toContain("after=c2");
    s = paging(s, { type: "previous" });
    expect(pageQuery(s, 50)).toBe("limit=50");
  });

  it("does not move past the last page", () => {
    const s = paging(paging(initialPaging, { type: "loaded", next: null }), { type: "next" });
    expect(pageNumber(s)).toBe(1);
  });

  it("cycles a column's sort ascending, descending, off and starts over", () => {
    let s = paging(initialPaging, { type: "loaded", next: "c2" });
    s = paging(s, { type: "next" });
    s = paging(s, { type: "sort", column: "n" });
    expect(pageNumber(s)).toBe(1);
    expect(pageQuery(s, 10)).toBe("limit=10&sort=n");
    s = paging(s, { type: "sort", column: "n" });
    expect(pageQuery(s, 10)).toBe("limit=10&sort=n&desc=true");
    s = paging(s, { type: "sort", column: "n" });
    expect(s.sort).toBeNull();
  });

  it("sends a filter, without a value for null checks", () => {
    let s = paging(initialPaging, { type: "filter", filter: { column: "name", op: "contains", value: "a b" } });
    expect(pageQuery(s, 10)).toBe("limit=10&where=name&op=contains&value=a+b");
    s = paging(s, { type: "filter", filter: { column: "name", op: "null", value: "x" } });
    expect(pageQuery(s, 10)).toBe("limit=10&where=name&op=null");
  });
});

import { describe, expect, it } from "vitest";
import { CARD, edgesOf, formHeight, layout } from "./layout";
import type { Graph, GraphNode } from "./types";

const node = (id: string, reads: string[], writes: string[], display: GraphNode["display"] = null): GraphNode => ({
  id, kind: "python", title: id, file: `${id}.py`, trigger: null, reads, writes, display,
  chart_input: null, status: null, problems: [], parameters: [],
});

const graph = (nodes: GraphNode[], stores: string[]): Graph => ({
  slug: "a", title: "A", nodes, docs: [], dashboards: [], problems: [],
  stores: stores.map((name) => ({ name, id: null, display: null, rows: null })),
});

describe("layout", () => {
  it("derives edges from what nodes read and write", () => {
    const g = graph([node("a", [], ["t"]), node("b", ["t"], ["u"])], ["t", "u"]);
    expect(edgesOf(g).map((e) => e.id).sort()).toEqual(["n:a->s:t", "n:b->s:u", "s:t->n:b"]);
  });

  it("lays out left to right along the edges, without overlaps", () => {
    const { cards } = layout(graph([node("a", [], ["t"]), node("b", ["t"], [])], ["t"]));
    const at = Object.fromEntries(cards.map((c) => [c.id, c]));
    expect(at["n:a"].x).toBeLessThan(at["s:t"].x);
    expect(at["s:t"].x).toBeLessThan(at["n:b"].x);
    for (const c of cards) for (const d of cards) {
      if (c === d) continue;
      const apart = Math.abs(c.x - d.x) >= CARD.width || Math.abs(c.y - d.y) >= CARD.height;
      expect(apart).toBe(true);
    }
  });

  it("makes room for a form card's inputs", () => {
    const form = { ...node("f", [], ["t"], { style: "form" }), parameters: [
      { name: "a", type: "str", default: null, description: null },
      { name: "b", type: "int", default: 1, description: null }] };
    const { cards } = layout(graph([form, node("g", [], ["t"])], ["t"]));
    const at = Object.fromEntries(cards.map((c) => [c.id, c]));
    expect(Math.abs(at["n:f"].y - at["n:g"].y)).toBeGreaterThanOrEqual(formHeight(2));
  });

  it("keeps display x/y from graph.yml and lays out the rest below them", () => {
    const { cards } = layout(graph([node("a", [], ["t"], { x: 500, y: 40 }), node("b", ["t"], [])], ["t"]));
    const at = Object.fromEntries(cards.map((c) => [c.id, c]));
    expect(at["n:a"]).toMatchObject({ x: 500, y: 40, placed: true });
    expect(at["n:b"].placed).toBe(false);
    expect(at["n:b"].y).toBeGreaterThan(40 + CARD.height);
  });
});

import { describe, expect, it } from "vitest";
import { CARD, edgesOf, formHeight, layout, type Card, type Point } from "./layout";
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

  it("routes a long edge around the cards of the ranks it crosses", () => {
    // a -> t1 -> b -> t2 -> c, and a -> t3 -> c (t3's edge to c skips two ranks)
    const g = graph([node("a", [], ["t1", "t3"]), node("b", ["t1"], ["t2"]), node("c", ["t2", "t3"], []),
      node("d", [], ["t4"]), node("e", ["t4"], [])], ["t1", "t2", "t3", "t4"]);
    const { cards, edges } = layout(g);
    const at = Object.fromEntries(cards.map((c) => [c.id, c]));
    const crosses = (p: Point, q: Point, c: Card) => {
      for (let i = 1; i < 20; i++) { // (samples along the segment)
        const x = p.x + ((q.x - p.x) * i) / 20, y = p.y + ((q.y - p.y) * i) / 20;
        if (x > c.x + 1 && x < c.x + CARD.width - 1 && y > c.y + 1 && y < c.y + CARD.height - 1) return true;
      }
      return false;
    };
    for (const e of edges) {
      const s = at[e.source], t = at[e.target];
      const line = [{ x: s.x + CARD.width, y: s.y + CARD.height / 2 }, ...(e.points ?? []), { x: t.x, y: t.y + CARD.height / 2 }];
      for (const c of cards) {
        if (c.id === e.source || c.id === e.target) continue;
        for (let i = 1; i < line.length; i++) expect(crosses(line[i - 1], line[i], c), `${e.id} crosses ${c.id}`).toBe(false);
      }
    }
  });

  it("shows a subgraph as one card, and its members in a frame when expanded", () => {
    const inner = (id: string, reads: string[], writes: string[]) => ({ ...node(id, reads, writes), parent: "sub" });
    const g = graph([node("src", [], ["in"]),
      { ...node("sub", ["in"], ["out"]), kind: "subgraph", members: ["m1", "m2"] },
      inner("m1", ["in"], ["private"]), inner("m2", ["private"], ["out"]), node("end", ["out"], [])],
    ["in", "private", "out"]);
    const collapsed = layout(g);
    expect(collapsed.cards.map((c) => c.id).sort()).toEqual(["n:end", "n:src", "n:sub", "s:in", "s:out"]);
    expect(collapsed.edges.map((e) => e.id).sort()).toEqual(["n:src->s:in", "n:sub->s:out", "s:in->n:sub", "s:out->n:end"]);
    const open = layout(g, new Set(["sub"]));
    const at = Object.fromEntries(open.cards.map((c) => [c.id, c]));
    expect(at["n:sub"]).toBeUndefined();
    expect(open.edges.map((e) => e.id).sort()).toEqual(
      ["n:m1->s:private", "n:m2->s:out", "n:src->s:in", "s:in->n:m1", "s:out->n:end", "s:private->n:m2"]);
    const frame = at["g:sub"];
    for (const id of ["n:m1", "n:m2", "s:private"]) {
      expect(at[id].group).toBe("g:sub");
      expect(at[id].x).toBeGreaterThanOrEqual(frame.x);
      expect(at[id].x + CARD.width).toBeLessThanOrEqual(frame.x + frame.width!);
      expect(at[id].y).toBeGreaterThanOrEqual(frame.y);
      expect(at[id].y + CARD.height).toBeLessThanOrEqual(frame.y + frame.height!);
    }
    for (const id of ["n:src", "s:in", "s:out", "n:end"]) { // outside cards stay outside the frame
      const c = at[id];
      const inside = c.x + CARD.width > frame.x && c.x < frame.x + frame.width! && c.y + CARD.height > frame.y && c.y < frame.y + frame.height!;
      expect(inside, `${id} overlaps the frame`).toBe(false);
    }
  });
});

// Where each card goes on the canvas: its `display` x/y from graph.yml when it has one,
// else a left-to-right layout by dagre over the edges the interfaces give.
import dagre from "@dagrejs/dagre";
import type { Graph } from "./types";

export const CARD = { width: 190, height: 64 };
/** A form card (`display: {style: form}`) holds an input per parameter and a Run button. */
export const formHeight = (parameters: number) => CARD.height + 44 * parameters + 36;

export interface Card {
  id: string; // n:<node id>, s:<store name>, d:<doc index>
  kind: "node" | "store" | "doc";
  x: number;
  y: number;
  placed: boolean; // from display x/y
}
export interface Edge { id: string; source: string; target: string }

export const nodeKey = (id: string) => `n:${id}`;
export const storeKey = (name: string) => `s:${name}`;

export function edgesOf(graph: Graph): Edge[] {
  const stores = new Set(graph.stores.map((s) => s.name));
  const edges: Edge[] = [];
  const seen = new Set<string>();
  const add = (source: string, target: string) => {
    const id = `${source}->${target}`;
    if (!seen.has(id)) {
      seen.add(id);
      edges.push({ id, source, target });
    }
  };
  for (const node of graph.nodes) {
    for (const table of node.writes) if (stores.has(table)) add(nodeKey(node.id), storeKey(table));
    for (const table of node.reads) if (stores.has(table)) add(storeKey(table), nodeKey(node.id));
  }
  return edges;
}

function placed(display: { x?: unknown; y?: unknown } | null | undefined): { x: number; y: number } | null {
  if (!display) return null;
  const { x, y } = display;
  return typeof x === "number" && typeof y === "number" && Number.isFinite(x) && Number.isFinite(y)
    ? { x, y }
    : null;
}

export function layout(graph: Graph): { cards: Card[]; edges: Edge[] } {
  const edges = edgesOf(graph);
  const cards: Card[] = [
    ...graph.nodes.map((n) => ({ id: nodeKey(n.id), kind: "node" as const, at: placed(n.display) })),
    ...graph.stores.map((s) => ({ id: storeKey(s.name), kind: "store" as const, at: placed(s.display) })),
    ...graph.docs.map((d, i) => ({ id: `d:${i}`, kind: "doc" as const, at: placed(d.display) })),
  ].map(({ id, kind, at }) => ({ id, kind, x: at?.x ?? 0, y: at?.y ?? 0, placed: at !== null }));
  const free = cards.filter((c) => !c.placed);
  if (free.length > 0) {
    const g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: "LR", nodesep: 30, ranksep: 70, marginx: 20, marginy: 20 });
    g.setDefaultEdgeLabel(() => ({}));
    const heights = new Map(graph.nodes.filter((n) => n.display?.style === "form")
      .map((n) => [nodeKey(n.id), formHeight(n.parameters?.length ?? 0)]));
    for (const card of free) g.setNode(card.id, { width: CARD.width, height: heights.get(card.id) ?? CARD.height });
    const freeIds = new Set(free.map((c) => c.id));
    for (const e of edges) if (freeIds.has(e.source) && freeIds.has(e.target)) g.setEdge(e.source, e.target);
    dagre.layout(g);
    // Laid-out cards go below any placed ones, so they never land on top of them.
    const placedCards = cards.filter((c) => c.placed);
    const offsetY = placedCards.length ? Math.max(...placedCards.map((c) => c.y)) + CARD.height * 2 : 0;
    for (const card of free) {
      const at = g.node(card.id);
      card.x = at.x - CARD.width / 2;
      card.y = at.y - at.height / 2 + offsetY;
    }
  }
  return { cards, edges };
}

// Where each card goes on the canvas: its `display` x/y from graph.yml when it has one,
// else a left-to-right layout by dagre over the edges the interfaces give. A component or
// subgraph node is one card while collapsed; expanded, its members (and the tables only they
// use) are laid out inside a group frame in its place. Edges between laid-out cards follow
// the route dagre gives them (around the cards of the ranks they cross, not through them).
import dagre from "@dagrejs/dagre";
import type { Graph, GraphNode } from "./types";

export const CARD = { width: 190, height: 64 };
/** A form card (`display: {style: form}`) holds an input per parameter and a Run button. */
export const formHeight = (parameters: number) => CARD.height + 44 * parameters + 36;
/** Room inside a group frame around its cards, and for its title. */
export const GROUP_PAD = { side: 16, top: 40 };

export interface Card {
  id: string; // n:<node id>, s:<store name>, d:<doc index>, g:<container node id>
  kind: "node" | "store" | "doc" | "group";
  x: number;
  y: number;
  placed: boolean; // from display x/y
  width?: number; // (groups: their frame)
  height?: number;
  group?: string; // the g:<id> frame it is in
}
export interface Point { x: number; y: number }
export interface Edge { id: string; source: string; target: string; points?: Point[] }

export const nodeKey = (id: string) => `n:${id}`;
export const storeKey = (name: string) => `s:${name}`;
export const groupKey = (id: string) => `g:${id}`;

/** Which nodes and stores show, given the expanded containers, and the frame each is in. */
export function visibility(graph: Graph, expanded: ReadonlySet<string> = new Set()) {
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const ancestors = (n: GraphNode): string[] => {
    const found: string[] = [];
    for (let p = n.parent ?? null; p; p = byId.get(p)?.parent ?? null) found.push(p);
    return found;
  };
  const isContainer = (n: GraphNode) => (n.members?.length ?? 0) > 0;
  // a node shows when every container above it is expanded; an expanded container shows as
  // its frame instead of a card
  const shown = graph.nodes.filter((n) => ancestors(n).every((a) => expanded.has(a)) && !(isContainer(n) && expanded.has(n.id)));
  const frames = graph.nodes.filter((n) => isContainer(n) && expanded.has(n.id) && ancestors(n).every((a) => expanded.has(a)));
  // a table only members of one container use belongs to it (the innermost such container)
  const owner = new Map<string, string | null>();
  for (const s of graph.stores) {
    // (a container using it, as its input or output, puts it outside itself)
    const users = graph.nodes.filter((n) => n.reads.includes(s.name) || n.writes.includes(s.name));
    const common = users.length ? users.map(ancestors).reduce((a, b) => a.filter((x) => b.includes(x))) : [];
    owner.set(s.name, common[0] ?? null);
  }
  const storeShown = (name: string) => {
    const home = owner.get(name);
    if (!home) return true;
    const chain = [home, ...ancestors(byId.get(home)!)];
    return chain.every((a) => expanded.has(a));
  };
  return { shown, frames, storeShown, owner };
}

export function edgesOf(graph: Graph, expanded: ReadonlySet<string> = new Set()): Edge[] {
  const { shown, storeShown } = visibility(graph, expanded);
  const stores = new Set(graph.stores.map((s) => s.name).filter(storeShown));
  const edges: Edge[] = [];
  const seen = new Set<string>();
  const add = (source: string, target: string) => {
    const id = `${source}->${target}`;
    if (!seen.has(id)) {
      seen.add(id);
      edges.push({ id, source, target });
    }
  };
  for (const node of shown) {
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

export function layout(graph: Graph, expanded: ReadonlySet<string> = new Set()): { cards: Card[]; edges: Edge[] } {
  const { shown, frames, storeShown, owner } = visibility(graph, expanded);
  const edges = edgesOf(graph, expanded);
  const frameOfNode = (n: GraphNode) => (n.parent && expanded.has(n.parent) ? groupKey(n.parent) : undefined);
  const frameOfStore = (name: string) => {
    const home = owner.get(name);
    return home && expanded.has(home) ? groupKey(home) : undefined;
  };
  const cards: Card[] = [
    // (a card inside a frame is laid out with it, whatever its display x/y)
    ...shown.map((n) => ({ id: nodeKey(n.id), kind: "node" as const, group: frameOfNode(n), at: frameOfNode(n) ? null : placed(n.display) })),
    ...graph.stores.filter((s) => storeShown(s.name)).map((s) => ({ id: storeKey(s.name), kind: "store" as const, group: frameOfStore(s.name), at: frameOfStore(s.name) ? null : placed(s.display) })),
    ...graph.docs.map((d, i) => ({ id: `d:${i}`, kind: "doc" as const, group: undefined, at: placed(d.display) })),
  ].map(({ id, kind, at, group }) => ({ id, kind, x: at?.x ?? 0, y: at?.y ?? 0, placed: at !== null, group }));
  const free = cards.filter((c) => !c.placed);
  const groups: Card[] = [];
  if (free.length > 0) {
    const g = new dagre.graphlib.Graph({ compound: frames.length > 0 });
    g.setGraph({ rankdir: "LR", nodesep: 30, ranksep: 70, marginx: 20, marginy: 20 });
    g.setDefaultEdgeLabel(() => ({}));
    const heights = new Map(graph.nodes.filter((n) => n.display?.style === "form")
      .map((n) => [nodeKey(n.id), formHeight(n.parameters?.length ?? 0)]));
    for (const card of free) g.setNode(card.id, { width: CARD.width, height: heights.get(card.id) ?? CARD.height });
    for (const frame of frames) {
      g.setNode(groupKey(frame.id), {});
      if (frame.parent && expanded.has(frame.parent)) g.setParent(groupKey(frame.id), groupKey(frame.parent));
    }
    for (const card of free) if (card.group) g.setParent(card.id, card.group);
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
    // a frame is drawn around its cards (and inner frames): innermost first
    const depth = (id: string): number => {
      const parent = frames.find((f) => f.id === id)?.parent;
      return parent && expanded.has(parent) ? 1 + depth(parent) : 0;
    };
    for (const frame of [...frames].sort((a, b) => depth(b.id) - depth(a.id))) {
      const key = groupKey(frame.id);
      const inside = [...free.filter((c) => c.group === key), ...groups.filter((c) => c.group === key)];
      if (inside.length === 0) continue;
      const left = Math.min(...inside.map((c) => c.x)) - GROUP_PAD.side;
      const top = Math.min(...inside.map((c) => c.y)) - GROUP_PAD.top;
      const right = Math.max(...inside.map((c) => c.x + (c.width ?? CARD.width))) + GROUP_PAD.side;
      const bottom = Math.max(...inside.map((c) => c.y + (c.height ?? heights.get(c.id) ?? CARD.height))) + GROUP_PAD.side;
      groups.push({ id: key, kind: "group", placed: false, x: left, y: top, width: right - left, height: bottom - top,
        group: frame.parent && expanded.has(frame.parent) ? groupKey(frame.parent) : undefined });
    }
    for (const e of edges) {
      if (!freeIds.has(e.source) || !freeIds.has(e.target)) continue;
      const route = g.edge(e.source, e.target) as { points?: Point[] } | undefined;
      // the points between the two ends (the ends are the cards' handles)
      if (route?.points && route.points.length > 2) e.points = route.points.slice(1, -1).map((p) => ({ x: p.x, y: p.y + offsetY }));
    }
  }
  return { cards: [...groups, ...cards], edges };
}

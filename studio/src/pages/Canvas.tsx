import { useCallback, useMemo, useState, useSyncExternalStore, type FormEvent, type KeyboardEvent } from "react";
import { BaseEdge, Background, Controls, Handle, Position, ReactFlow, type Edge as FlowEdge, type EdgeProps, type Node, type NodeChange, type NodeProps } from "@xyflow/react";
import { useEvents, navigate } from "../hooks";
import { layout, type Point } from "../layout";
import { renderMarkdown } from "../markdown";
import type { Graph, GraphNode, GraphStore, DocCard } from "../types";
import { enc, send } from "../api";
import { coerce } from "./NodePanel";
import { Status } from "../ui";

interface Live { nodes: Record<string, string>; stores: Record<string, number> }

type CardData = {
  app?: string; node?: GraphNode; store?: GraphStore; doc?: DocCard; status?: string | null; rows?: number | null; selected?: boolean;
  /** (a component or subgraph) expand or collapse it on the canvas */
  toggle?: () => void; width?: number; height?: number;
};

/** What was typed into each form card (by app and node), kept outside the card: the canvas
 * may mount its cards again (a new graph, a layout change) while the user types. */
const drafts = new Map<string, Record<string, string>>();
const draftListeners = new Set<() => void>();
const NO_DRAFT: Record<string, string> = {};
const onDrafts = (listener: () => void) => { draftListeners.add(listener); return () => { draftListeners.delete(listener); }; };

/** The inputs and Run button of a form card (a node with `display: {style: form}`). Every
 * mounted copy of a card shows the same draft (React Flow may hold two while it measures). */
function CardForm({ app, node }: { app: string; node: GraphNode }) {
  const draftKey = `${app}\u0000${node.id}`;
  const values = useSyncExternalStore(onDrafts, () => drafts.get(draftKey) ?? NO_DRAFT);
  const setValues = (next: Record<string, string>) => { drafts.set(draftKey, next); draftListeners.forEach((l) => l()); };
  const [note, setNote] = useState<string | null>(null);
  const run = async (e: FormEvent) => {
    e.preventDefault();
    const parameters: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(values)) if (v !== "") parameters[k] = coerce(v, node.parameters.find((p) => p.name === k)?.type);
    try {
      await send(`/apps/${enc(app)}/nodes/${enc(node.id)}/trigger`, "POST", { parameters });
      setNote("queued");
    } catch (err) {
      setNote(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <form className="card-form nodrag nopan" onSubmit={run} onClick={(e) => e.stopPropagation()} aria-label={`Run ${node.title}`}>
      {node.parameters.map((p) => (
        <label key={p.name}>{p.name}
          <input value={values[p.name] ?? ""} placeholder={p.default != null ? String(p.default) : ""}
            onChange={(e) => setValues({ ...values, [p.name]: e.target.value })} onKeyDown={(e) => e.stopPropagation()} />
        </label>
      ))}
      <button type="submit">Run</button> {note && <span role="status" className="small">{note}</span>}
    </form>
  );
}

function NodeCard({ data }: NodeProps<Node<CardData>>) {
  const n = data.node!;
  const form = n.display?.style === "form" && (n.kind === "python" || n.kind === "sql");
  return (
    <div className={`flow-card kind-${n.kind}${form ? " form-card" : ""}${data.selected ? " chosen" : ""}`} data-testid={`node-${n.id}`}>
      <Handle type="target" position={Position.Left} />
      <div className="card-title">{n.title}</div>
      <div className="card-meta">
        <span className="kind">{form ? "form" : n.kind}</span>
        {n.kind !== "chart" && n.kind !== "webhook" && <Status status={data.status} />}
        {n.problems.length > 0 && (
          <span className="badge" title={n.problems.map((p) => p.message).join("\n")} aria-label={`${n.problems.length} problem(s)`}>⚠ {n.problems.length}</span>
        )}
        {(n.needs_configuration?.length ?? 0) > 0 && (
          <span className="badge" title={n.needs_configuration!.map((p) => `${p.message}${p.fix ? `: ${p.fix}` : ""}`).join("\n")}
            aria-label="needs configuration">⚙ needs configuration</span>
        )}
      </div>
      {form && data.app && <CardForm app={data.app} node={n} />}
      {data.toggle && (n.members?.length ?? 0) > 0 && (
        <button className="small nodrag" onClick={(e) => { e.stopPropagation(); data.toggle!(); }}
          aria-label={`Expand ${n.title}`}>▸ {n.members!.length} inside</button>
      )}
      <Handle type="source" position={Position.Right} />
    </div>
  );
}

function StoreCard({ data }: NodeProps<Node<CardData>>) {
  const s = data.store!;
  return (
    <div className="flow-card store" data-testid={`store-${s.name}`}>
      <Handle type="target" position={Position.Left} />
      <div className="card-title">▦ {s.name}</div>
      <div className="card-meta"><span className="rows">{data.rows == null ? "no rows yet" : `${data.rows.toLocaleString()} row${data.rows === 1 ? "" : "s"}`}</span></div>
      <Handle type="source" position={Position.Right} />
    </div>
  );
}

function DocCardView({ data }: NodeProps<Node<CardData>>) {
  const d = data.doc!;
  const html = useMemo(() => renderMarkdown(String(d.markdown ?? "")), [d.markdown]);
  return (
    <div className="flow-card doc">
      <div className="card-title">{d.title ?? "Notes"}</div>
      <div className="doc-body" dangerouslySetInnerHTML={{ __html: html }} />
    </div>
  );
}

/** The frame of an expanded component or subgraph, behind its members' cards. */
function GroupFrame({ data }: NodeProps<Node<CardData>>) {
  const n = data.node!;
  return (
    <div className="group-frame" style={{ width: data.width, height: data.height }} data-testid={`group-${n.id}`}>
      <div className="group-title">
        <span>{n.kind} {n.title}</span>
        <button className="small nodrag" onClick={(e) => { e.stopPropagation(); data.toggle?.(); }} aria-label={`Collapse ${n.title}`}>▾ collapse</button>
      </div>
    </div>
  );
}

/** An edge along the route the layout gave it (between the cards of the ranks it crosses). */
function RoutedEdge({ sourceX, sourceY, targetX, targetY, data, markerEnd, style }: EdgeProps<FlowEdge<{ points?: Point[] }>>) {
  const points = [{ x: sourceX, y: sourceY }, ...(data?.points ?? []), { x: targetX, y: targetY }];
  let path = `M ${points[0].x} ${points[0].y}`;
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1], b = points[i];
    const mid = (a.x + b.x) / 2;
    path += ` C ${mid} ${a.y}, ${mid} ${b.y}, ${b.x} ${b.y}`;
  }
  return <BaseEdge path={path} markerEnd={markerEnd} style={style} />;
}

const TYPES = { node: NodeCard, store: StoreCard, doc: DocCardView, frame: GroupFrame };
const EDGE_TYPES = { routed: RoutedEdge };

export function Canvas({ app, graph, selected }: { app: string; graph: Graph | null; selected?: string }) {
  const [live, setLive] = useState<Live | null>(null);
  useEvents(graph ? `/apps/${enc(app)}/events` : null, { status: (d) => setLive(d as Live) });
  const [expanded, setExpanded] = useState<ReadonlySet<string>>(new Set());
  const toggle = (id: string) => setExpanded((now) => {
    const next = new Set(now);
    if (next.has(id)) next.delete(id); else next.add(id);
    return next;
  });
  const placed = useMemo(() => (graph ? layout(graph, expanded) : null), [graph, expanded]);
  // Each card's measured size, given back with every new card object: React Flow takes a
  // card it is given again (a status, a row count changed) as unmeasured and hides it until
  // it measures it again, which it sometimes never did (a blank canvas).
  const [sizes, setSizes] = useState<ReadonlyMap<string, { width: number; height: number }>>(new Map());
  const onNodesChange = useCallback((changes: NodeChange<Node<CardData>>[]) => {
    const measured = changes.flatMap((c) => (c.type === "dimensions" && c.dimensions ? [[c.id, c.dimensions] as const] : []));
    if (!measured.length) return;
    setSizes((now) => {
      const next = new Map(now);
      for (const [id, size] of measured) next.set(id, size);
      return next;
    });
  }, []);
  const nodes = useMemo<Node<CardData>[]>(() => {
    if (!graph || !placed) return [];
    const byId = new Map(graph.nodes.map((n) => [n.id, n]));
    const stores = new Map(graph.stores.map((s) => [s.name, s]));
    const docs = graph.docs;
    return placed.cards.map((c): Node<CardData> => ({ ...card(c), measured: sizes.get(c.id) }));
    function card(c: NonNullable<typeof placed>["cards"][number]): Node<CardData> {
      const position = { x: c.x, y: c.y };
      const key = c.id.slice(2);
      if (c.kind === "group") {
        const n = byId.get(key)!;
        return { id: c.id, type: "frame", position, zIndex: -1, selectable: false, focusable: false,
          data: { node: n, toggle: () => toggle(n.id), width: c.width, height: c.height }, ariaLabel: `${n.kind} ${n.title}, expanded` };
      }
      if (c.kind === "node") {
        const n = byId.get(key)!;
        return { id: c.id, type: "node", position,
          data: { app, node: n, status: live ? live.nodes[n.id] ?? null : n.status, selected: n.id === selected, toggle: () => toggle(n.id) },
          ariaLabel: `${n.kind} node ${n.title}` };
      }
      if (c.kind === "store") {
        const s = stores.get(key)!;
        return { id: c.id, type: "store", position, data: { store: s, rows: live ? live.stores[s.name] ?? null : s.rows }, ariaLabel: `table ${s.name}` };
      }
      const d = docs[Number(key)];
      return { id: c.id, type: "doc", position, data: { doc: d }, ariaLabel: `notes ${d.title ?? key}` };
    }
  }, [app, graph, placed, live, selected, sizes]);
  const edges = useMemo(() => placed?.edges.map((e) => ({ ...e, type: "routed", data: { points: e.points }, animated: false })) ?? [], [placed]);
  if (!graph) return <div className="canvas loading">Loading the graph…</div>;
  const open = (_: unknown, node: Node<CardData>) => {
    const base = `/apps/${enc(app)}`;
    if (node.type === "frame") return;
    if (node.data.node?.kind === "chart") navigate(`${base}/charts/${enc(node.data.node.id)}`);
    else if (node.data.node) navigate(`${base}/nodes/${enc(node.data.node.id)}`);
    else if (node.data.store) navigate(`${base}/tables/${enc(node.data.store.name)}`);
    else if (node.id.startsWith("d:")) navigate(`${base}/docs/${node.id.slice(2)}`);
  };
  // Cards are focusable (Tab); Enter opens the focused one, as a click does.
  const onKey = (e: KeyboardEvent) => {
    if (e.key !== "Enter") return;
    const id = (e.target as HTMLElement).closest(".react-flow__node")?.getAttribute("data-id");
    const card = nodes.find((n) => n.id === id);
    if (card) open(e, card);
  };
  return (
    <div className="canvas" aria-label="App graph" onKeyDown={onKey}>
      {/* (a new key when the panel opens or closes, or a group opens or closes: the view fits again) */}
      <ReactFlow key={`${selected ? "beside-panel" : "full"}:${[...expanded].join(",")}`} nodes={nodes} edges={edges} nodeTypes={TYPES} edgeTypes={EDGE_TYPES} onNodeClick={open} onNodesChange={onNodesChange} fitView
        nodesDraggable={false} nodesConnectable={false} minZoom={0.1}
        proOptions={{ hideAttribution: true }}>
        <Background />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}

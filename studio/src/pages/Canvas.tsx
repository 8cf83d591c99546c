import { useMemo, useState, type FormEvent, type KeyboardEvent } from "react";
import { Background, Controls, Handle, Position, ReactFlow, type Node, type NodeProps } from "@xyflow/react";
import { useEvents, navigate } from "../hooks";
import { layout } from "../layout";
import { renderMarkdown } from "../markdown";
import type { Graph, GraphNode, GraphStore, DocCard } from "../types";
import { enc, send } from "../api";
import { coerce } from "./NodePanel";
import { Status } from "../ui";

interface Live { nodes: Record<string, string>; stores: Record<string, number> }

type CardData = { app?: string; node?: GraphNode; store?: GraphStore; doc?: DocCard; status?: string | null; rows?: number | null; selected?: boolean };

/** The inputs and Run button of a form card (a node with `display: {style: form}`). */
function CardForm({ app, node }: { app: string; node: GraphNode }) {
  const [values, setValues] = useState<Record<string, string>>({});
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

const TYPES = { node: NodeCard, store: StoreCard, doc: DocCardView };

export function Canvas({ app, graph, selected }: { app: string; graph: Graph | null; selected?: string }) {
  const [live, setLive] = useState<Live | null>(null);
  useEvents(graph ? `/apps/${enc(app)}/events` : null, { status: (d) => setLive(d as Live) });
  const placed = useMemo(() => (graph ? layout(graph) : null), [graph]);
  const nodes = useMemo<Node<CardData>[]>(() => {
    if (!graph || !placed) return [];
    const at = Object.fromEntries(placed.cards.map((c) => [c.id, c]));
    return [
      ...graph.nodes.map((n) => ({
        id: `n:${n.id}`, type: "node", position: { x: at[`n:${n.id}`].x, y: at[`n:${n.id}`].y },
        data: { app, node: n, status: live ? live.nodes[n.id] ?? null : n.status, selected: n.id === selected },
        ariaLabel: `${n.kind} node ${n.title}`,
      })),
      ...graph.stores.map((s) => ({
        id: `s:${s.name}`, type: "store", position: { x: at[`s:${s.name}`].x, y: at[`s:${s.name}`].y },
        data: { store: s, rows: live ? live.stores[s.name] ?? null : s.rows }, ariaLabel: `table ${s.name}`,
      })),
      ...graph.docs.map((d, i) => ({
        id: `d:${i}`, type: "doc", position: { x: at[`d:${i}`].x, y: at[`d:${i}`].y }, data: { doc: d },
        ariaLabel: `notes ${d.title ?? i}`,
      })),
    ];
  }, [app, graph, placed, live, selected]);
  const edges = useMemo(() => placed?.edges.map((e) => ({ ...e, animated: false })) ?? [], [placed]);
  if (!graph) return <div className="canvas loading">Loading the graph…</div>;
  const open = (_: unknown, node: Node<CardData>) => {
    const base = `/apps/${enc(app)}`;
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
      {/* (a new key when the panel opens or closes: the view fits the canvas's new width) */}
      <ReactFlow key={selected ? "beside-panel" : "full"} nodes={nodes} edges={edges} nodeTypes={TYPES} onNodeClick={open} fitView
        nodesDraggable={false} nodesConnectable={false} minZoom={0.1}
        proOptions={{ hideAttribution: true }}>
        <Background />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}

import { useEffect, useMemo, useRef, useState } from "react";
import embed from "vega-embed";
import { loader as vegaLoader } from "vega";
import { expressionInterpreter } from "vega-interpreter";
import { enc } from "../api";
import { useApi } from "../hooks";
import { renderMarkdown } from "../markdown";
import type { Graph } from "../types";
import { ErrorBox, Link } from "../ui";

interface Chart { node: string; table: string | null; spec: Record<string, unknown> | null; rows: Record<string, unknown>[]; error: string | null }

// Charts get their rows from the API, never from URLs in the spec; expressions are
// interpreted (no eval), so the page's CSP needs no 'unsafe-eval' and a spec runs no script.
const noLoads = vegaLoader();
noLoads.load = async () => { throw new Error("charts cannot load data from URLs; they show their chart_input table"); };
noLoads.sanitize = async () => { throw new Error("charts cannot load URLs"); };

export function ChartBox({ app, node }: { app: string; node: string }) {
  const chart = useApi<Chart>(`/apps/${enc(app)}/charts/${enc(node)}`);
  const host = useRef<HTMLDivElement>(null);
  const [failed, setFailed] = useState<string | null>(null);
  useEffect(() => {
    const c = chart.data;
    if (!c || !c.spec || !host.current) return;
    setFailed(null);
    const spec = { ...c.spec, data: { values: c.rows } } as never;
    let result: { finalize: () => void } | null = null;
    embed(host.current, spec, { actions: false, ast: true, expr: expressionInterpreter, loader: noLoads, renderer: "svg" })
      .then((r) => { result = r; })
      .catch((e: unknown) => setFailed(`this chart's spec is not valid Vega-Lite: ${e instanceof Error ? e.message : String(e)}`));
    return () => result?.finalize();
  }, [chart.data]);
  return (
    <div className="chart" data-testid={`chart-${node}`}>
      <ErrorBox error={chart.error} />
      <ErrorBox error={chart.data?.error ?? failed} />
      {chart.data && !chart.data.table && <p className="muted">This chart has no chart_input table.</p>}
      <div ref={host} />
    </div>
  );
}

export function ChartView({ app, node }: { app: string; node: string }) {
  return (
    <section className="page">
      <h2>Chart {node}</h2>
      <ChartBox app={app} node={node} />
      <p><Link to={`/apps/${enc(app)}`}>Back to the graph</Link></p>
    </section>
  );
}

export function DocView({ graph, index }: { graph: Graph | null; index: number }) {
  const doc = graph?.docs[index];
  const html = useMemo(() => renderMarkdown(String(doc?.markdown ?? "")), [doc]);
  if (!graph) return null;
  if (!doc) return <div role="alert" className="error">No docs card {index} in this app.</div>;
  return (
    <section className="page doc-page">
      <h2>{doc.title ?? "Notes"}</h2>
      <article className="markdown" dangerouslySetInnerHTML={{ __html: html }} />
    </section>
  );
}

export function DashboardView({ app, graph, index }: { app: string; graph: Graph | null; index: number | null }) {
  if (!graph) return null;
  if (index === null) {
    return (
      <section className="page">
        <h2>Dashboards</h2>
        {graph.dashboards.length === 0 && <p>This app has no dashboards (add <code>dashboards:</code> to graph.yml).</p>}
        <ul>{graph.dashboards.map((d, i) => <li key={i}><Link to={`/apps/${enc(app)}/dashboards/${i}`}>{d.title ?? `Dashboard ${i + 1}`}</Link></li>)}</ul>
      </section>
    );
  }
  const board = graph.dashboards[index];
  if (!board) return <div role="alert" className="error">No dashboard {index} in this app.</div>;
  return (
    <section className="page">
      <h2>{board.title ?? `Dashboard ${index + 1}`}</h2>
      <div className="dashboard">
        {(board.items ?? []).map((item, i) => {
          const style = item.x !== undefined && item.y !== undefined
            ? { gridColumn: `${item.x + 1} / span ${item.w ?? item.width ?? 1}`, gridRow: `${item.y + 1} / span ${item.h ?? item.height ?? 1}` }
            : undefined;
          const node = item.node ? graph.nodes.find((n) => n.id === item.node || n.file === item.node || n.title === item.node) : undefined;
          let body;
          if (item.node && !node) body = <div role="alert" className="error">This item names node "{item.node}", which the app does not have.</div>;
          else if (node?.kind === "chart") body = <ChartBox app={app} node={node.id} />;
          else if (node) body = <Link to={`/apps/${enc(app)}/nodes/${enc(node.id)}`}>{node.title}</Link>;
          else if (item.table) body = <Link to={`/apps/${enc(app)}/tables/${enc(item.table)}`}>Table {item.table}</Link>;
          else body = <div className="muted">An item with neither node nor table.</div>;
          return <div key={i} className="dash-item" style={style}>{body}</div>;
        })}
      </div>
    </section>
  );
}

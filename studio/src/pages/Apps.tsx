import { useApi } from "../hooks";
import type { AppInfo, Graph } from "../types";
import { ErrorBox, Link } from "../ui";
import { enc } from "../api";
import { Canvas } from "./Canvas";
import { NodePanel } from "./NodePanel";
import { TableList, TableView } from "./Tables";
import { RunList, RunView } from "./Runs";
import { ChartView, DashboardView, DocView } from "../lazy";
import { Webhooks } from "./Admin";
import { FileList, FileView } from "./Files";

export function AppList() {
  const { data, error } = useApi<AppInfo[]>("/apps");
  return (
    <section className="page">
      <h1>Apps</h1>
      <ErrorBox error={error} />
      {data && data.length === 0 && <p>This server serves no app.</p>}
      <ul className="cards">
        {data?.map((a) => (
          <li key={a.slug} className="card">
            <Link to={`/apps/${enc(a.slug)}`}><strong>{a.title}</strong></Link>
            <div className="muted">{a.slug} · {a.nodes} node{a.nodes === 1 ? "" : "s"}</div>
            <div className="muted small">{a.root}</div>
          </li>
        ))}
      </ul>
    </section>
  );
}

const TABS: [string, string][] = [["", "Graph"], ["tables", "Tables"], ["runs", "Runs"], ["dashboards", "Dashboards"], ["webhooks", "Webhooks"], ["files", "Files"]];

export function AppShell({ app, rest, search }: { app: string; rest: string[]; search: URLSearchParams }) {
  const graph = useApi<Graph>(`/apps/${enc(app)}/graph`);
  const base = `/apps/${enc(app)}`;
  const [section, key] = rest;
  let body;
  if (!section || section === "nodes") {
    body = (
      <div className="split">
        <Canvas app={app} graph={graph.data} selected={section === "nodes" ? key : undefined} />
        {section === "nodes" && key && <NodePanel app={app} node={key} onSaved={graph.reload} />}
      </div>
    );
  } else if (section === "tables") body = key ? <TableView app={app} table={key} /> : <TableList app={app} />;
  else if (section === "runs") body = key ? <RunView app={app} run={key} /> : <RunList app={app} search={search} />;
  else if (section === "charts" && key) body = <ChartView app={app} node={key} />;
  else if (section === "docs" && key) body = <DocView graph={graph.data} index={Number(key)} />;
  else if (section === "dashboards") body = <DashboardView app={app} graph={graph.data} index={key ? Number(key) : null} />;
  else if (section === "webhooks") body = <Webhooks app={app} />;
  else if (section === "files") body = key ? <FileView key={rest.join("/")} app={app} path={rest.slice(1).join("/")} /> : <FileList app={app} />;
  else body = <div role="alert" className="error">No page {section} in this app.</div>;
  const active = section === "nodes" || section === "charts" || section === "docs" ? "" : section ?? "";
  return (
    <section className="app">
      <div className="app-head">
        <h1>{graph.data?.title ?? app}</h1>
        <nav aria-label="App" className="tabs">
          {TABS.map(([to, label]) => (
            <Link key={to} to={to ? `${base}/${to}` : base} className={active === to ? "tab active" : "tab"}>{label}</Link>
          ))}
        </nav>
      </div>
      <ErrorBox error={graph.error} />
      {graph.data && graph.data.problems.length > 0 && (
        <details className="problems" open>
          <summary>{graph.data.problems.length} problem(s) in the app's files (the server keeps serving the last valid version)</summary>
          <ul>{graph.data.problems.map((p, i) => <li key={i}>{p.file}{p.line ? `:${p.line}` : ""}: {p.message}{p.fix ? ` — ${p.fix}` : ""}</li>)}</ul>
        </details>
      )}
      {body}
    </section>
  );
}

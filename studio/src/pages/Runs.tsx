import { useState } from "react";
import { enc, send, ApiError } from "../api";
import { navigate, useApi } from "../hooks";
import type { Graph, LogLine, Run } from "../types";
import { ErrorBox, Link, Status, seconds, when, shortRunId } from "../ui";
import { LiveLog } from "./NodePanel";

const SINCE: [string, string][] = [["", "any time"], ["3600", "in the last hour"], ["86400", "in the last day"], ["604800", "in the last week"]];
const STATUSES = ["", "running", "succeeded", "failed", "timed_out", "cancelled"];

export function RunList({ app, search }: { app: string; search: URLSearchParams }) {
  const node = search.get("node") ?? "";
  const status = search.get("status") ?? "";
  const trigger = search.get("trigger") ?? "";
  const since = search.get("since") ?? "";
  const q = new URLSearchParams({ limit: "200" });
  if (node) q.set("node", node);
  if (status) q.set("status", status);
  const runs = useApi<Run[]>(`/apps/${enc(app)}/runs?${q}`);
  const graph = useApi<Graph>(`/apps/${enc(app)}/graph`);
  const set = (key: string, value: string) => {
    const next = new URLSearchParams(search);
    if (value) next.set(key, value); else next.delete(key);
    navigate(`/apps/${enc(app)}/runs${next.toString() ? `?${next}` : ""}`);
  };
  const cutoff = since ? Date.now() - Number(since) * 1000 : null;
  const shown = (runs.data ?? []).filter((r) => (!trigger || r.trigger === trigger) &&
    (cutoff === null || (r.queued_at !== null && Date.parse(r.queued_at) >= cutoff)));
  const triggers = [...new Set((runs.data ?? []).map((r) => r.trigger))];
  return (
    <section className="page">
      <h2>Runs</h2>
      <div className="filter" role="group" aria-label="Filter runs">
        <label>Node <select value={node} onChange={(e) => set("node", e.target.value)}>
          <option value="">all</option>
          {graph.data?.nodes.filter((n) => n.kind === "python" || n.kind === "sql").map((n) => <option key={n.id} value={n.id}>{n.title}</option>)}
        </select></label>
        <label>Status <select value={status} onChange={(e) => set("status", e.target.value)}>
          {STATUSES.map((s) => <option key={s} value={s}>{s || "all"}</option>)}</select></label>
        <label>Trigger <select value={trigger} onChange={(e) => set("trigger", e.target.value)}>
          <option value="">all</option>{triggers.map((t) => <option key={t} value={t}>{t}</option>)}</select></label>
        <label>Queued <select value={since} onChange={(e) => set("since", e.target.value)}>
          {SINCE.map(([v, l]) => <option key={v} value={v}>{l}</option>)}</select></label>
      </div>
      <ErrorBox error={runs.error} />
      {runs.data && shown.length === 0 && <p>No runs match.</p>}
      <table className="grid">
        <thead><tr><th>Run</th><th>Node</th><th>Status</th><th>Trigger</th><th>Queued</th><th>Time</th></tr></thead>
        <tbody>{shown.map((r) => (
          <tr key={r.id}>
            <td><Link to={`/apps/${enc(app)}/runs/${enc(r.id)}`}>{shortRunId(r.id)}</Link></td>
            <td>{r.node_title}</td><td><Status status={r.status} /></td><td>{r.trigger}</td><td>{when(r.queued_at)}</td><td>{seconds(r.seconds)}</td>
          </tr>))}</tbody>
      </table>
    </section>
  );
}

function Counts({ counts }: { counts: Record<string, number> }) {
  const entries = Object.entries(counts);
  if (!entries.length) return <>—</>;
  return <>{entries.map(([t, n]) => <span key={t} className="count">{t}: {n.toLocaleString()} </span>)}</>;
}

export function RunView({ app, run }: { app: string; run: string }) {
  const info = useApi<Run>(`/apps/${enc(app)}/runs/${enc(run)}`);
  const logs = useApi<{ lines: LogLine[] }>(info.data && info.data.status !== "running" ? `/apps/${enc(app)}/runs/${enc(run)}/logs` : null);
  const [error, setError] = useState<ApiError | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const r = info.data;
  const retry = async () => {
    try {
      await send(`/apps/${enc(app)}/nodes/${enc(r!.node_id)}/trigger`, "POST", { parameters: r!.parameters ?? {} });
      setNote("A new run is queued.");
    } catch (e) { setError(e as ApiError); }
  };
  const cancel = async () => {
    try {
      await send(`/apps/${enc(app)}/runs/${enc(run)}/cancel`, "POST");
      setNote("Cancelling…");
      info.reload();
    } catch (e) { setError(e as ApiError); }
  };
  return (
    <section className="page">
      <h2>Run {shortRunId(run)}</h2>
      <ErrorBox error={info.error} />
      {r && (
        <>
          <dl className="facts">
            <dt>Node</dt><dd><Link to={`/apps/${enc(app)}/nodes/${enc(r.node_id)}`}>{r.node_title}</Link></dd>
            <dt>Status</dt><dd><Status status={r.status} /></dd>
            <dt>Trigger</dt><dd>{r.trigger} (attempt {r.attempt})</dd>
            <dt>Queued</dt><dd>{when(r.queued_at)}</dd>
            <dt>Started</dt><dd>{when(r.started_at)}</dd>
            <dt>Ended</dt><dd>{when(r.ended_at)}</dd>
            <dt>Time</dt><dd>{seconds(r.seconds)}</dd>
            <dt>Rows read</dt><dd><Counts counts={r.rows_read} /></dd>
            <dt>Rows written</dt><dd><Counts counts={r.rows_written} /></dd>
          </dl>
          <div className="actions">
            <button onClick={retry}>Retry</button>
            <button onClick={cancel} disabled={r.status !== "running"}>Cancel</button>
          </div>
          {note && <p role="status" className="note">{note}</p>}
          <ErrorBox error={error} />
          {r.error && <div role="alert" className="error"><strong>Error:</strong> {r.error}</div>}
          {r.traceback && <details open><summary>Traceback</summary><pre className="log">{r.traceback}</pre></details>}
          <h3>Log</h3>
          {r.status === "running"
            ? <LiveLog app={app} run={run} onEnd={info.reload} />
            : <pre className="log" aria-label="Run log">{logs.data?.lines.map((l, i) => <div key={i} className={`log-${l.stream}`}>{l.text}</div>)}</pre>}
        </>
      )}
    </section>
  );
}

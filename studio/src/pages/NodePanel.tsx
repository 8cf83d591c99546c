import { useEffect, useRef, useState, type FormEvent } from "react";
import { api, ApiError, enc, send } from "../api";
import { useApi } from "../hooks";
import type { LogLine, NodeInfo, Problem, Run } from "../types";
import { ErrorBox, Link, Status, seconds, when, shortRunId } from "../ui";
import { CodeEditor } from "../lazy";
import { Streams } from "./Streams";

interface Source { file: string; language: string; text: string; version?: string }
interface Save { saved: boolean; problems: Problem[]; version?: string | null }

/** A save refused because the file changed on disk since it was opened: reload it (the edit
 * is dropped) or save again over it. */
export function Conflict({ error, onReload, onOverwrite }: { error: ApiError | null; onReload: () => void; onOverwrite: () => void }) {
  if (!error || error.status !== 409) return null;
  return (
    <div role="alert" className="error">
      {error.message}{" "}
      <button onClick={onReload}>Reload from disk</button>{" "}
      <button onClick={onOverwrite}>Save mine over it</button>
    </div>
  );
}

/** Follows one run's output over server-sent events until it ends. */
export function LiveLog({ app, run, onEnd }: { app: string; run: string | null; onEnd?: () => void }) {
  const [lines, setLines] = useState<LogLine[]>([]);
  const [ended, setEnded] = useState<string | null>(null);
  const end = useRef(onEnd);
  end.current = onEnd;
  useEffect(() => {
    setLines([]);
    setEnded(null);
    if (!run) return;
    const source = new EventSource(`/api/v1/apps/${enc(app)}/runs/${enc(run)}/logs/stream`, { withCredentials: true });
    source.addEventListener("line", (e) => setLines((l) => [...l, JSON.parse((e as MessageEvent).data) as LogLine]));
    source.addEventListener("end", (e) => {
      setEnded((JSON.parse((e as MessageEvent).data) as { status: string }).status);
      source.close();
      end.current?.();
    });
    return () => source.close();
  }, [app, run]);
  if (!run) return <p className="muted">No run yet.</p>;
  return (
    <div>
      <pre className="log" aria-label="Run log" aria-live="polite">
        {lines.map((l, i) => <div key={i} className={`log-${l.stream}`}>{l.text}</div>)}
      </pre>
      <div className="muted">{ended ? <>run ended: <Status status={ended} /></> : "following the run…"}</div>
    </div>
  );
}

export function NodePanel({ app, node, onSaved }: { app: string; node: string; onSaved: () => void }) {
  const base = `/apps/${enc(app)}/nodes/${enc(node)}`;
  const info = useApi<NodeInfo>(base);
  const runs = useApi<Run[]>(`/apps/${enc(app)}/runs?node=${enc(node)}&limit=10`);
  const hasFile = info.data ? info.data.file !== null && info.data.kind !== "webhook" : false;
  const source = useApi<Source>(hasFile ? `${base}/source` : null);
  const [draft, setDraft] = useState<string | null>(null);
  const [problems, setProblems] = useState<Problem[]>([]);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [params, setParams] = useState<Record<string, string>>({});
  const [following, setFollowing] = useState<string | null>(null);

  useEffect(() => { setDraft(null); setProblems([]); setMessage(null); setFollowing(null); setParams({}); }, [node]);
  useEffect(() => {
    if (following === null && runs.data && runs.data[0]) setFollowing(runs.data[0].id);
  }, [runs.data, following]);

  const [opened, setOpened] = useState<string | null>(null); // the version the edit began from
  useEffect(() => { setOpened(source.data?.version ?? null); }, [source.data]);
  const save = async (overwrite = false) => {
    if (!source.data || draft === null) return;
    setError(null);
    try {
      const result = await send<Save>(`${base}/source`, "PUT", overwrite || !opened ? { text: draft } : { text: draft, base: opened });
      if (result.saved && result.version) setOpened(result.version);
      setProblems(result.problems.filter((p) => p.file === source.data!.file || p.node === info.data?.id));
      setMessage(result.saved ? "Saved." : `Not saved: ${result.problems.length} problem(s). The server keeps the previous file.`);
      if (result.saved) onSaved();
      if (result.saved) info.reload();
    } catch (e) {
      setError(e as ApiError);
    }
  };

  const run = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    const before = new Set((runs.data ?? []).map((r) => r.id));
    const parameters: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(params)) if (v !== "") parameters[k] = coerce(v, info.data?.parameters.find((p) => p.name === k)?.type);
    try {
      await send(`${base}/trigger`, "POST", { parameters });
      setMessage("Run queued.");
      const deadline = Date.now() + 30000;
      while (Date.now() < deadline) {
        const latest = await api<Run[]>(`/apps/${enc(app)}/runs?node=${enc(node)}&limit=10`);
        const fresh = latest.find((r) => !before.has(r.id));
        if (fresh) { setFollowing(fresh.id); runs.reload(); break; }
        await new Promise((r) => setTimeout(r, 250));
      }
    } catch (err) {
      setError(err as ApiError);
    }
  };

  const n = info.data;
  return (
    <aside className="panel" aria-label="Node panel">
      <ErrorBox error={info.error} />
      {n && (
        <>
          <div className="panel-head">
            <h2>{n.title}</h2>
            <Link to={`/apps/${enc(app)}`} label="Close the node panel" className="close">×</Link>
          </div>
          <p className="muted">{n.kind} · {n.file ?? "no file"} · trigger {n.trigger ?? "on new rows"} · last run <Status status={n.last_run?.status} /></p>
          {(n.needs_configuration?.length ?? 0) > 0 && (
            <>
              <h3>Needs configuration</h3>
              <p className="muted">This node does not run until these are given; the rest of the app runs.</p>
              <ul className="problem-list" aria-label="Needs configuration">
                {n.needs_configuration!.map((p, i) => (
                  <li key={i}>{p.file}{p.line ? `:${p.line}` : ""}: {p.message}{p.fix ? ` — ${p.fix}` : ""}</li>
                ))}
              </ul>
            </>
          )}
          <h3>Interface</h3>
          <ul className="iface">
            <li>reads: {n.reads.length ? n.reads.map((t) => <Link key={t} to={`/apps/${enc(app)}/tables/${enc(t)}`}>{t} </Link>) : "—"}</li>
            <li>writes: {n.writes.length ? n.writes.map((t) => <Link key={t} to={`/apps/${enc(app)}/tables/${enc(t)}`}>{t} </Link>) : "—"}</li>
          </ul>
          {(n.kind === "python" || n.kind === "sql") && (
            <form className="run-form" onSubmit={run} aria-label="Run the node">
              {n.parameters.map((p) => (
                <label key={p.name}>{p.name} <span className="muted">({p.type ?? "str"}{p.default != null ? `, default ${JSON.stringify(p.default)}` : ""})</span>
                  <input name={p.name} value={params[p.name] ?? ""} placeholder={p.default != null ? String(p.default) : ""}
                    onChange={(e) => setParams({ ...params, [p.name]: e.target.value })} />
                </label>
              ))}
              <button type="submit">Run</button>
            </form>
          )}
          {message && <p role="status" className="note">{message}</p>}
          <ErrorBox error={error?.status === 409 ? null : error} />
          {hasFile && (
            <>
              <h3>Code <span className="muted">{source.data?.file}</span></h3>
              <ErrorBox error={source.error} />
              {source.data && (
                <CodeEditor text={source.data.text} language={source.data.language} problems={problems} onChange={setDraft} />
              )}
              {problems.length > 0 && (
                <ul className="problem-list" aria-label="Problems">
                  {problems.map((p, i) => <li key={i}>line {p.line ?? "?"}: {p.message}{p.fix ? ` — ${p.fix}` : ""}</li>)}
                </ul>
              )}
              <button onClick={() => save()} disabled={draft === null}>Save</button>
              <Conflict error={error} onReload={() => { setError(null); setDraft(null); setProblems([]); setMessage(null); source.reload(); }}
                onOverwrite={() => save(true)} />
            </>
          )}
          {(n.kind === "python" || n.kind === "sql") && <StateAndStreams app={app} node={n} />}
          <h3>Log</h3>
          <LiveLog app={app} run={following} onEnd={() => { runs.reload(); info.reload(); }} />
          <h3>Runs</h3>
          <ErrorBox error={runs.error} />
          <table className="grid">
            <thead><tr><th>Run</th><th>Status</th><th>Trigger</th><th>Queued</th><th>Time</th></tr></thead>
            <tbody>
              {runs.data?.map((r) => (
                <tr key={r.id}>
                  <td><Link to={`/apps/${enc(app)}/runs/${enc(r.id)}`}>{shortRunId(r.id)}</Link></td>
                  <td><Status status={r.status} /></td><td>{r.trigger}</td><td>{when(r.queued_at)}</td><td>{seconds(r.seconds)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </aside>
  );
}

export function coerce(value: string, type: string | null | undefined): unknown {
  if (type === "int" || type === "float") return Number(value);
  if (type === "bool") return value === "true" || value === "1" || value === "yes";
  if (type === "list") { try { return JSON.parse(value); } catch { return value.split(",").map((s) => s.trim()); } }
  return value;
}

/** The node's state (view, reset) and its streams (how far each is; reset). */
function StateAndStreams({ app, node }: { app: string; node: NodeInfo }) {
  const base = `/apps/${enc(app)}/nodes/${enc(node.id)}`;
  const state = useApi<Record<string, unknown>>(`${base}/state`);
  const [note, setNote] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const act = async (path: string, method: string, question: string, done: string) => {
    if (!window.confirm(question)) return;
    setError(null);
    try {
      await send(path, method);
      setNote(done);
      state.reload();
    } catch (e) {
      setError(e as ApiError);
    }
  };
  const empty = state.data !== null && Object.keys(state.data).length === 0;
  return (
    <>
      <h3>State</h3>
      <ErrorBox error={state.error ?? error} />
      {state.data && (empty ? <p className="muted">No state kept.</p>
        : <pre className="state" aria-label="Node state">{JSON.stringify(state.data, null, 2)}</pre>)}
      <div className="actions">
        <button disabled={empty} onClick={() => act(`${base}/state`, "DELETE",
          `Clear the state of ${node.title}? Its next run starts without it.`, "State cleared.")}>Reset state</button>
      </div>
      {note && <p role="status" className="note">{note}</p>}
      {node.reads.length > 0 && <>
        <h3>Streams</h3>
        <Streams app={app} node={node.id} label="Streams" />
      </>}
    </>
  );
}

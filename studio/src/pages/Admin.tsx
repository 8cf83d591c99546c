import { useState, type FormEvent } from "react";
import { ApiError, enc, send } from "../api";
import { useApi } from "../hooks";
import type { Webhook } from "../types";
import { ErrorBox } from "../ui";

export function Secrets() {
  const names = useApi<{ names: string[] }>("/secrets");
  const [name, setName] = useState("");
  const [value, setValue] = useState("");
  const [error, setError] = useState<ApiError | null>(null);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      await send(`/secrets/${enc(name)}`, "PUT", { value });
      setName(""); setValue("");
      names.reload();
    } catch (err) { setError(err as ApiError); }
  };
  const remove = async (secret: string) => {
    if (!window.confirm(`Delete the secret ${secret}? Nodes using it will fail until it is set again.`)) return;
    try { await send(`/secrets/${enc(secret)}`, "DELETE"); names.reload(); } catch (err) { setError(err as ApiError); }
  };
  return (
    <section className="page">
      <h1>Secrets</h1>
      <p className="muted">Names only: values never leave the server. Nodes use them as <code>{"${{ name }}"}</code> in parameter_values.</p>
      <ErrorBox error={names.error ?? error} />
      <ul className="secrets">{names.data?.names.map((n) => (
        <li key={n}><code>{n}</code> <button onClick={() => remove(n)} aria-label={`Delete secret ${n}`}>Delete</button></li>))}</ul>
      {names.data && names.data.names.length === 0 && <p>No secrets yet.</p>}
      <form onSubmit={create} aria-label="New secret" className="filter">
        <label>Name <input value={name} onChange={(e) => setName(e.target.value)} required /></label>
        <label>Value <input type="password" value={value} onChange={(e) => setValue(e.target.value)} autoComplete="off" required /></label>
        <button type="submit">Create</button>
      </form>
    </section>
  );
}

export function Webhooks({ app }: { app: string }) {
  const hooks = useApi<Webhook[]>(`/apps/${enc(app)}/webhooks`);
  const [copied, setCopied] = useState<string | null>(null);
  const copy = async (text: string) => {
    try { await navigator.clipboard.writeText(text); setCopied(text); } catch { setCopied(null); }
  };
  return (
    <section className="page">
      <h2>Webhooks</h2>
      <ErrorBox error={hooks.error} />
      {hooks.data && hooks.data.length === 0 && <p>This app has no webhooks (add <code>- webhook: TABLE</code> to its functions).</p>}
      {hooks.data?.map((h) => {
        const url = `${window.location.origin}${h.path}`;
        const curl = `curl -X POST ${url} -H 'Content-Type: application/json' -d '{"hello": "world"}'`;
        return (
          <div key={h.node_id} className="card webhook">
            <h3>{h.table}{h.respond ? " (responds)" : ""}</h3>
            <div className="copy-row"><code data-testid="webhook-url">{url}</code> <button onClick={() => copy(url)} aria-label={`Copy the URL of webhook ${h.table}`}>Copy</button></div>
            <div className="copy-row"><code>{curl}</code> <button onClick={() => copy(curl)} aria-label={`Copy a curl line for webhook ${h.table}`}>Copy curl</button></div>
            {copied && (copied === url || copied === curl) && <span role="status">Copied.</span>}
          </div>
        );
      })}
    </section>
  );
}

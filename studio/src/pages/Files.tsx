import { useEffect, useState, type FormEvent } from "react";
import { ApiError, enc, send } from "../api";
import { navigate, useApi } from "../hooks";
import type { Problem } from "../types";
import { ErrorBox, Link } from "../ui";
import { CodeEditor } from "../lazy";
import { Conflict } from "./NodePanel";

interface Source { file: string; language: string; text: string; version?: string }

const languageOf = (path: string) =>
  path.endsWith(".py") ? "python" : path.endsWith(".sql") ? "sql" : path.endsWith(".json") ? "json"
    : /\.ya?ml$/.test(path) ? "yaml" : "text";

/** The app's files; "New file" makes a shared module (or any text file) that belongs to no node. */
export function FileList({ app }: { app: string }) {
  const files = useApi<string[]>(`/apps/${enc(app)}/files`);
  const [path, setPath] = useState("");
  const create = (e: FormEvent) => {
    e.preventDefault();
    navigate(`/apps/${enc(app)}/files/${path.split("/").map(enc).join("/")}`);
  };
  return (
    <section className="page">
      <h2>Files</h2>
      <ErrorBox error={files.error} />
      <ul>{files.data?.map((f) => <li key={f}><Link to={`/apps/${enc(app)}/files/${f.split("/").map(enc).join("/")}`}>{f}</Link></li>)}</ul>
      <form className="filter" onSubmit={create} aria-label="New file">
        <label>New file <input value={path} onChange={(e) => setPath(e.target.value)} placeholder="lib/helpers.py" required /></label>
        <button type="submit">Create</button>
      </form>
    </section>
  );
}

export function FileView({ app, path }: { app: string; path: string }) {
  const url = `/apps/${enc(app)}/files/${path.split("/").map(enc).join("/")}`;
  const file = useApi<Source>(url);
  const isNew = file.error?.status === 404;
  const [draft, setDraft] = useState<string | null>(null);
  const [problems, setProblems] = useState<Problem[]>([]);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [opened, setOpened] = useState<string | null>(null); // the version the edit began from
  useEffect(() => { setOpened(file.data?.version ?? null); }, [file.data]);
  const save = async (overwrite = false) => {
    setError(null);
    try {
      const text = draft ?? file.data?.text ?? "";
      const result = await send<{ saved: boolean; problems: Problem[]; version?: string | null }>(url, "PUT", overwrite || !opened ? { text } : { text, base: opened });
      if (result.saved && result.version) setOpened(result.version);
      setProblems(result.problems.filter((p) => p.file === path || p.file.endsWith(`/${path}`)));
      setMessage(result.saved ? "Saved." : `Not saved: ${result.problems.map((p) => `${p.file}${p.line ? `:${p.line}` : ""}: ${p.message}`).join("; ")}`);
    } catch (e) {
      setError(e as ApiError);
    }
  };
  return (
    <section className="page">
      <h2>{path}{isNew && <span className="muted"> (new file)</span>}</h2>
      {!isNew && <ErrorBox error={file.error} />}
      {(file.data || isNew) && (
        <CodeEditor text={file.data?.text ?? ""} language={file.data?.language ?? languageOf(path)} problems={problems} onChange={setDraft} />
      )}
      <button onClick={() => save()} disabled={draft === null}>Save</button>
      {message && <p role="status" className="note">{message}</p>}
      {error?.status === 409
        ? <Conflict error={error} onReload={() => { setError(null); setDraft(null); setProblems([]); setMessage(null); file.reload(); }} onOverwrite={() => save(true)} />
        : <ErrorBox error={error} />}
    </section>
  );
}

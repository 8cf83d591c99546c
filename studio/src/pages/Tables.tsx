import { useEffect, useReducer, useState, type FormEvent } from "react";
import { enc } from "../api";
import { useApi } from "../hooks";
import { initialPaging, pageNumber, pageQuery, paging } from "../paging";
import type { Graph, Page, TableInfo } from "../types";
import { ErrorBox, Link, when, shortRunId } from "../ui";
import { Streams } from "./Streams";
import { cell } from "../cells";

const LIMIT = 50;
/** Past this many columns the table says how to get around it. */
const WIDE = 40;
const OPS: [string, string][] = [["contains", "contains"], ["eq", "="], ["ne", "≠"], ["gt", ">"], ["gte", "≥"], ["lt", "<"], ["lte", "≤"], ["null", "is empty"], ["notnull", "is not empty"]];

export function TableList({ app }: { app: string }) {
  const { data, error } = useApi<TableInfo[]>(`/apps/${enc(app)}/tables`);
  return (
    <section className="page">
      <h2>Tables</h2>
      <ErrorBox error={error} />
      {data && data.length === 0 && <p>No table has rows yet.</p>}
      <table className="grid">
        <thead><tr><th>Table</th><th>Rows</th><th>Columns</th><th>Version</th></tr></thead>
        <tbody>{data?.map((t) => (
          <tr key={t.name}><td><Link to={`/apps/${enc(app)}/tables/${enc(t.name)}`}>{t.name}</Link></td>
            <td>{t.rows.toLocaleString()}</td><td>{t.columns.length}</td><td>{t.version}</td></tr>
        ))}</tbody>
      </table>
    </section>
  );
}


export function TableView({ app, table }: { app: string; table: string }) {
  const base = `/apps/${enc(app)}/tables/${enc(table)}`;
  const info = useApi<TableInfo>(base);
  const [state, dispatch] = useReducer(paging, initialPaging);
  const [shown, setShown] = useState<Version | null>(null);
  const page = useApi<Page>(`${base}/page?${pageQuery(state, LIMIT)}${shown ? `&version=${shown.version}` : ""}`);
  const showVersion = (v: Version | null) => {
    setShown(v);
    dispatch({ type: "filter", filter: state.filter }); // (back to the first page)
  };
  useEffect(() => { if (page.data) dispatch({ type: "loaded", next: page.data.next }); }, [page.data]);
  const [column, setColumn] = useState("");
  const [op, setOp] = useState("contains");
  const [value, setValue] = useState("");
  const columns = page.data?.rows[0] ? Object.keys(page.data.rows[0]) : info.data?.columns.map((c) => c.name) ?? [];
  const filter = (e: FormEvent) => {
    e.preventDefault();
    dispatch({ type: "filter", filter: column ? { column, op, value } : null });
  };
  return (
    <section className="page">
      <h2>Table {table}</h2>
      <ErrorBox error={info.error} />
      {info.data && (
        <p className="muted">{info.data.rows.toLocaleString()} rows · version {info.data.version} · {info.data.columns.length} columns ·
          download <a href={`/api/v1${base}/download?format=csv`} download>CSV</a> · <a href={`/api/v1${base}/download?format=jsonl`} download>JSONL</a> · <a href={`/api/v1${base}/download?format=parquet`} download>Parquet</a></p>
      )}
      {info.data && (
        <details>
          <summary>Schema</summary>
          <table className="grid schema"><tbody>{info.data.columns.map((c) => <tr key={c.name}><td>{c.name}</td><td>{c.type}</td></tr>)}</tbody></table>
        </details>
      )}
      <Neighbours app={app} table={table} />
      <h3>Streams</h3>
      <Streams app={app} table={table} label="Streams consuming this table" />
      <Versions path={`${base}/versions`} current={info.data?.version ?? null} onShow={showVersion} />
      {shown && (
        <p role="status" className="note">Showing version {shown.version} (began {when(shown.created_at)}
          {shown.reason ? `, ${shown.reason}` : ""}{shown.run_id ? ` by run ${shortRunId(shown.run_id)}` : ""}), not the current one.{" "}
          <button onClick={() => showVersion(null)}>Back to the current version</button></p>
      )}
      <form className="filter" onSubmit={filter} aria-label="Filter rows">
        <label>Column <select value={column} onChange={(e) => setColumn(e.target.value)}>
          <option value="">(no filter)</option>
          {info.data?.columns.map((c) => <option key={c.name} value={c.name}>{c.name}</option>)}
        </select></label>
        <label>Test <select value={op} onChange={(e) => setOp(e.target.value)}>{OPS.map(([k, l]) => <option key={k} value={k}>{l}</option>)}</select></label>
        <label>Value <input value={value} onChange={(e) => setValue(e.target.value)} /></label>
        <button type="submit">Filter</button>
      </form>
      <ErrorBox error={page.error} />
      {info.data && info.data.columns.length > WIDE && (
        <p role="note" className="note">{info.data.columns.length} columns: the rows scroll sideways in their box (Shift + wheel), the schema above lists them all, and a click on a column's name sorts on it.</p>
      )}
      <div className="pager" aria-label="Pages">
        <button onClick={() => dispatch({ type: "previous" })} disabled={pageNumber(state) === 1}>Previous</button>
        <span>Page {pageNumber(state)}{page.data ? ` · ${page.data.rows.length} rows shown` : ""}</span>
        <button onClick={() => dispatch({ type: "next" })} disabled={!state.next}>Next</button>
      </div>
      <div className="table-scroll">
        <table className="grid rows" aria-label={`Rows of ${table}`}>
          <thead><tr>{columns.map((c) => (
            <th key={c} aria-sort={state.sort?.column === c ? (state.sort.descending ? "descending" : "ascending") : "none"}>
              <button className="sort" onClick={() => dispatch({ type: "sort", column: c })}>
                {c}{state.sort?.column === c ? (state.sort.descending ? " ▼" : " ▲") : ""}
              </button>
            </th>))}</tr></thead>
          <tbody>{page.data?.rows.map((r, i) => <tr key={i}>{columns.map((c) => <td key={c}>{cell(r[c])}</td>)}</tr>)}</tbody>
        </table>
      </div>
    </section>
  );
}

interface Version { version: number; created_at: string | null; run_id: string | null; reason: string | null; readable: boolean }

function Versions({ path, current, onShow }: { path: string; current: number | null; onShow: (v: Version | null) => void }) {
  const [open, setOpen] = useState(false);
  const versions = useApi<Version[]>(open ? path : null);
  return (
    <details onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
      <summary>Versions</summary>
      <ErrorBox error={versions.error} />
      <table className="grid" aria-label="Versions">
        <thead><tr><th>Version</th><th>Began</th><th>Why</th><th>By run</th><th>Rows</th></tr></thead>
        <tbody>{versions.data?.map((v) => (
          <tr key={v.version}><td>{v.version}</td><td>{v.created_at ? new Date(v.created_at).toLocaleString() : "—"}</td>
            <td>{v.reason ?? "—"}</td><td>{v.run_id ? shortRunId(v.run_id) : "—"}</td>
            <td>{v.version === current ? <button onClick={() => onShow(null)} aria-label={`Show rows of version ${v.version} (current)`}>Show rows</button>
              : v.readable ? <button onClick={() => onShow(v)} aria-label={`Show rows of version ${v.version}`}>Show rows</button>
                : "dropped"}</td></tr>
        ))}</tbody>
      </table>
    </details>
  );
}

/** Which nodes write the table and which read it (streams among them). */
function Neighbours({ app, table }: { app: string; table: string }) {
  const graph = useApi<Graph>(`/apps/${enc(app)}/graph`);
  if (!graph.data) return null;
  const link = (id: string, title: string) => <Link key={id} to={`/apps/${enc(app)}/nodes/${enc(id)}`}>{title}</Link>;
  const writers = graph.data.nodes.filter((n) => n.writes.includes(table));
  const readers = graph.data.nodes.filter((n) => n.reads.includes(table));
  const list = (nodes: typeof writers) => nodes.length ? nodes.map((n, i) => <span key={n.id}>{i > 0 && ", "}{link(n.id, n.title)}</span>) : "—";
  return <p className="muted" aria-label="Writers and readers">written by {list(writers)} · read by {list(readers)}</p>;
}

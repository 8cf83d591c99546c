import { useState } from "react";
import { ApiError, enc, send } from "../api";
import { useApi } from "../hooks";
import { ErrorBox, Link } from "../ui";
import { lagText, type StreamLag } from "../cells";


/** The streams of a node (`node`) or over a table (`table`), each with its lag and a reset. */
export function Streams({ app, node, table, label }: { app: string; node?: string; table?: string; label: string }) {
  const query = new URLSearchParams(node ? { node } : { table: table ?? "" }).toString();
  const streams = useApi<StreamLag[]>(`/apps/${enc(app)}/streams?${query}`);
  const [note, setNote] = useState<string | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const reset = async (s: StreamLag) => {
    if (!window.confirm(`Make ${s.node_title} read ${s.table} from the start again at its next run?`)) return;
    setError(null);
    try {
      await send(`/apps/${enc(app)}/nodes/${enc(s.node)}/streams/${enc(s.table)}/reset`, "POST");
      setNote(`The stream of ${s.node_title} on ${s.table} starts over.`);
      streams.reload();
    } catch (e) {
      setError(e as ApiError);
    }
  };
  return (
    <div>
      <ErrorBox error={streams.error ?? error} />
      {streams.data && streams.data.length === 0 && <p className="muted">No node reads it.</p>}
      {streams.data && streams.data.length > 0 && (
        <table className="grid" aria-label={label}>
          <thead><tr><th>{node ? "Table" : "Node"}</th><th>How far</th><th>Order</th><th></th></tr></thead>
          <tbody>{streams.data.map((s) => (
            <tr key={`${s.node}/${s.table}`}>
              <td>{node ? <Link to={`/apps/${enc(app)}/tables/${enc(s.table)}`}>{s.table}</Link>
                : <Link to={`/apps/${enc(app)}/nodes/${enc(s.node)}`}>{s.node_title}</Link>}</td>
              <td>{lagText(s)}{s.rows !== null && <span className="muted"> · of {s.rows.toLocaleString()}</span>}</td>
              <td>{s.order_by ?? "commit order"}</td>
              <td><button onClick={() => reset(s)} aria-label={`Reset the stream of ${s.node_title} on ${s.table}`}>Reset stream</button></td>
            </tr>))}
          </tbody>
        </table>
      )}
      <button className="link" onClick={streams.reload}>Refresh</button>
      {note && <p role="status" className="note">{note}</p>}
    </div>
  );
}

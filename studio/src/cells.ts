// What a table page and a stream list show in words: a cell's text, a stream's lag.

/** How the server marks a cell it cut (patterns/server/table_pages.py). */
const CUT = /… \(cut: ([\d,]+) characters in all; download the table for the whole value\)$/;

/** A cell's text: its first 200 characters, and, when the server cut a huge value, how long
 * the whole is (the download has it). */
export function cell(value: unknown): string {
  if (value === null || value === undefined) return "";
  const text = typeof value === "object" ? JSON.stringify(value) : String(value);
  const cut = CUT.exec(text);
  if (cut) return `${text.slice(0, Math.min(200, cut.index))}… (${cut[1]} characters in all: download the table for the whole value)`;
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

export interface StreamLag {
  node: string; node_title: string; table: string; behind: number | null; rows: number | null;
  started: boolean; on_version: number | null; order_by: string | null;
}

/** How far a stream is, in words: "12 rows behind", "up to date", "not started". */
export function lagText(s: StreamLag): string {
  if (s.behind === null) return "no rows to read yet";
  const rows = `${s.behind.toLocaleString()} ${s.behind === 1 ? "row" : "rows"} behind`;
  if (!s.started) return `not started (${rows})`;
  return s.behind === 0 ? "up to date (0 rows behind)" : rows;
}

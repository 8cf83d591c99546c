export interface AppInfo { slug: string; title: string; root: string; nodes: number }
export interface Problem { file: string; line: number | null; message: string; fix: string | null; node: string | null }
export interface Display { x?: number; y?: number; style?: string; [k: string]: unknown }
export interface GraphNode {
  id: string; kind: string; title: string; file: string | null; trigger: string | null;
  reads: string[]; writes: string[]; display: Display | null; chart_input: string | null;
  status: string | null; problems: Problem[]; parameters: Parameter[];
  /** What the node needs before it runs (a parameter value, a secret, a storage's connection). */
  needs_configuration?: Problem[];
  /** The component or subgraph node it runs inside (null: top level). */
  parent?: string | null;
  /** A component or subgraph node's member nodes. */
  members?: string[];
}
export interface GraphStore { name: string; id: string | null; display: Display | null; rows: number | null }
export interface DocCard { title?: string; markdown?: string; display?: Display; [k: string]: unknown }
export interface DashboardItem { node?: string; table?: string; x?: number; y?: number; w?: number; h?: number; width?: number; height?: number }
export interface Dashboard { title?: string; items?: DashboardItem[] }
export interface Graph {
  slug: string; title: string; nodes: GraphNode[]; stores: GraphStore[];
  docs: DocCard[]; dashboards: Dashboard[]; problems: Problem[];
}
export interface Run {
  id: string; node_id: string; node_title: string; trigger: string; status: string; attempt: number;
  queued_at: string | null; started_at: string | null; ended_at: string | null; seconds: number | null;
  rows_read: Record<string, number>; rows_written: Record<string, number>;
  error: string | null; traceback: string | null; parameters: Record<string, unknown> | null;
}
export interface Parameter { name: string; type: string | null; default: unknown; description: string | null }
export interface NodeInfo {
  id: string; kind: string; title: string; file: string | null; trigger: string | null;
  reads: string[]; writes: string[]; parameters: Parameter[]; last_run: Run | null;
  needs_configuration?: Omit<Problem, "node">[];
}
export interface LogLine { time: string; stream: string; text: string; level?: string | null }
export interface Column { name: string; type: string }
export interface TableInfo { name: string; version: number; rows: number; columns: Column[] }
export interface Page { table: string; version: number; total: number; rows: Record<string, unknown>[]; next: string | null }
export interface Webhook { node_id: string; table: string; path: string; respond: boolean }

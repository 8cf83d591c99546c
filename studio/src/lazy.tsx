// The heavy parts (vega for charts, CodeMirror for code) load when a page first needs them,
// so the canvas — the first page of an app — does not wait for them (issue 12: first load).
import { lazy, Suspense, type ComponentProps, type ComponentType } from "react";

function later<P extends object>(load: () => Promise<ComponentType<P>>, what: string) {
  const Inner = lazy(async () => ({ default: await load() }));
  return function Later(props: P) {
    return (
      <Suspense fallback={<p className="muted" role="status">Loading {what}…</p>}>
        <Inner {...props} />
      </Suspense>
    );
  };
}

type Editor = typeof import("./pages/CodeEditor").CodeEditor;
type Charts = typeof import("./pages/Charts");

export const CodeEditor = later<ComponentProps<Editor>>(() => import("./pages/CodeEditor").then((m) => m.CodeEditor), "the editor");
export const ChartView = later<ComponentProps<Charts["ChartView"]>>(() => import("./pages/Charts").then((m) => m.ChartView), "the chart");
export const DashboardView = later<ComponentProps<Charts["DashboardView"]>>(() => import("./pages/Charts").then((m) => m.DashboardView), "the dashboard");
export const DocView = later<ComponentProps<Charts["DocView"]>>(() => import("./pages/Charts").then((m) => m.DocView), "the page");

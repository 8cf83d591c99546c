import { useEffect, useRef } from "react";
import { EditorView, basicSetup } from "codemirror";
import { python } from "@codemirror/lang-python";
import { sql } from "@codemirror/lang-sql";
import { json } from "@codemirror/lang-json";
import { yaml } from "@codemirror/lang-yaml";
import { lintGutter, setDiagnostics, type Diagnostic } from "@codemirror/lint";
import { EditorState } from "@codemirror/state";
import type { Problem } from "../types";

/** CodeMirror 6 holding a node's file; `problems` are drawn at their lines. */
export function CodeEditor({ text, language, problems, onChange }: {
  text: string; language: string; problems: Problem[]; onChange: (text: string) => void;
}) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const changed = useRef(onChange);
  changed.current = onChange;

  useEffect(() => {
    const lang = { python: [python()], sql: [sql()], json: [json()], yaml: [yaml()] }[language] ?? [];
    const editor = new EditorView({
      parent: host.current!,
      state: EditorState.create({
        doc: text,
        extensions: [basicSetup, ...lang, lintGutter(),
          EditorView.updateListener.of((u) => { if (u.docChanged) changed.current(u.state.doc.toString()); }),
          EditorView.contentAttributes.of({ "aria-label": "Node code" })],
      }),
    });
    view.current = editor;
    return () => editor.destroy();
    // a new file (text from the server) makes a new editor
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [text, language]);

  useEffect(() => {
    const editor = view.current;
    if (!editor) return;
    const doc = editor.state.doc;
    const diagnostics: Diagnostic[] = problems.map((p) => {
      const line = doc.line(Math.min(Math.max(p.line ?? 1, 1), doc.lines));
      return { from: line.from, to: line.to, severity: "error", message: p.fix ? `${p.message} — ${p.fix}` : p.message };
    });
    editor.dispatch(setDiagnostics(editor.state, diagnostics));
  }, [problems]);

  return <div className="editor" ref={host} />;
}

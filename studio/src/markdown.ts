// User markdown (docs cards) as HTML that cannot run script: marked renders it, DOMPurify
// keeps only inert markup (no script, no event handlers, no javascript: links). The page's
// Content-Security-Policy (script-src 'self') is the second wall.
import DOMPurify from "dompurify";
import { marked } from "marked";

export function renderMarkdown(text: string): string {
  const html = marked.parse(text, { async: false, gfm: true }) as string;
  return DOMPurify.sanitize(html, { USE_PROFILES: { html: true }, FORBID_TAGS: ["style", "form", "iframe"] });
}

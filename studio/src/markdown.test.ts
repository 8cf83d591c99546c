// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import { renderMarkdown } from "./markdown";

describe("renderMarkdown", () => {
  it("renders markdown and drops anything that could run script", () => {
    const html = renderMarkdown("# Title\n\n<img src=x onerror=alert(1)><script>alert(2)</script>[x](javascript:alert(3))");
    expect(html).toContain("<h1>Title</h1>");
    expect(html).not.toMatch(/onerror|<script|javascript:/);
  });
});

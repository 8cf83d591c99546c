import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import "@xyflow/react/dist/style.css";
import "./styles.css";
import { AppList, AppShell } from "./pages/Apps";
import { Secrets } from "./pages/Admin";
import { usePath } from "./hooks";
import { Link } from "./ui";

function Studio() {
  const path = usePath();
  const url = new URL(path, window.location.origin);
  const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  let page;
  if (parts.length === 0) page = <AppList />;
  else if (parts[0] === "secrets") page = <Secrets />;
  else if (parts[0] === "apps" && parts[1]) page = <AppShell app={parts[1]} rest={parts.slice(2)} search={url.searchParams} />;
  else page = <div role="alert" className="error">No page at {url.pathname}. <Link to="/">See the apps</Link>.</div>;
  return (
    <>
      <header className="top">
        <Link to="/" className="brand">Patterns Studio</Link>
        <nav aria-label="Server">
          <Link to="/">Apps</Link>
          <Link to="/secrets">Secrets</Link>
          <a href="/api/v1/docs">API</a>
        </nav>
      </header>
      <main>{page}</main>
    </>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <Studio />
  </StrictMode>,
);

import type { MouseEvent, ReactNode } from "react";
import { ApiError } from "./api";
import { navigate } from "./hooks";

/** The short form of a run id shown everywhere (as the CLI and API's `short_id`): its last
 * 8 characters, the random end of the ULID (its start is the time, shared by runs of the same
 * moment). `--run` and the API accept it. */
export function shortRunId(id: string): string {
  return id.slice(-8);
}

export function Link({ to, children, className, label }: { to: string; children: ReactNode; className?: string; label?: string }) {
  const go = (e: MouseEvent) => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    navigate(to);
  };
  return <a href={to} onClick={go} className={className} aria-label={label}>{children}</a>;
}

export function ErrorBox({ error }: { error: ApiError | Error | string | null }) {
  if (!error) return null;
  const text = typeof error === "string" ? error : error.message;
  if (error instanceof ApiError && error.status === 401) return <Login message={text} />;
  return <div role="alert" className="error">{text}</div>;
}

/** Shown when the API says the browser has no login cookie: the token goes to /login, which
 * sets the cookie and comes back here. */
export function Login({ message }: { message: string }) {
  const here = window.location.pathname + window.location.search;
  return (
    <form className="login" method="get" action="/login">
      <h2>Log in to this server</h2>
      <p>Open the login URL <code>patterns serve</code> printed when it started, or paste its token here.</p>
      <p className="muted">{message}</p>
      <label>Server token <input name="token" type="password" autoComplete="off" required /></label>
      <input type="hidden" name="next" value={here} />
      <button type="submit">Log in</button>
    </form>
  );
}

export function Status({ status }: { status: string | null | undefined }) {
  const s = status ?? "never run";
  return <span className={`status status-${s.replace(/[^a-z_]/g, "")}`}>{s}</span>;
}

export const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : "—");
export const seconds = (s: number | null | undefined) => (s == null ? "—" : `${s.toFixed(2)} s`);

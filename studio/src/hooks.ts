import { useCallback, useEffect, useState } from "react";
import { api, ApiError } from "./api";

export interface Loaded<T> { data: T | null; error: ApiError | null; reload: () => void }

/** GET `path` (again when it or `reload` changes); the error is kept to be shown in place. */
export function useApi<T>(path: string | null): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (path === null) return;
    let live = true;
    api<T>(path)
      .then((d) => { if (live) { setData(d); setError(null); } })
      .catch((e: unknown) => { if (live) setError(e instanceof ApiError ? e : new ApiError(0, String(e))); });
    return () => { live = false; };
  }, [path, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, reload };
}

/** Server-sent events from `path` (under /api/v1), one callback per event name. */
export function useEvents(path: string | null, handlers: Record<string, (data: unknown) => void>): void {
  useEffect(() => {
    if (path === null) return;
    const source = new EventSource(`/api/v1${path}`, { withCredentials: true });
    for (const [name, handle] of Object.entries(handlers)) {
      source.addEventListener(name, (ev) => handle(JSON.parse((ev as MessageEvent).data)));
    }
    return () => source.close();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [path]);
}

export function navigate(to: string): void {
  window.history.pushState(null, "", to);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

export function usePath(): string {
  const [path, setPath] = useState(window.location.pathname + window.location.search);
  useEffect(() => {
    const update = () => setPath(window.location.pathname + window.location.search);
    window.addEventListener("popstate", update);
    return () => window.removeEventListener("popstate", update);
  }, []);
  return path;
}

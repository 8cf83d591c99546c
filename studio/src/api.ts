// Every call the Studio makes goes through here: same-origin, with the login cookie, and
// with the header docs/server.md asks of a state-changing request made with the cookie.

export class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

export const REQUEST_HEADER = "X-Patterns-Request";

/** The answer public/prefetch.js started for `path` before this script ran, once. */
function takePrefetched(path: string): Promise<Response> | null {
  const w = window as unknown as { __patternsPrefetch?: { path: string; response: Promise<Response> } };
  const early = w.__patternsPrefetch;
  if (!early || early.path !== path) return null;
  delete w.__patternsPrefetch;
  return early.response;
}

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const method = (init.method ?? "GET").toUpperCase();
  const headers = new Headers(init.headers);
  if (method !== "GET" && method !== "HEAD") headers.set(REQUEST_HEADER, "1");
  if (init.body !== undefined && typeof init.body === "string") {
    headers.set("Content-Type", "application/json");
  }
  let response: Response;
  try {
    const early = method === "GET" ? takePrefetched(path) : null;
    response = await (early ?? fetch(`/api/v1${path}`, { ...init, headers, credentials: "same-origin" }));
  } catch (err) {
    throw new ApiError(0, `the server did not answer (${String(err)}); is patterns serve running?`);
  }
  const text = await response.text();
  let doc: unknown = null;
  try {
    doc = text ? JSON.parse(text) : null;
  } catch {
    doc = null;
  }
  if (!response.ok) {
    const message =
      doc && typeof doc === "object" && "error" in doc
        ? String((doc as { error: unknown }).error)
        : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message);
  }
  return doc as T;
}

export const send = <T>(path: string, method: string, body?: unknown) =>
  api<T>(path, { method, body: body === undefined ? undefined : JSON.stringify(body) });

export const enc = encodeURIComponent;

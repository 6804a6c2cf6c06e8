/**
 * The console's link to the controller: the REST routes it reads (with the session cookie, which
 * the browser sends by itself), the CSRF token it adds to state-changing requests (kept in memory
 * only, from the login answer or GET /console/session), and the live event stream.
 * The admin token is sent once, at login, and never stored.
 */
import type { ConsoleSessionView, ConsoleTopic } from "@weft/protocol";

let csrfToken: string | undefined;

export class ApiFailure extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && csrfToken) headers["x-weft-csrf"] = csrfToken;
  const res = await fetch(path, { method, headers, credentials: "same-origin", ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await res.text();
  const parsed: unknown = text ? JSON.parse(text) : undefined;
  if (!res.ok) {
    const message = (parsed as { message?: string } | undefined)?.message ?? `${method} ${path}: HTTP ${res.status}`;
    throw new ApiFailure(message, res.status);
  }
  return parsed as T;
}

export const get = <T>(path: string) => call<T>("GET", path);
export const put = <T>(path: string, body: unknown) => call<T>("PUT", path, body);
export const post = <T>(path: string, body: unknown) => call<T>("POST", path, body);

/** The session the cookie names, or undefined when there is none (log in). */
export async function currentSession(): Promise<ConsoleSessionView | undefined> {
  try {
    const s = await get<ConsoleSessionView>("/console/session");
    csrfToken = s.csrfToken;
    return s;
  } catch (err) {
    if (err instanceof ApiFailure && err.status === 401) return undefined;
    throw err;
  }
}

export async function login(token: string): Promise<ConsoleSessionView> {
  const s = await post<ConsoleSessionView>("/console/login", { token });
  csrfToken = s.csrfToken;
  return s;
}

export async function logout(): Promise<void> {
  await post("/console/logout", {});
  csrfToken = undefined;
}

/** Follows /v1/events; calls `onChange` with each topic. Returns a function that closes the stream. */
export function followEvents(onChange: (topic: ConsoleTopic) => void, onState: (open: boolean) => void): () => void {
  const source = new EventSource("/v1/events", { withCredentials: true });
  source.addEventListener("change", (e) => {
    try {
      const { topic } = JSON.parse((e as MessageEvent<string>).data) as { topic: ConsoleTopic };
      onChange(topic);
    } catch {
      // A malformed event is ignored; the next one refreshes.
    }
  });
  source.addEventListener("hello", () => onState(true));
  source.onerror = () => onState(false);
  return () => source.close();
}

/**
 * Console sessions: the admin token, presented once at `POST /console/login`, becomes a session
 * the browser holds as a cookie (HttpOnly, Secure, SameSite=Strict, Path=/), so the token never
 * sits in a URL, in local storage or in the page's script. Sessions live in this controller's
 * memory only: they expire (absolute lifetime and idle time), end at logout, and a controller
 * restart ends them all.
 *
 * CSRF: SameSite=Strict already keeps the cookie off cross-site requests; on top, every
 * state-changing request (anything but GET/HEAD) made with the cookie must carry the session's
 * CSRF token in the `X-Weft-CSRF` header. A custom header cannot be sent cross-site without a CORS
 * preflight, which this server never answers, and the token itself is only readable by the page
 * (the login answer and `GET /console/session`).
 *
 * Session ids and CSRF tokens are 32 random bytes; only the sha256 of a session id is kept.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

export const SESSION_COOKIE = "weft_session";
export const CSRF_HEADER = "x-weft-csrf";

export interface SessionOptions {
  /** Absolute lifetime of a session. Default 8 h. */
  ttlMs?: number;
  /** A session unused this long ends. Default 30 min. */
  idleMs?: number;
  /** Most sessions held at once; the least recently used goes first. Default 64. */
  max?: number;
  now?: () => number;
  /** Told whenever the number of open sessions changes (metrics). */
  onCount?: (n: number) => void;
}

export interface SessionGrant {
  /** The cookie value: secret, given to the browser only as an HttpOnly cookie. */
  id: string;
  csrfToken: string;
  expiresAt: Date;
}

export interface SessionInfo {
  csrfToken: string;
  expiresAt: Date;
}

/** Why a cookie did not authorize a request. */
export type SessionRefusal = "no_session" | "expired" | "csrf";

interface Held {
  csrfToken: string;
  expiresAt: number;
  lastUsed: number;
}

const SAFE_METHODS = new Set(["GET", "HEAD"]);

function hashId(id: string): string {
  return createHash("sha256").update(id).digest("hex");
}

function sameToken(a: string, b: string): boolean {
  const x = createHash("sha256").update(a).digest();
  const y = createHash("sha256").update(b).digest();
  return timingSafeEqual(x, y);
}

export class ConsoleSessions {
  readonly ttlMs: number;
  readonly idleMs: number;
  readonly #max: number;
  readonly #now: () => number;
  readonly #held = new Map<string, Held>();
  readonly #onCount: (n: number) => void;

  constructor(o: SessionOptions = {}) {
    this.ttlMs = o.ttlMs ?? 8 * 3600_000;
    this.idleMs = o.idleMs ?? 30 * 60_000;
    this.#max = o.max ?? 64;
    this.#now = o.now ?? Date.now;
    this.#onCount = o.onCount ?? (() => {});
  }

  get size(): number {
    this.#sweep();
    return this.#held.size;
  }

  /** A new session (call only after the admin token was checked). */
  create(): SessionGrant {
    this.#sweep();
    while (this.#held.size >= this.#max) {
      const oldest = [...this.#held.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed)[0];
      if (!oldest) break;
      this.#held.delete(oldest[0]);
    }
    const id = randomBytes(32).toString("base64url");
    const now = this.#now();
    const held: Held = { csrfToken: randomBytes(32).toString("base64url"), expiresAt: now + this.ttlMs, lastUsed: now };
    this.#held.set(hashId(id), held);
    this.#onCount(this.#held.size);
    return { id, csrfToken: held.csrfToken, expiresAt: new Date(held.expiresAt) };
  }

  /** The live session a cookie names, or undefined. Reading it counts as use. */
  info(id: string | undefined): SessionInfo | undefined {
    const held = this.#live(id);
    return held && { csrfToken: held.csrfToken, expiresAt: new Date(held.expiresAt) };
  }

  /**
   * Whether a request carrying this cookie may go ahead: a live session, and for a state-changing
   * method the session's CSRF token in the header. Returns undefined when it may, else why not.
   */
  authorize(id: string | undefined, method: string, csrfHeader: string | undefined): SessionRefusal | undefined {
    if (id === undefined || id === "") return "no_session";
    const key = hashId(id);
    const existed = this.#held.has(key);
    const held = this.#live(id);
    if (!held) return existed ? "expired" : "no_session";
    if (!SAFE_METHODS.has(method.toUpperCase()) && (csrfHeader === undefined || !sameToken(csrfHeader, held.csrfToken))) return "csrf";
    return undefined;
  }

  /** Ends the session (logout); true when there was one. */
  destroy(id: string | undefined): boolean {
    if (id === undefined) return false;
    const gone = this.#held.delete(hashId(id));
    if (gone) this.#onCount(this.#held.size);
    return gone;
  }

  #live(id: string | undefined): Held | undefined {
    if (id === undefined || id === "") return undefined;
    const key = hashId(id);
    const held = this.#held.get(key);
    if (!held) return undefined;
    const now = this.#now();
    if (now >= held.expiresAt || now - held.lastUsed >= this.idleMs) {
      this.#held.delete(key);
      this.#onCount(this.#held.size);
      return undefined;
    }
    held.lastUsed = now;
    return held;
  }

  #sweep(): void {
    const now = this.#now();
    let changed = false;
    for (const [key, held] of this.#held) {
      if (now >= held.expiresAt || now - held.lastUsed >= this.idleMs) {
        this.#held.delete(key);
        changed = true;
      }
    }
    if (changed) this.#onCount(this.#held.size);
  }
}

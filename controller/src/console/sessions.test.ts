/** Console sessions: expiry (absolute and idle), CSRF on state-changing methods, logout, the bound on open sessions. */
import { describe, expect, it } from "vitest";
import { ConsoleSessions } from "./sessions.js";

describe("console/sessions", () => {
  it("sessions - a session authorizes GET without CSRF, POST only with its CSRF token", () => {
    const s = new ConsoleSessions();
    const g = s.create();
    expect(s.authorize(g.id, "GET", undefined), "GET").toBeUndefined();
    expect(s.authorize(g.id, "PUT", undefined), "PUT without CSRF").toBe("csrf");
    expect(s.authorize(g.id, "DELETE", "wrong"), "DELETE with a wrong token").toBe("csrf");
    expect(s.authorize(g.id, "POST", g.csrfToken), "POST with the token").toBeUndefined();
    expect(s.authorize(s.create().id, "POST", g.csrfToken), "another session's token").toBe("csrf");
    expect(s.authorize("made-up", "GET", undefined), "unknown id").toBe("no_session");
  });

  it("sessions - expire after their lifetime and after idle time; logout ends them", () => {
    let now = 1_000_000;
    const counts: number[] = [];
    const s = new ConsoleSessions({ ttlMs: 10_000, idleMs: 4_000, now: () => now, onCount: (n) => counts.push(n) });
    const a = s.create();
    now += 3_000;
    expect(s.authorize(a.id, "GET", undefined), "used within idle time").toBeUndefined();
    now += 3_000;
    expect(s.authorize(a.id, "GET", undefined), "used again").toBeUndefined();
    now += 3_000;
    expect(s.authorize(a.id, "GET", undefined), "9 s after login").toBeUndefined();
    now += 1_500;
    expect(s.authorize(a.id, "GET", undefined), "past the lifetime").toBe("expired");
    const b = s.create();
    now += 4_000;
    expect(s.info(b.id), "idle for 4 s").toBeUndefined();
    const c = s.create();
    expect(s.destroy(c.id), "logout").toBe(true);
    expect(s.authorize(c.id, "GET", undefined), "after logout").toBe("no_session");
    expect(counts.at(-1), "open sessions reported").toBe(0);
  });

  it("sessions - at most `max` are held; the least recently used goes first", () => {
    let now = 0;
    const s = new ConsoleSessions({ max: 2, now: () => ++now });
    const a = s.create();
    const b = s.create();
    s.authorize(a.id, "GET", undefined);
    const c = s.create();
    expect(s.size, "held").toBe(2);
    expect(s.info(b.id), "least recently used dropped").toBeUndefined();
    expect(s.info(a.id) && s.info(c.id), "the others kept").toBeTruthy();
  });
});

/**
 * The pure rules behind heartbeats: when an interface epoch is written, and how malformed
 * messages are counted and logged; and on a running controller, that heartbeats reach it once.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Subjects } from "@weft/protocol";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { startTestController } from "../testing.js";
import { decideEpoch } from "./heartbeats.js";
import { MalformedMessages } from "./malformed.js";

describe("heartbeat epochs", () => {
  it("heartbeats - the first epoch is written at once; a change within the interval is held; the same epoch is nothing", () => {
    expect(decideEpoch(undefined, "a", 0, 20_000), "first epoch").toEqual({ action: "write" });
    const state = { written: "a", writtenAt: 1000, pending: undefined };
    expect(decideEpoch(state, "a", 2000, 20_000), "same epoch").toEqual({ action: "none" });
    expect(decideEpoch(state, "b", 2000, 20_000), "change within the interval").toEqual({ action: "hold", at: 21_000 });
    expect(decideEpoch(state, "b", 21_000, 20_000), "change after the interval").toEqual({ action: "write" });
    expect(decideEpoch({ ...state, pending: "b" }, "a", 3000, 20_000), "back to the written one while a change is held").toEqual({ action: "hold", at: 21_000 });
  });
});

describe("malformed messages", () => {
  it("malformed - counted per node, logged at most once per interval per node", () => {
    const lines: unknown[] = [];
    const log = pino({ level: "warn" }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    let now = 0;
    const m = new MalformedMessages({ log, intervalMs: 60_000, now: () => now });
    for (let i = 0; i < 500; i++) m.note("n-00000000000000aa", "heartbeat", "not JSON");
    m.note("n-00000000000000bb", "heartbeat", "not JSON");
    expect(lines.length, "log lines for 500 malformed heartbeats of one node and 1 of another").toBe(2);
    expect(m.counts().get("n-00000000000000aa"), "count of the first node").toBe(500);
    now = 61_000;
    m.note("n-00000000000000aa", "heartbeat", "not JSON");
    expect(lines.length, "a line after the interval").toBe(3);
    expect(lines[2], "the line reports what was counted meanwhile").toMatchObject({ node: "n-00000000000000aa", malformed: 500, malformedTotal: 501 });
  });
});

describe("heartbeats on a controller", () => {
  it("heartbeats - a controller subscribes to them once: every reader (liveness, epochs, the console) is served by one listener", async () => {
    // The server sends a message once per matching subscription: a second subscription doubles
    // what 10,000 agents' heartbeats cost the controller (2,000 messages a second at 5 s).
    const t = await startTestController();
    try {
      const conf = await readFile(join(t.stateDir, "nats", "nats-server.conf"), "utf8");
      const monitor = /^http: "([^"]+)"/m.exec(conf)?.[1];
      expect(monitor, `a monitoring address in the embedded server's config:\n${conf}`).toBeDefined();
      const connz = (await (await fetch(`http://${monitor}/connz?subs=detail`)).json()) as { connections: { subscriptions_list_detail?: { subject: string }[] }[] };
      const subs = connz.connections.flatMap((c) => (c.subscriptions_list_detail ?? []).map((d) => d.subject));
      expect(subs.length, "the server lists the controller's subscriptions").toBeGreaterThan(0);
      expect(subs.filter((s) => s === Subjects.allHeartbeats), `subscriptions to ${Subjects.allHeartbeats}`).toHaveLength(1);
    } finally {
      await t.stop();
    }
  });
});

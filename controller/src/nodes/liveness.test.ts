/**
 * Liveness with an injected clock: never-seen until the first heartbeat,
 * online while the last one is recent enough, offline after, and forgotten
 * when the node is deleted; silence while the controller was blind (NATS
 * unreachable, the process frozen) or before it started does not count, nor
 * while the fleet is still coming back after it (the return wave).
 */
import type { Heartbeat } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { Liveness, RETURN_WAVE_MAX_PERIODS, STALL_MS } from "./liveness.js";

const node = "n-0123456789abcdef";
const hb = (appliedRevision: number): Heartbeat => ({ version: 1, nodeId: node, sentAt: "t", appliedRevision, peers: [] });

describe("Liveness", () => {
  it("liveness - never-seen, then online up to offlineAfter, then offline, then online again", () => {
    let now = Date.parse("2030-01-01T00:00:00Z");
    const l = new Liveness(15_000, () => new Date(now));
    expect(l.status(node), "before any heartbeat").toBe("never-seen");
    l.record(hb(1));
    expect(l.status(node), "right after a heartbeat").toBe("online");
    now += 15_000;
    expect(l.status(node), "15 s later (the limit)").toBe("online");
    now += 1;
    expect(l.status(node), "15.001 s later").toBe("offline");
    expect(l.get(node)?.heartbeat?.appliedRevision, "last heartbeat kept while offline").toBe(1);
    l.record(hb(2));
    expect(l.status(node), "after a new heartbeat").toBe("online");
    expect(l.get(node)?.lastSeen.toISOString(), "lastSeen").toBe(new Date(now).toISOString());
  });

  it("liveness - forget() makes a node never-seen again", () => {
    const l = new Liveness(15_000);
    l.record(hb(1));
    l.forget(node);
    expect(l.status(node), "after forget").toBe("never-seen");
    expect(l.get(node), "entry after forget").toBeUndefined();
  });

  it("liveness - silence while the controller is blind proves nothing: statuses freeze, then online nodes get a whole period", () => {
    let now = Date.parse("2030-01-01T00:00:00Z");
    const l = new Liveness(15_000, () => new Date(now));
    const other = "n-00000000000000aa";
    l.record(hb(1));
    l.record({ ...hb(1), nodeId: other });
    now += 16_000;
    l.record(hb(2)); // `other` has been silent 16 s: offline before the outage
    expect(l.status(other), "silent node before the outage").toBe("offline");
    now += 1000;
    l.blindFrom(now);
    now += 60_000;
    expect(l.status(node), "during a 60 s outage").toBe("online");
    l.sight();
    expect(l.status(node), "right after the outage").toBe("online");
    expect(l.status(other), "the node offline before the outage").toBe("offline");
    now += 15_000;
    expect(l.status(node), "a whole period after sight returned").toBe("online");
    now += 1;
    expect(l.status(node), "still silent after that").toBe("offline");
  });

  it("liveness - a frozen process (no tick for longer than STALL_MS) counts as blind for the freeze", () => {
    let now = Date.parse("2030-01-01T00:00:00Z");
    const l = new Liveness(15_000, () => new Date(now));
    l.record(hb(1));
    l.tick();
    now += 10_000;
    l.tick();
    now += STALL_MS + 60_000; // SIGSTOP for a minute
    expect(l.status(node), "first read after the freeze").toBe("online");
    for (let i = 0; i < 15; i++) {
      now += 1000; // running again: ticked every second
      l.tick();
    }
    expect(l.status(node), "15 s after the freeze").toBe("online");
    now += 1;
    expect(l.status(node), "a whole period after the freeze, never heard again").toBe("offline");
  });

  it("liveness - seeded from the store: online gets a whole period from now, offline stays offline, heartbeats win", () => {
    let now = Date.parse("2030-01-01T00:00:00Z");
    const l = new Liveness(15_000, () => new Date(now));
    const off = "n-00000000000000bb";
    l.seed(node, { status: "online", lastSeen: new Date(now - 600_000).toISOString() });
    l.seed(off, { status: "offline", lastSeen: new Date(now - 600_000).toISOString() });
    expect(l.status(node), "stored online").toBe("online");
    expect(l.status(off), "stored offline").toBe("offline");
    now += 15_001;
    expect(l.status(node), "stored online, never heard").toBe("offline");
    l.record(hb(3));
    l.seed(node, { status: "offline", lastSeen: new Date(0).toISOString() });
    expect(l.status(node), "a seed does not override a heartbeat").toBe("online");
  });

  const ids = (n: number, base = 0x100) => Array.from({ length: n }, (_, i) => `n-${(base + i).toString(16).padStart(16, "0")}`);
  const beat = (l: Liveness, nodeId: string) => l.record({ ...hb(1), nodeId });

  it("liveness - return wave: after an outage, while nodes keep coming back the silent ones stay online; a whole period without a return ends it", () => {
    let now = Date.parse("2030-01-01T00:00:00Z");
    const l = new Liveness(15_000, () => new Date(now));
    const [a, b, c, d] = ids(4);
    for (const n of [a!, b!, c!, d!]) beat(l, n);
    l.blindFrom(now);
    now += 60_000;
    l.sight();
    const sight = now;
    now = sight + 10_000;
    beat(l, a!); // back 10 s after sight returned
    now = sight + 16_000;
    expect(l.status(b!), "16 s after sight, silent, while others come back (was offline here before the wave)").toBe("online");
    now = sight + 20_000;
    beat(l, b!);
    expect(l.offlineAt(c!), "a silent node's check moves with the last return").toBe(sight + 35_000);
    now = sight + 35_000;
    expect(l.status(c!), "a whole period after the last return").toBe("online");
    now += 1;
    expect(l.status(c!), "no return for a whole period: silent nodes are offline").toBe("offline");
    expect(l.status(d!), "every silent node").toBe("offline");
    beat(l, d!);
    expect(l.status(d!), "a late return is online again").toBe("online");
    expect(l.status(c!), "and moves nothing for the others once the wave is over").toBe("offline");
  });

  it("liveness - return wave: returns that never stop extend the grace by at most RETURN_WAVE_MAX_PERIODS periods", () => {
    let now = Date.parse("2030-01-01T00:00:00Z");
    const l = new Liveness(15_000, () => new Date(now));
    const fleet = ids(40);
    const silent = "n-00000000000000ff";
    for (const n of [...fleet, silent]) beat(l, n);
    l.blindFrom(now);
    now += 5_000;
    l.sight();
    const sight = now;
    const limit = sight + RETURN_WAVE_MAX_PERIODS * 15_000;
    for (const n of fleet) {
      now += 5_000; // one back every 5 s, for 200 s
      beat(l, n);
      expect(l.status(silent), `at +${(now - sight) / 1000} s`).toBe(now - limit > 15_000 ? "offline" : "online");
    }
    now = limit + 15_000;
    expect(l.status(silent), "a whole period after the limit").toBe("online");
    now += 1;
    expect(l.status(silent), "past it").toBe("offline");
  });

  it("liveness - return wave: nodes seeded online (a restarted controller, its NATS with it) keep their grace while the others come back", () => {
    let now = Date.parse("2030-01-01T00:00:00Z");
    const l = new Liveness(15_000, () => new Date(now));
    const [a, b, c] = ids(3, 0x200);
    for (const n of [a!, b!, c!]) l.seed(n, { status: "online", lastSeen: new Date(now - 60_000).toISOString() });
    const start = now;
    now = start + 12_000;
    beat(l, a!);
    now = start + 24_000;
    beat(l, b!);
    now = start + 39_000;
    expect(l.status(c!), "a whole period after the last return").toBe("online");
    now += 1;
    expect(l.status(c!), "then offline").toBe("offline");
  });
});

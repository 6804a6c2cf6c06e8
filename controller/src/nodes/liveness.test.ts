/**
 * Liveness with an injected clock: never-seen until the first heartbeat,
 * online while the last one is recent enough, offline after, and forgotten
 * when the node is deleted.
 */
import type { Heartbeat } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { Liveness } from "./liveness.js";

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
    expect(l.get(node)?.heartbeat.appliedRevision, "last heartbeat kept while offline").toBe(1);
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
});

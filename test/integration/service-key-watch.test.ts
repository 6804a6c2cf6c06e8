/**
 * OwnKeyWatch on this node's key of weft-node-services, against a real controller's embedded NATS,
 * connected as the restricted agent user an enrollment hands out: the first read (no key yet),
 * live updates with increasing revisions, a deletion, a malformed record or one naming another
 * node ignored (the last good one stays); every write followed from the stream's republish alone
 * (no read of the key after a change), and a write the stream refuses (a failed compare-and-set)
 * neither reported nor blocking the next one. The controller's publisher is not involved: the test
 * writes the key itself, through the controller's own connection.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm, type KV } from "@nats-io/kv";
import { createUser } from "@nats-io/nkeys";
import { connect, jwtAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { startController, type RunningController } from "@weft/controller";
import { Buckets, NodeServicesRecord, Subjects, silentLogger } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OwnKeyWatch } from "../../agent/src/control/key-watch.js";

const NODE = "n-00000000000b0001";
let stateDir: string;
let controller: RunningController | undefined;
let kv: KV;
let nc: NatsConnection | undefined;

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "weft-keywatch-"));
  controller = await startController({ stateDir, nats: { listenHost: "127.0.0.1", port: 0 }, api: { listenHost: "127.0.0.1", port: 0 } }, pino({ level: "silent" }));
  kv = await new Kvm(controller.nc).open(Buckets.nodeServices);
  const user = createUser();
  const jwt = await controller.authority.issueAgentUser({ nodeId: NODE, userPublicKey: user.getPublicKey() });
  nc = await connect({ servers: controller.natsUrl, tls: { ca: controller.natsCaPem }, authenticator: jwtAuthenticator(jwt, user.getSeed()), inboxPrefix: Subjects.inboxPrefix(NODE), maxReconnectAttempts: 0 });
}, 60_000);
afterAll(async () => {
  await nc?.close().catch(() => {});
  await controller?.stop();
  await rm(stateDir, { recursive: true, force: true });
});

const record = (services: number, nodeId = NODE): NodeServicesRecord => ({
  version: 1,
  nodeId,
  zone: "weft.internal",
  serviceCidr: "100.96.0.0/16",
  self: { site: "s" },
  services: Array.from({ length: services }, (_, i) => ({
    name: `s${i}`,
    namespace: "shop",
    vip: `100.96.0.${i + 1}`,
    algorithm: "round-robin" as const,
    locality: "any" as const,
    ports: [{ port: 80, protocol: "tcp" as const, targetPort: 8080 }],
    backends: [],
    access: {},
  })),
  checks: [],
  compiledAt: new Date().toISOString(),
});

describe("agent key watch", () => {
  it("key watch - first read without a key, then each newer revision; deletion; malformed and foreign records ignored", async () => {
    const seen: [number | null, number][] = [];
    const watch = new OwnKeyWatch(nc!, {
      bucket: Buckets.nodeServices,
      key: NODE,
      schema: NodeServicesRecord,
      accept: (r) => (r.nodeId === NODE ? undefined : `record names node ${r.nodeId}`),
      onRecord: (r, revision) => seen.push([r === null ? null : r.services.length, revision]),
      log: silentLogger,
    });
    try {
      await watch.start();
      expect(seen, "no key yet: (null, 0)").toEqual([[null, 0]]);
      const until = async (n: number) => {
        for (let i = 0; i < 200 && seen.length < n; i++) await new Promise((r) => setTimeout(r, 10));
      };
      const r1 = await kv.put(NODE, JSON.stringify(record(1)));
      await until(2);
      const r2 = await kv.put(NODE, JSON.stringify(record(2)));
      await until(3);
      expect(seen.slice(1), "live updates").toEqual([
        [1, r1],
        [2, r2],
      ]);
      await kv.put(NODE, JSON.stringify(record(3, "n-00000000000b0002")));
      await kv.put(NODE, "{not json");
      await new Promise((r) => setTimeout(r, 300));
      expect(seen.length, "foreign and malformed records never reported").toBe(3);
      const r5 = await kv.delete(NODE).then(async () => (await kv.get(NODE))?.revision ?? 0);
      await until(4);
      expect(seen[3], "deleted").toEqual([null, r5]);
      await watch.resync();
      expect(seen.length, "a resync with nothing newer reports nothing").toBe(4);
    } finally {
      watch.stop();
    }
  });

  it("key watch - each of 300 back-to-back writes is reported with its revision from the republish alone: no read of the key after the first", async () => {
    let last = -1;
    // Every request the watch makes (a direct get is one), counted on the way out.
    const requests: string[] = [];
    const counted = new Proxy(nc!, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (prop === "request") return (subject: string, ...rest: unknown[]) => (requests.push(subject), (target.request as (...a: unknown[]) => unknown)(subject, ...rest));
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const watch = new OwnKeyWatch(counted, { bucket: Buckets.nodeServices, key: NODE, schema: NodeServicesRecord, onRecord: (_r, revision) => (last = revision), log: silentLogger, resyncEveryMs: 0 });
    const missed: number[] = [];
    try {
      await watch.start();
      const reads = requests.filter((s) => s.startsWith("$JS.API.DIRECT.GET.")).length;
      expect(reads, `direct gets at start: ${requests.join(", ")}`).toBe(1);
      for (let i = 0; i < 300; i++) {
        const revision = await kv.put(NODE, JSON.stringify(record(1 + (i % 5))));
        const deadline = Date.now() + 1_000; // far below the 120 s safety-net read, which is off here anyway
        while (last !== revision && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
        if (last !== revision) missed.push(revision);
      }
      expect(missed, "writes never reported").toEqual([]);
      expect(requests.filter((s) => s.startsWith("$JS.API.DIRECT.GET.")).length - reads, `direct gets after the start, for 300 writes: ${requests.slice(-3).join(", ")}`).toBe(0);
    } finally {
      watch.stop();
    }
  });

  it("key watch - a resync asked while a read is in flight reads again after it (a reconnect during a read misses nothing)", async () => {
    let last = -1;
    let slow = false;
    // Hears nothing (as if disconnected): only reads see writes. A slow read answers 300 ms late.
    const deaf = new Proxy(nc!, {
      get(target, prop) {
        const value: unknown = Reflect.get(target, prop, target);
        if (prop === "subscribe") return () => ({ unsubscribe: () => undefined, isClosed: () => false });
        if (prop === "request")
          return async (...args: unknown[]) => {
            const answer = await (target.request as (...a: unknown[]) => Promise<unknown>)(...args);
            if (slow) await new Promise((r) => setTimeout(r, 300));
            return answer;
          };
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const watch = new OwnKeyWatch(deaf, { bucket: Buckets.nodeServices, key: NODE, schema: NodeServicesRecord, onRecord: (_r, revision) => (last = revision), log: silentLogger, resyncEveryMs: 0 });
    try {
      const first = await kv.put(NODE, JSON.stringify(record(1)));
      await watch.start();
      expect(last, "initial read").toBe(first);
      slow = true;
      const during = watch.resync(); // its get goes out now and answers late, with `first`
      await new Promise((r) => setTimeout(r, 50));
      const second = await kv.put(NODE, JSON.stringify(record(2)));
      const after = watch.resync(); // asked while the first read is in flight
      await Promise.all([during, after]);
      expect(last, "the write made during the first read").toBe(second);
    } finally {
      watch.stop();
    }
  });

  it("key watch - a write the stream refuses (failed compare-and-set) is never reported and the next write is seen", async () => {
    let last = -1;
    const watch = new OwnKeyWatch(nc!, { bucket: Buckets.nodeServices, key: NODE, schema: NodeServicesRecord, onRecord: (_r, revision) => (last = revision), log: silentLogger, resyncEveryMs: 0 });
    try {
      const stored = await kv.put(NODE, JSON.stringify(record(1)));
      await watch.start();
      expect(last, "initial read").toBe(stored);
      await expect(kv.update(NODE, JSON.stringify(record(4)), stored - 1), "stale compare-and-set refused").rejects.toThrow();
      await new Promise((r) => setTimeout(r, 500));
      expect(last, "nothing reported for the refused write").toBe(stored);
      const next = await kv.put(NODE, JSON.stringify(record(2)));
      const deadline = Date.now() + 2_000;
      while (last !== next && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      expect(last, "the write after the refused one").toBe(next);
    } finally {
      watch.stop();
    }
  }, 15_000);
});

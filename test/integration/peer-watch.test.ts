/**
 * PeerWatch against a real controller's embedded NATS, connected as a
 * restricted agent user (the JWT a real enrollment hands out): the listener
 * sees one complete snapshot (also when the bucket is empty), then every
 * update and deletion; invalid records are skipped.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm, type KV } from "@nats-io/kv";
import { createUser } from "@nats-io/nkeys";
import { connect, jwtAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { startController, type RunningController } from "@weft/controller";
import { Buckets, Subjects, generateKeyPair, type PeerRecord } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PeerWatch, SNAPSHOT_PAGE, type PeerSet } from "../../agent/src/control/peer-watch.js";

const SELF = "n-00000000000000aa";
const log = pino({ level: process.env["DBG"] ? "debug" : "silent" });

let stateDir: string;
let controller: RunningController | undefined;
let peersKv: KV;
const connections: NatsConnection[] = [];
const watches: PeerWatch[] = [];

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "weft-peerwatch-"));
  controller = await startController({ stateDir, nats: { listenHost: "127.0.0.1", port: 0 }, api: { listenHost: "127.0.0.1", port: 0 } }, log);
  peersKv = await new Kvm(controller.nc).open(Buckets.peers);
});
afterEach(async () => {
  for (const w of watches.splice(0)) w.stop();
  // Each test starts from an empty bucket.
  for await (const k of await peersKv.keys()) await peersKv.purge(k);
});
afterAll(async () => {
  for (const w of watches) w.stop();
  for (const c of connections) await c.close().catch(() => {});
  await controller?.stop();
  await rm(stateDir, { recursive: true, force: true });
});

interface AgentConn {
  nc: NatsConnection;
  /** Errors the server reported on this connection (permission violations). */
  errors: Error[];
}

/** Connects the way the agent does: its own nkey, the controller-issued JWT, its inbox prefix. */
async function connectAgent(nodeId = SELF): Promise<AgentConn> {
  const user = createUser();
  const jwt = await controller!.authority.issueAgentUser({ nodeId, userPublicKey: user.getPublicKey() });
  const nc = await connect({ servers: controller!.natsUrl, tls: { ca: controller!.natsCaPem }, authenticator: jwtAuthenticator(jwt, user.getSeed()), inboxPrefix: Subjects.inboxPrefix(nodeId), maxReconnectAttempts: 0 });
  connections.push(nc);
  const errors: Error[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === "error") errors.push(s.error);
  })();
  return { nc, errors };
}

let seq = 0;
function record(overrides: Partial<PeerRecord> = {}): PeerRecord {
  seq++;
  const nodeId = overrides.nodeId ?? `n-${seq.toString(16).padStart(16, "0")}`;
  return {
    version: 1,
    nodeId,
    name: `peer-${seq}`,
    site: "aws",
    wireguardPublicKey: generateKeyPair().publicKey,
    overlayAddress: `100.64.${seq >> 8}.${seq & 255}`,
    allowedIps: [`100.64.${seq >> 8}.${seq & 255}/32`],
    endpoints: { private: `10.0.${seq >> 8}.${seq & 255}:51820` },
    updatedAt: new Date().toISOString(),
    ...overrides,
  };
}

async function put(r: PeerRecord): Promise<number> {
  return peersKv.put(r.nodeId, JSON.stringify(r));
}

/** Starts a PeerWatch on an agent connection and records every set it emits. */
async function watch(conn: AgentConn): Promise<{ sets: PeerSet[]; w: PeerWatch }> {
  const sets: PeerSet[] = [];
  const w = new PeerWatch(conn.nc, Subjects.inboxPrefix(SELF), (s) => sets.push(s), log);
  watches.push(w);
  await w.start();
  return { sets, w };
}

async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}

const ids = (s: PeerSet | undefined) => [...(s?.peers.keys() ?? [])].sort();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const settle = () => sleep(300);

describe("PeerWatch", () => {
  it("peer-watch - an empty bucket is reported once, with 0 peers", async () => {
    const conn = await connectAgent();
    const { sets } = await watch(conn);
    await until(() => sets.length > 0);
    await settle();
    expect(sets.length, `listener calls: got ${sets.length}, want exactly 1`).toBe(1);
    expect(sets[0]?.peers.size, "peers in the first set").toBe(0);
    expect(conn.errors.map(String), "permission errors on the agent connection").toEqual([]);
  });

  it("peer-watch - a bucket holding only deleted records is reported once, with 0 peers", async () => {
    const r = record();
    await put(r);
    await peersKv.delete(r.nodeId);
    const conn = await connectAgent();
    const { sets } = await watch(conn);
    const ok = await until(() => sets.length > 0);
    await settle();
    expect(ok, "listener called at all").toBe(true);
    expect(sets.length, `listener calls: got ${sets.length}, want exactly 1`).toBe(1);
    expect(sets[0]?.peers.size, "peers").toBe(0);
  });

  it("peer-watch - the first set is the whole snapshot, then updates and deletions follow", async () => {
    const a = record();
    const b = record();
    const c = record();
    await put(a);
    await put(b);
    const lastRev = await put(c);
    const conn = await connectAgent();
    const { sets } = await watch(conn);
    await until(() => sets.length > 0);
    expect(ids(sets[0]), "first set: the whole snapshot, never a part of it").toEqual([a.nodeId, b.nodeId, c.nodeId].sort());
    expect(sets[0]?.revision, "first set's revision").toBe(lastRev);
    expect(sets[0]?.peers.get(a.nodeId), "record as stored").toEqual(a);

    const moved = { ...a, endpoints: { private: "10.9.9.9:51820" } };
    const movedRev = await put(moved);
    expect(await until(() => sets.at(-1)?.peers.get(a.nodeId)?.endpoints.private === "10.9.9.9:51820"), `update: last set ${JSON.stringify(sets.at(-1)?.peers.get(a.nodeId))}`).toBe(true);
    expect(sets.at(-1)?.revision, "revision after the update").toBe(movedRev);
    expect(ids(sets.at(-1)), "peers after the update").toEqual([a.nodeId, b.nodeId, c.nodeId].sort());

    await peersKv.delete(b.nodeId);
    expect(await until(() => !sets.at(-1)?.peers.has(b.nodeId)), "deletion reported").toBe(true);
    expect(ids(sets.at(-1)), "peers after deleting b").toEqual([a.nodeId, c.nodeId].sort());
    const revs = sets.map((s) => s.revision);
    expect(revs, "revisions never go back").toEqual([...revs].sort((x, y) => x - y));

    await peersKv.purge(c.nodeId);
    expect(await until(() => !sets.at(-1)?.peers.has(c.nodeId)), "purge reported").toBe(true);

    const d = record();
    await put(d);
    expect(await until(() => sets.at(-1)?.peers.has(d.nodeId) === true), "a new peer after the snapshot").toBe(true);
    expect(ids(sets.at(-1)), "final peers").toEqual([a.nodeId, d.nodeId].sort());
    expect(conn.errors.map(String), "permission errors on the agent connection").toEqual([]);
  });

  it("peer-watch - records that are not valid, or filed under another node's key, are skipped", async () => {
    const good = record();
    await put(good);
    await peersKv.put("n-00000000000000bb", "not json");
    await peersKv.put("n-00000000000000cc", JSON.stringify({ ...record(), wireguardPublicKey: "short" }));
    const impostor = record();
    await peersKv.put("n-00000000000000dd", JSON.stringify(impostor)); // nodeId inside differs from the key
    const conn = await connectAgent();
    const { sets } = await watch(conn);
    await until(() => sets.length > 0);
    expect(ids(sets[0]), "peers in the snapshot").toEqual([good.nodeId]);

    // A later valid record under the same key replaces nothing it should not.
    const fixed = record({ nodeId: "n-00000000000000bb" });
    await put(fixed);
    expect(await until(() => sets.at(-1)?.peers.has(fixed.nodeId) === true), "a valid record under a previously invalid key").toBe(true);
    expect(ids(sets.at(-1)), "peers after the fix").toEqual([good.nodeId, fixed.nodeId].sort());
  });

  it("peer-watch - records written during the snapshot: no set misses a record that stayed in the bucket, the last set is the bucket", async () => {
    // More than two snapshot pages of records nobody touches, and churn (updates, deletions, new
    // records) written the whole time the snapshot is read.
    const stable = Array.from({ length: SNAPSHOT_PAGE * 2 + 100 }, () => record());
    const churn = Array.from({ length: 50 }, () => record());
    for (const r of [...stable, ...churn]) await put(r);
    const conn = await connectAgent();
    let writing = true;
    let written = 0;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const r = churn[i % churn.length]!;
        if (i % 7 === 3) await peersKv.delete(r.nodeId);
        else await put({ ...r, endpoints: { private: `10.1.${(i >> 8) % 250}.${i % 250}:51820` } });
        written++;
      }
    })();
    const sets: PeerSet[] = [];
    const w = new PeerWatch(conn.nc, Subjects.inboxPrefix(SELF), (set) => sets.push(set), log);
    watches.push(w);
    await w.start();
    const duringSnapshot = written;
    await sleep(200);
    writing = false;
    await writer;
    await settle();
    expect(duringSnapshot, "writes made while the snapshot was read: want some").toBeGreaterThan(0);
    const stableIds = stable.map((r) => r.nodeId);
    sets.forEach((set, i) => {
      const missing = stableIds.filter((id) => !set.peers.has(id));
      expect(missing.length, `set ${i} of ${sets.length} (revision ${set.revision}): ${missing.length} stable records missing, e.g. ${missing[0]}`).toBe(0);
    });
    const want = new Map<string, string>();
    for await (const k of await peersKv.keys()) {
      const e = await peersKv.get(k);
      if (e && e.operation === "PUT") want.set(k, e.string());
    }
    const last = sets.at(-1);
    expect(ids(last), "last set: the keys in the bucket").toEqual([...want.keys()].sort());
    for (const [k, v] of want) expect(last?.peers.get(k), `last set, ${k}: as stored`).toEqual(JSON.parse(v));
    expect(conn.errors.map(String), "permission errors on the agent connection").toEqual([]);
  });

  it("peer-watch - restart() resyncs from a fresh snapshot; stop() ends the updates", async () => {
    const a = record();
    await put(a);
    const conn = await connectAgent();
    const { sets, w } = await watch(conn);
    await until(() => sets.length > 0);
    await w.restart();
    expect(await until(() => sets.length >= 2), "a second snapshot after restart").toBe(true);
    expect(ids(sets.at(-1)), "peers after restart").toEqual([a.nodeId]);

    w.stop();
    const count = sets.length;
    await put(record());
    await settle();
    expect(sets.length, `listener calls after stop: got ${sets.length}, want ${count}`).toBe(count);
  });

  it("peer-watch - restart() reuses the records of messages it read before, parses changed ones, and drops deleted ones", async () => {
    const [a, b, c] = [record(), record(), record()];
    for (const r of [a, b, c]) await put(r);
    const conn = await connectAgent();
    const { sets, w } = await watch(conn);
    await until(() => sets.length > 0);
    const first = sets.at(-1)!;
    const b2 = { ...b, name: "peer-renamed" };
    await w.restart(); // nothing changed: every record is the very object parsed before
    const same = sets.at(-1)!;
    expect([a, b, c].map((r) => same.peers.get(r.nodeId) === first.peers.get(r.nodeId)), "unchanged records reused").toEqual([true, true, true]);
    await put(b2);
    await peersKv.delete(c.nodeId);
    await until(() => sets.at(-1)!.peers.get(b.nodeId)?.name === "peer-renamed" && !sets.at(-1)!.peers.has(c.nodeId));
    await w.restart();
    const after = sets.at(-1)!;
    expect(ids(after), "peers after the second restart").toEqual([a.nodeId, b.nodeId].sort());
    expect(after.peers.get(b.nodeId), "the changed record as stored").toEqual(b2);
    expect(after.peers.get(a.nodeId) === first.peers.get(a.nodeId), "the unchanged one still reused").toBe(true);
  });

  it("peer-watch - resume() reads only what was written since the view's revision, missed writes and deletions included; a rewritten last message reads everything", async () => {
    const [a, b, c] = [record(), record(), record()];
    for (const r of [a, b, c]) await put(r);
    const conn = await connectAgent();
    const { sets, w } = await watch(conn);
    await until(() => sets.length > 0);
    // Every message of the stream (earlier tests leave purge markers behind).
    const whole = w.lastRead;
    expect(whole, "the first snapshot reads every message").toBeGreaterThanOrEqual(3);
    const d = record();
    await put(d); // seen live: the view's revision is its message
    expect(await until(() => sets.at(-1)!.peers.has(d.nodeId)), "d seen live").toBe(true);

    await w.resume();
    expect([w.lastRead, ids(sets.at(-1))], "nothing written since: nothing read, the same peers").toEqual([0, [a, b, c, d].map((r) => r.nodeId).sort()]);

    // Writes the watch cannot see live (as while disconnected): its live subscription is cut.
    (w as unknown as { sub?: { unsubscribe(): void } }).sub?.unsubscribe();
    const e = record();
    const b2 = { ...b, name: "peer-b2" };
    await put(e);
    await put(b2);
    await peersKv.delete(a.nodeId);
    await settle();
    await w.resume();
    const after = sets.at(-1)!;
    expect(w.lastRead, "only the three writes since are read").toBe(3);
    expect(ids(after), "peers after resume").toEqual([b, c, d, e].map((r) => r.nodeId).sort());
    expect(after.peers.get(b.nodeId)?.name, "the rewritten record").toBe("peer-b2");

    // The message the view's revision came from (a's deletion marker) is replaced while unseen:
    // nothing proves the stream is the one the view knows, so it is read whole.
    (w as unknown as { sub?: { unsubscribe(): void } }).sub?.unsubscribe();
    await put({ ...b2, name: "peer-b3" });
    await put(a);
    await settle();
    await w.resume();
    expect(ids(sets.at(-1)), "peers after the whole read").toEqual([a, b, c, d, e].map((r) => r.nodeId).sort());
    expect(sets.at(-1)!.peers.get(b.nodeId)?.name, "the last write of b").toBe("peer-b3");
    expect(w.lastRead, "a replaced last message: a whole snapshot").toBeGreaterThanOrEqual(whole);
  });
});

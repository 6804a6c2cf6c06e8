/**
 * NodePolicyWatch against a real controller's embedded NATS, connected as a
 * restricted agent user (the JWT a real enrollment hands out): the initial read,
 * live updates and deletions, only newer revisions, malformed records ignored —
 * and the permissions: an agent reads its own key of weft-node-policies and
 * nothing else of that bucket.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm, type KV } from "@nats-io/kv";
import { createUser } from "@nats-io/nkeys";
import { connect, jwtAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { startController, type RunningController } from "@weft/controller";
import { createHash } from "node:crypto";
import { Buckets, POLICY_CHUNK_ENTRIES, Subjects, nodePolicyChunkKey, silentLogger, type CompactPolicyEntry, type NodePolicyRecord } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodePolicyWatch, nodePolicySubject } from "../../agent/src/control/policy-watch.js";

const log = silentLogger;
let stateDir: string;
let controller: RunningController | undefined;
let kv: KV;
const connections: NatsConnection[] = [];
const watches: NodePolicyWatch[] = [];

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "weft-policywatch-"));
  controller = await startController({ stateDir, nats: { listenHost: "127.0.0.1", port: 0 }, api: { listenHost: "127.0.0.1", port: 0 } }, pino({ level: "silent" }));
  kv = await new Kvm(controller.nc).open(Buckets.nodePolicies);
});
afterAll(async () => {
  for (const w of watches) w.stop();
  for (const c of connections) await c.close().catch(() => {});
  await controller?.stop();
  await rm(stateDir, { recursive: true, force: true });
});

let counter = 0;
const freshNodeId = () => `n-${(0xa000 + ++counter).toString(16).padStart(16, "0")}`;

interface AgentConn {
  nc: NatsConnection;
  errors: Error[];
}

async function connectAgent(nodeId: string): Promise<AgentConn> {
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

function record(nodeId: string, entries: NodePolicyRecord["entries"] = [[300, 301, 6, 443, 443, 1]]): NodePolicyRecord {
  return { version: 2, nodeId, localIdentities: [301], policies: ["p"], defaultDeny: [301], entries, entryCount: entries.length, mapEntries: entries.length, compiledAt: new Date().toISOString() };
}

/** `n` distinct entries (one port each). */
const manyEntries = (n: number, verdict: 1 | 2 = 1): CompactPolicyEntry[] => Array.from({ length: n }, (_, i): CompactPolicyEntry => [300 + Math.floor(i / 60000), 301, 6, 1 + (i % 60000), 1 + (i % 60000), verdict]);
const digestOf = (entries: readonly CompactPolicyEntry[]) => createHash("sha256").update(JSON.stringify(entries)).digest("hex");

/** Writes `entries` the way the publisher does: chunks first, then the record naming them. */
async function putChunked(nodeId: string, entries: CompactPolicyEntry[], digest = digestOf(entries)): Promise<{ record: NodePolicyRecord; revision: number }> {
  const count = Math.ceil(entries.length / POLICY_CHUNK_ENTRIES);
  for (let i = 0; i < count; i++) {
    await kv.put(nodePolicyChunkKey(nodeId, i), JSON.stringify({ version: 2, nodeId, digest, index: i, entries: entries.slice(i * POLICY_CHUNK_ENTRIES, (i + 1) * POLICY_CHUNK_ENTRIES) }));
  }
  const rec: NodePolicyRecord = { ...record(nodeId, []), chunks: { count, digest }, entryCount: entries.length, mapEntries: entries.length };
  return { record: rec, revision: await kv.put(nodeId, JSON.stringify(rec)) };
}

async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}
const settle = () => new Promise((r) => setTimeout(r, 200));

type Seen = { record: NodePolicyRecord | null; revision: number };
async function watch(conn: AgentConn, nodeId: string): Promise<{ seen: Seen[]; w: NodePolicyWatch }> {
  const seen: Seen[] = [];
  const w = new NodePolicyWatch(conn.nc, nodeId, (r, revision) => seen.push({ record: r, revision }), log);
  watches.push(w);
  await w.start();
  return { seen, w };
}

describe("NodePolicyWatch", () => {
  it("policy-watch - no key yet is reported once as (null, 0); puts and a delete follow live, revisions only grow", async () => {
    const id = freshNodeId();
    const conn = await connectAgent(id);
    const { seen } = await watch(conn, id);
    expect(seen, "before any write").toEqual([{ record: null, revision: 0 }]);

    const r1 = record(id);
    const rev1 = await kv.put(id, JSON.stringify(r1));
    expect(await until(() => seen.length === 2), `first put seen: ${JSON.stringify(seen)}`).toBe(true);
    expect(seen[1], "first put").toEqual({ record: r1, revision: rev1 });

    const r2 = record(id, [[300, 301, 6, 443, 443, 2]]);
    const rev2 = await kv.put(id, JSON.stringify(r2));
    expect(await until(() => seen.at(-1)?.revision === rev2), "second put seen").toBe(true);
    expect(seen.at(-1)?.record, "second put").toEqual(r2);

    await kv.delete(id);
    expect(await until(() => seen.at(-1)?.record === null && seen.at(-1)!.revision > rev2), "delete seen as null").toBe(true);
    const revs = seen.map((s) => s.revision);
    expect(revs, "strictly increasing revisions").toEqual([...new Set(revs)].sort((a, b) => a - b));
    expect(conn.errors.map(String), "permission errors on the agent connection").toEqual([]);
  });

  it("policy-watch - an existing record is read at start; a burst of puts ends on the last one", async () => {
    const id = freshNodeId();
    const first = await kv.put(id, JSON.stringify(record(id)));
    const conn = await connectAgent(id);
    const { seen } = await watch(conn, id);
    expect(seen.map((s) => [s.revision, s.record?.entries]), "initial read").toEqual([[first, record(id).entries]]);
    let last = 0;
    for (let i = 1; i <= 20; i++) last = await kv.put(id, JSON.stringify(record(id, [[300, 301, 6, i, i, 1]])));
    expect(await until(() => seen.at(-1)?.revision === last), "last of the burst").toBe(true);
    expect(seen.at(-1)?.record?.entries, "last entries").toEqual([[300, 301, 6, 20, 20, 1]]);
    expect(seen.length, "coalesced: fewer calls than puts is fine, never more").toBeLessThanOrEqual(21);
  });

  it("policy-watch - malformed records and records naming another node are never applied", async () => {
    const id = freshNodeId();
    const good = record(id);
    const goodRev = await kv.put(id, JSON.stringify(good));
    const conn = await connectAgent(id);
    const { seen } = await watch(conn, id);
    await kv.put(id, "not json");
    await kv.put(id, JSON.stringify({ ...good, entries: [[1, 2, 3]] }));
    await kv.put(id, JSON.stringify(record(freshNodeId())));
    await settle();
    expect(seen, "only the good record").toEqual([{ record: good, revision: goodRev }]);
    const fixed = record(id, []);
    const fixedRev = await kv.put(id, JSON.stringify(fixed));
    expect(await until(() => seen.at(-1)?.revision === fixedRev), "a valid record after bad ones").toBe(true);
  });

  it("policy-watch - a version-1 record (one entry per port) is read as version 2 intervals", async () => {
    const id = freshNodeId();
    const v1 = { version: 1, nodeId: id, localIdentities: [301], policies: ["p"], defaultDeny: [301], entries: [[300, 301, 6, 443, 1], [300, 301, 0, 0, 2]], compiledAt: new Date().toISOString() };
    const rev = await kv.put(id, JSON.stringify(v1));
    const { seen } = await watch(await connectAgent(id), id);
    expect(seen.at(-1)?.revision, "revision").toBe(rev);
    expect(seen.at(-1)?.record?.entries, "entries as intervals").toEqual([
      [300, 301, 6, 443, 443, 1],
      [300, 301, 0, 0, 65535, 2],
    ]);
  });

  it("policy-watch - a chunked policy is read with the agent's own permissions and reported whole, each message at most one chunk", async () => {
    const id = freshNodeId();
    const conn = await connectAgent(id);
    const { seen } = await watch(conn, id);
    const entries = manyEntries(3 * POLICY_CHUNK_ENTRIES + 17);
    const { revision } = await putChunked(id, entries);
    expect(await until(() => seen.at(-1)?.revision === revision, 5000), `chunked record seen: ${JSON.stringify(seen.map((s) => s.revision))}`).toBe(true);
    const got = seen.at(-1)!.record!;
    expect(got.entries.length, "entries joined from 4 chunks").toBe(entries.length);
    expect(got.entries, "in order").toEqual(entries);
    expect(got.chunks, "the report carries the entries, not the chunk list").toBeUndefined();
    expect(conn.errors.map(String), "permission errors reading the chunks").toEqual([]);
    // The largest message of the set: one chunk, far below NATS's 1 MB default max payload.
    const sizes = await Promise.all([id, ...[0, 1, 2, 3].map((i) => nodePolicyChunkKey(id, i))].map(async (k) => (await kv.get(k))?.value.length ?? 0));
    expect(Math.max(...sizes), `message sizes ${sizes.join(", ")}`).toBeLessThan(512 * 1024);
  });

  it("policy-watch - chunks of another compilation are never applied: the last good policy stays until a consistent set is there", async () => {
    const id = freshNodeId();
    const conn = await connectAgent(id);
    const { seen } = await watch(conn, id);
    const good = await putChunked(id, manyEntries(POLICY_CHUNK_ENTRIES + 5));
    expect(await until(() => seen.at(-1)?.revision === good.revision, 5000), "first chunked policy").toBe(true);
    // A newer compilation has overwritten chunk 1 but its record is not written yet: the old record's
    // digest no longer matches every chunk, so a re-read (here: a record rewritten with the old digest) applies nothing.
    const newer = manyEntries(POLICY_CHUNK_ENTRIES + 5, 2);
    await kv.put(nodePolicyChunkKey(id, 1), JSON.stringify({ version: 2, nodeId: id, digest: digestOf(newer), index: 1, entries: newer.slice(POLICY_CHUNK_ENTRIES) }));
    await kv.put(id, JSON.stringify({ ...good.record, compiledAt: new Date().toISOString() }));
    // A record whose chunks carry its digest but whose joined entries do not hash to it.
    const lying = manyEntries(POLICY_CHUNK_ENTRIES + 5, 2);
    await putChunked(id, lying, digestOf(manyEntries(3)));
    await settle();
    expect(seen.at(-1)?.revision, "nothing newer applied").toBe(good.revision);
    const fixed = await putChunked(id, newer);
    expect(await until(() => seen.at(-1)?.revision === fixed.revision, 5000), "the consistent newer set").toBe(true);
    expect(seen.at(-1)?.record?.entries.every((e) => e[5] === 2), "newer entries").toBe(true);
  });

  it("policy-watch - resync() picks up what changed while no notification arrived; stop() ends updates", async () => {
    const id = freshNodeId();
    const conn = await connectAgent(id);
    const { seen, w } = await watch(conn, id);
    w.stop();
    const rev = await kv.put(id, JSON.stringify(record(id)));
    await settle();
    expect(seen.length, "no updates after stop").toBe(1);
    const again = new NodePolicyWatch(conn.nc, id, (r, revision) => seen.push({ record: r, revision }), log);
    watches.push(again);
    await again.resync();
    expect(seen.at(-1)?.revision, "resync on a fresh watch reads the key").toBe(rev);
  });
});

describe("weft-node-policies permissions", () => {
  it("permissions - an agent reads its own key and is refused another node's key, by get and by subscription", async () => {
    const mine = freshNodeId();
    const other = freshNodeId();
    await kv.put(mine, JSON.stringify(record(mine)));
    await kv.put(other, JSON.stringify(record(other)));
    const conn = await connectAgent(mine);
    await kv.put(nodePolicyChunkKey(other, 0), JSON.stringify({ version: 2, nodeId: other, digest: "0".repeat(64), index: 0, entries: [] }));
    const agentKv = await new Kvm(conn.nc).open(Buckets.nodePolicies, { allow_direct: true });
    expect((await agentKv.get(mine))?.json<NodePolicyRecord>().nodeId, "own key by direct get").toBe(mine);
    await expect(agentKv.get(other), "another node's key by direct get").rejects.toThrow();
    await expect(agentKv.get(nodePolicyChunkKey(other, 0)), "another node's chunk by direct get").rejects.toThrow();

    // A subscription on another node's subject is refused by the server.
    const got: string[] = [];
    const refused: string[] = [];
    const callback = (err: Error | null, m: { subject: string } | undefined): void => {
      if (err) refused.push(err.message);
      else got.push(m!.subject);
    };
    conn.nc.subscribe(nodePolicySubject(other), { callback });
    conn.nc.subscribe(`$KV.${Buckets.nodePolicies}.${other}`, { callback });
    conn.nc.subscribe(`$KV.${Buckets.nodePolicies}.>`, { callback });
    conn.nc.subscribe(Subjects.allKeyUpdates(Buckets.nodePolicies), { callback });
    // Its own chunks' republish too: chunks are read by direct get only.
    conn.nc.subscribe(Subjects.keyUpdates(Buckets.nodePolicies, nodePolicyChunkKey(mine, 0)), { callback });
    await conn.nc.flush();
    await kv.put(other, JSON.stringify(record(other)));
    await kv.put(nodePolicyChunkKey(mine, 0), JSON.stringify({ version: 2, nodeId: mine, digest: "0".repeat(64), index: 0, entries: [] }));
    await settle();
    expect(got, "messages of another node's key").toEqual([]);
    expect(refused.length, `subscriptions refused: ${refused.join("; ")}`).toBe(5);
    expect(conn.errors.some((e) => /permissions violation for subscription/i.test(e.message)), `errors: ${conn.errors.map(String).join("; ")}`).toBe(true);
  });

  it("permissions - the agent cannot get by sequence, read the stream with MSG.GET or create a consumer on the bucket", async () => {
    const mine = freshNodeId();
    const other = freshNodeId();
    const otherRev = await kv.put(other, JSON.stringify(record(other)));
    const conn = await connectAgent(mine);
    const stream = `KV_${Buckets.nodePolicies}`;
    const attempts: [string, string, string][] = [
      ["direct get by sequence through its own subject", `$JS.API.DIRECT.GET.${stream}.$KV.${Buckets.nodePolicies}.${mine}`, JSON.stringify({ seq: otherRev })],
      ["direct get by sequence", `$JS.API.DIRECT.GET.${stream}`, JSON.stringify({ seq: otherRev })],
      ["msg get", `$JS.API.STREAM.MSG.GET.${stream}`, JSON.stringify({ last_by_subj: `$KV.${Buckets.nodePolicies}.${other}` })],
      ["consumer create", `$JS.API.CONSUMER.CREATE.${stream}`, JSON.stringify({ stream_name: stream, config: { deliver_policy: "last_per_subject", ack_policy: "none" } })],
      ["stream info", `$JS.API.STREAM.INFO.${stream}`, ""],
    ];
    for (const [what, subject, body] of attempts) {
      let answer = "";
      try {
        const m = await conn.nc.request(subject, body, { timeout: 500 });
        answer = `${m.headers?.code ?? ""} ${m.headers?.description ?? ""} ${m.string()}`;
      } catch (err) {
        answer = `refused: ${(err as Error).message}`;
      }
      expect(answer.includes(other), `${what}: got ${answer}, want no data of ${other}`).toBe(false);
      expect(/refused|40\d|error/i.test(answer), `${what}: got ${answer}, want a refusal`).toBe(true);
    }
  });
});

/**
 * Moving a restored bucket's revisions past the backup's (advance.ts), against a real nats-server
 * (127.0.0.1, random port, temp store, no auth): every record, delete marker and their order kept,
 * revisions newer than any an agent may hold from after the backup, compare-and-set working on
 * the moved revisions; and which headers a message is written again with.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findNatsServer } from "../nats/binary.js";
import { freePort } from "../testing-nats.js";
import { eventually } from "../testing.js";
import { advanceRevisions, advancedRange, keptHeaders, REVISION_GAP } from "./advance.js";

describe("backup - restored revisions moved past the backup's", () => {
  let dir: string;
  let server: ChildProcess | undefined;
  let nc: NatsConnection;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "weft-advance-"));
    const port = await freePort();
    server = spawn(await findNatsServer(), ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir], { stdio: "ignore" });
    const conn = await eventually(() => connect({ servers: `nats://127.0.0.1:${port}`, maxReconnectAttempts: 0 }).catch(() => undefined), 10_000, 100);
    if (!conn) throw new Error(`nats-server on port ${port} did not accept a connection within 10 s`);
    nc = conn;
  }, 20_000);

  afterAll(async () => {
    await nc?.close().catch(() => undefined);
    server?.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });

  /** Every key's latest entry: value, operation and revision. */
  const entries = async (kv: KV, keys: string[]) =>
    Object.fromEntries(await Promise.all(keys.map(async (k) => [k, await kv.get(k).then((e) => (e ? { value: e.string(), operation: e.operation, revision: e.revision } : null))] as const)));

  it("backup - advanceRevisions keeps every record, marker and their order, at revisions past any an agent held, and compare-and-set works after", async () => {
    const kv = await new Kvm(nc).create("adv", { history: 1 });
    await kv.put("a", "1");
    const b = await kv.put("b", "2");
    await kv.update("b", "2'", b); // stored with a Nats-Expected-Last-Subject-Sequence header
    await kv.put("c", "3");
    await kv.delete("c");
    await kv.put("d", "4");
    const keys = ["a", "b", "c", "d"];
    const before = await entries(kv, keys);
    const jsm = await jetstreamManager(nc);
    const state = (await jsm.streams.info("KV_adv")).state;
    // What an agent may hold: a revision the store reached after the backup, which the restored bucket never did.
    const heldByAnAgent = state.last_seq + 40;

    const gap = 1000;
    const after = await advanceRevisions(nc, "KV_adv", state, { gap });
    expect(after, "stream state after the move").toEqual({ messages: state.messages, ...(({ first, last }) => ({ first_seq: first, last_seq: last }))(advancedRange(state.last_seq, state.messages, gap)) });
    const moved = await entries(kv, keys);
    for (const k of keys) {
      expect({ value: moved[k]?.value, operation: moved[k]?.operation }, `${k}: value and operation after the move`).toEqual({ value: before[k]?.value, operation: before[k]?.operation });
      expect(moved[k]!.revision, `${k}: revision after the move, want past ${heldByAnAgent} (held by an agent)`).toBeGreaterThan(heldByAnAgent);
    }
    const order = (e: typeof before) => [...keys].sort((x, y) => e[x]!.revision - e[y]!.revision);
    expect(order(moved), "keys in revision order after the move").toEqual(order(before));
    expect(moved.d!.revision, "the last record's revision").toBe(after.last_seq);

    // The store carries on from the moved revisions: compare-and-set against them, a new write after them.
    const updated = await kv.update("a", "1'", moved.a!.revision);
    expect(updated, "compare-and-set on a moved revision").toBe(after.last_seq + 1);
    await expect(kv.update("a", "stale", moved.a!.revision), "compare-and-set on the revision before it").rejects.toThrow();
    await expect(kv.create("d", "again"), "create of a key the move kept").rejects.toThrow();
  });

  it("backup - advanceRevisions on an empty bucket starts it past the backup's last revision", async () => {
    const kv = await new Kvm(nc).create("adv-empty", { history: 1 });
    const jsm = await jetstreamManager(nc);
    const state = (await jsm.streams.info("KV_adv-empty")).state;
    await advanceRevisions(nc, "KV_adv-empty", state, { gap: 500 });
    expect(await kv.put("x", "1"), "first revision written after the move").toBe(state.last_seq + 500);
  });

  it("backup - a message is written again without its publish-time expectations or deduplication id", () => {
    const h = headers();
    h.append("KV-Operation", "DEL");
    h.append("Nats-Rollup", "sub");
    h.append("Nats-Expected-Last-Subject-Sequence", "7");
    h.append("nats-expected-stream", "KV_x");
    h.append("Nats-Msg-Id", "abc");
    expect(keptHeaders(h), "headers kept").toEqual([
      ["KV-Operation", ["DEL"]],
      ["Nats-Rollup", ["sub"]],
    ]);
    expect(keptHeaders(undefined), "no headers").toEqual([]);
    expect(REVISION_GAP, "the gap leaves 2^21 restores within exact integers").toBe(2 ** 32);
  });
});

/**
 * LivenessRecorder against the real nats-server: the first pass stores every node heard from; a
 * pass while every node keeps reporting looks at none of them (no status read, no write); nodes
 * that fall silent are stored offline, and online again when they report, the others untouched;
 * what is stored always equals what Liveness says; each change of status is counted.
 */
import { randomBytes } from "node:crypto";
import { Kvm, type KV } from "@nats-io/kv";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestController, type TestController } from "../testing.js";
import { ControllerCounters } from "../metrics/counters.js";
import { RecordStore } from "../store/kv.js";
import { Liveness } from "./liveness.js";
import { LivenessRecorder, StoredLiveness } from "./liveness-store.js";

let t: TestController;
let kv: KV;
const bucket = `test-liveness-${randomBytes(4).toString("hex")}`;
beforeAll(async () => {
  t = await startTestController();
  kv = await new Kvm(t.running.nc).create(bucket, { history: 1 });
});
afterAll(async () => {
  await kv?.destroy().catch(() => undefined);
  await t?.stop();
});

const heartbeat = (nodeId: string) => ({ version: 1 as const, nodeId, sentAt: new Date().toISOString(), peers: [] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("liveness recorder", () => {
  it("liveness recorder - writes only changes, looks only at nodes heard from or due, and stores what Liveness says", async () => {
    const store = new RecordStore(kv, StoredLiveness, bucket);
    const offlineAfterMs = 200;
    const liveness = new Liveness(offlineAfterMs);
    let statusReads = 0;
    const counted = {
      status: (nodeId: string) => {
        statusReads++;
        return liveness.status(nodeId);
      },
      get: (nodeId: string) => liveness.get(nodeId),
      nodeIds: () => liveness.nodeIds(),
      forget: (nodeId: string) => liveness.forget(nodeId),
      get blind() {
        return liveness.blind;
      },
      takeHeard: () => liveness.takeHeard(),
      offlineAt: (nodeId: string) => liveness.offlineAt(nodeId),
    };
    const ids = Array.from({ length: 40 }, (_, i) => `n-${(i + 1).toString(16).padStart(16, "0")}`);
    const counters = new ControllerCounters();
    const recorder = new LivenessRecorder({ store, liveness: counted, nodeIds: async () => ids, fence: () => true, checkMs: 50, counters, log: pino({ level: "silent" }) });
    await recorder.start();
    await recorder.stop(); // the test drives the passes
    const revisions = async () => new Map(await Promise.all(ids.map(async (id) => [id, (await kv.get(id))?.revision ?? 0] as const)));
    const stored = async () => new Map(await Promise.all(ids.map(async (id) => [id, (await store.get(id))?.value.status ?? "none"] as const)));

    for (const id of ids) liveness.record(heartbeat(id) as never);
    await recorder.pass();
    expect([...(await stored()).values()], "first pass: every node stored online").toEqual(ids.map(() => "online"));
    const before = await revisions();

    for (const id of ids) liveness.record(heartbeat(id) as never);
    statusReads = 0;
    await recorder.pass();
    expect(statusReads, "steady state: statuses read in a pass").toBe(0);
    expect(await revisions(), "steady state: nothing rewritten").toEqual(before);
    expect(recorder.scheduled, "every node has a check waiting").toBe(ids.length);

    // The first ten fall silent past the offline time; the others keep reporting.
    const silent = ids.slice(0, 10);
    for (let i = 0; i < 5; i++) {
      await sleep(offlineAfterMs / 2);
      for (const id of ids.slice(10)) liveness.record(heartbeat(id) as never);
      await recorder.pass();
    }
    const got = await stored();
    expect(ids.map((id) => got.get(id)), "stored equals Liveness").toEqual(ids.map((id) => liveness.status(id)));
    expect(silent.map((id) => got.get(id)), "silent nodes").toEqual(silent.map(() => "offline"));
    expect(counters.nodeStatusChanges.get({ status: "offline" }), "changes to offline counted").toBe(silent.length);
    const after = await revisions();
    expect(
      ids.slice(10).filter((id) => after.get(id) !== before.get(id)),
      "reporting nodes rewritten",
    ).toEqual([]);

    liveness.record(heartbeat(silent[0]!) as never);
    await recorder.pass();
    expect((await store.get(silent[0]!))?.value.status, "a silent node reports again").toBe("online");
    expect(counters.nodeStatusChanges.get({ status: "online" }), "a change back to online counted (the first judgement is no change)").toBe(1);
  });
});

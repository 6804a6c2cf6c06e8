/**
 * Listing a bucket's keys against the real nats-server: deleted and purged keys are not listed,
 * filters narrow, and a listing always ends while other clients create and delete keys (the
 * library's own `kv.keys()` hung about once in 600 listings in that situation on nats-server 2.9,
 * and an enrollment hung with it). No consumer is left behind. Whole records are listed in one pass
 * with the revisions a get reports. The listing read from the replicas by direct gets (when no
 * consumer can be made) gives exactly what the consumer's does, across pages and key history.
 */
import { randomBytes } from "node:crypto";
import { Kvm, type KV } from "@nats-io/kv";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { startTestController, type TestController } from "../testing.js";
// eslint-disable-next-line @typescript-eslint/no-restricted-imports -- the scan by direct gets takes the library's Bucket, as keys.ts does
import { Bucket } from "@nats-io/kv/internal";
import { latestByDirectGets, liveEntries, liveKeys } from "./keys.js";
import { RecordStore } from "./kv.js";

let t: TestController;
beforeAll(async () => {
  t = await startTestController();
});
afterAll(async () => t?.stop());

async function scratchBucket(history = 1): Promise<{ kv: KV; stream: string; drop: () => Promise<void> }> {
  const name = `test-keys-${randomBytes(4).toString("hex")}`;
  const kv = await new Kvm(t.running.nc).create(name, { history });
  return { kv, stream: `KV_${name}`, drop: async () => void (await kv.destroy()) };
}

async function consumersOn(stream: string): Promise<number> {
  const jsm = await jetstreamManager(t.running.nc);
  return (await jsm.streams.info(stream)).state.consumer_count;
}

describe("liveKeys", () => {
  it("keys - only keys whose last operation is a put are listed; filters narrow; an empty bucket lists nothing", async () => {
    const b = await scratchBucket();
    try {
      expect(await liveKeys(b.kv), "empty bucket").toEqual([]);
      for (const k of ["a.1", "a.2", "a.3", "b.1"]) await b.kv.put(k, "v");
      await b.kv.delete("a.2");
      await b.kv.purge("a.3");
      await b.kv.put("a.1", "again");
      expect((await liveKeys(b.kv)).sort(), "all keys").toEqual(["a.1", "b.1"]);
      expect(await liveKeys(b.kv, "a.>"), "filter a.>").toEqual(["a.1"]);
      expect(await liveKeys(b.kv, "c.>"), "filter matching nothing").toEqual([]);
      await b.kv.put("a.2", "back");
      expect((await liveKeys(b.kv, "a.*")).sort(), "a deleted key written again is listed").toEqual(["a.1", "a.2"]);
      expect(await consumersOn(b.stream), "consumers left on the bucket after listing").toBe(0);
    } finally {
      await b.drop();
    }
  });

  it("keys - every listing ends while two clients create and delete keys, and the last one matches the bucket", async () => {
    const b = await scratchBucket();
    let stop = false;
    const churn = async () => {
      for (let i = 0; !stop; i++) {
        const k = `p.${i % 20}`;
        await b.kv.create(k, "x").catch(() => undefined); // exists: someone else created it
        if (Math.random() < 0.7) await b.kv.delete(k);
      }
    };
    const writers = [churn(), churn()];
    try {
      let listings = 0;
      const until = Date.now() + 3_000;
      while (Date.now() < until) {
        const keys = await Promise.race([
          liveKeys(b.kv, "p.>"),
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`listing ${listings + 1} did not end within 5 s`)), 5_000)),
        ]);
        expect(keys.every((k) => /^p\.\d+$/.test(k)), `listing ${listings + 1}: ${keys.join(",")}`).toBe(true);
        expect(new Set(keys).size, `listing ${listings + 1} lists a key twice: ${keys.join(",")}`).toBe(keys.length);
        listings++;
      }
      expect(listings, "listings completed in 3 s of churn").toBeGreaterThan(50);
      stop = true;
      await Promise.all(writers);
      const truth: string[] = [];
      for (let i = 0; i < 20; i++) if ((await b.kv.get(`p.${i}`))?.operation === "PUT") truth.push(`p.${i}`);
      expect((await liveKeys(b.kv)).sort(), "listing after the churn stopped").toEqual(truth.sort());
      expect(await consumersOn(b.stream), "consumers left on the bucket after listing").toBe(0);
    } finally {
      stop = true;
      await Promise.allSettled(writers);
      await b.drop();
    }
  }, 20_000);
});

describe("liveEntries and RecordStore.list", () => {
  it("list - one pass returns each live record with its value and the revision a get reports; unparsable values are reported, not returned", async () => {
    const b = await scratchBucket();
    try {
      const store = new RecordStore(b.kv, z.object({ n: z.number() }), "test");
      for (let i = 0; i < 250; i++) await store.put(`r.${i}`, { n: i });
      await store.put("r.7", { n: 70 });
      await b.kv.delete("r.8");
      await b.kv.put("r.9", "not json");
      await b.kv.put("r.10", JSON.stringify({ n: "ten" }));
      const invalid: string[] = [];
      const got = await store.list("r.>", (key) => invalid.push(key));
      const want: string[] = [];
      for (let i = 0; i < 250; i++) {
        const e = await store.get(`r.${i}`).catch(() => undefined); // r.9 and r.10 do not parse
        if (e) want.push(`${e.value.n}@${e.revision}`);
      }
      expect(got.length, "records listed (250 put, 1 deleted, 2 unparsable)").toBe(247);
      expect(
        got.map((r) => `${r.value.n}@${r.revision}`).sort(),
        "values and revisions as get sees them",
      ).toEqual(want.sort());
      expect(invalid.sort(), "keys reported as unparsable").toEqual(["r.10", "r.9"]);
      expect((await liveEntries(b.kv, "q.>")).length, "filter matching nothing").toBe(0);
      expect(await consumersOn(b.stream), "consumers left on the bucket after listing").toBe(0);
    } finally {
      await b.drop();
    }
  });
});

describe("latestByDirectGets", () => {
  it("keys - the listing by direct gets equals the consumer's: history, deletes, purges, filters, several pages", async () => {
    const b = await scratchBucket(5);
    try {
      const kv = b.kv as Bucket;
      const subject = (filter: string) => kv.fullKeyName(kv.encodeKey(filter));
      const summary = (m: Map<string, { key: string; revision: number; value: Uint8Array }> | { key: string; revision: number; value: Uint8Array }[]) =>
        [...(m instanceof Map ? m.values() : m)].map((e) => `${e.key}@${e.revision}=${new TextDecoder().decode(e.value)}`).sort();
      expect(summary(await latestByDirectGets(kv, subject(">"))), "empty bucket").toEqual([]);
      // 2,600 messages (three 1,000-message pages): 1,000 keys, most written twice or three times.
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < 1000; i++) writes.push(b.kv.put(`n.${i}`, `v1-${i}`));
      await Promise.all(writes);
      for (let round = 2; round <= 3; round++) await Promise.all(Array.from({ length: 800 }, (_, i) => b.kv.put(`n.${(i * 7 + round) % 1000}`, `v${round}-${i}`)));
      await b.kv.delete("n.5");
      await b.kv.purge("n.6");
      await b.kv.put("m.1", "other");
      const all = summary(await latestByDirectGets(kv, subject(">")));
      expect(all, "all keys, as the consumer lists them").toEqual(summary(await liveEntries(b.kv)));
      expect(all.length, "live keys").toBe(999);
      expect(all.some((e) => e.startsWith("n.5@") || e.startsWith("n.6@")), "deleted and purged keys").toBe(false);
      expect(summary(await latestByDirectGets(kv, subject("m.>"))), "filter m.>").toEqual(summary(await liveEntries(b.kv, "m.>")));
      expect(summary(await latestByDirectGets(kv, subject("x.>"))), "filter matching nothing").toEqual([]);
    } finally {
      await b.drop();
    }
  });
});

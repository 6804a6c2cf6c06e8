/**
 * RecordStore.change against the real nats-server: it creates, updates or leaves a record as its
 * function says; concurrent changes of one record all land, each lost race retried on the winner's
 * value; a change that keeps losing gives up by the one rule (the deadline) with a typed,
 * retryable error; a function that throws aborts and writes nothing.
 */
import { randomBytes } from "node:crypto";
import { Kvm, type KV } from "@nats-io/kv";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { StoreUnavailableError } from "../errors.js";
import { startTestController, type TestController } from "../testing.js";
import { LostRacesError, RACE_DEADLINE_MS, RecordStore } from "./kv.js";

const Counter = z.object({ n: z.number().int() });

let t: TestController;
beforeAll(async () => {
  t = await startTestController();
});
afterAll(async () => t?.stop());

async function scratch(opts: { raceDeadlineMs?: number } = {}): Promise<{ kv: KV; store: RecordStore<typeof Counter>; drop: () => Promise<void> }> {
  const name = `test-change-${randomBytes(4).toString("hex")}`;
  const kv = await new Kvm(t.running.nc).create(name, { history: 1 });
  return { kv, store: new RecordStore(kv, Counter, name, opts), drop: async () => void (await kv.destroy()) };
}

describe("RecordStore.change", () => {
  it("store - change creates an absent record, updates a present one, and leaves it when the function says so", async () => {
    const b = await scratch();
    try {
      const absent = await b.store.change("c", () => undefined);
      expect([absent.outcome, absent.value, absent.revision], "nothing to change, nothing stored").toEqual(["absent", undefined, undefined]);
      expect(await b.store.get("c"), "no record after absent").toBeUndefined();

      const created = await b.store.change("c", (cur) => ({ n: (cur?.n ?? 0) + 1 }));
      expect([created.outcome, created.value], "created").toEqual(["created", { n: 1 }]);
      const updated = await b.store.change("c", (cur) => ({ n: (cur?.n ?? 0) + 1 }));
      expect([updated.outcome, updated.value], "updated").toEqual(["updated", { n: 2 }]);
      expect(updated.revision, "revision grows").toBeGreaterThan(created.revision!);
      const same = await b.store.change("c", () => undefined);
      expect([same.outcome, same.value, same.revision], "unchanged: the stored record and its revision").toEqual(["unchanged", { n: 2 }, updated.revision]);
      expect((await b.store.get("c"))?.revision, "no write for unchanged").toBe(updated.revision);
    } finally {
      await b.drop();
    }
  });

  it("store - 40 concurrent changes of one record all land; lost races rerun the function on the winner's value", async () => {
    const b = await scratch();
    try {
      let calls = 0;
      await Promise.all(
        Array.from({ length: 40 }, () =>
          b.store.change("c", async (cur) => {
            calls++;
            await new Promise((r) => setTimeout(r, 1));
            return { n: (cur?.n ?? 0) + 1 };
          }),
        ),
      );
      expect((await b.store.get("c"))?.value.n, "every increment landed").toBe(40);
      expect(calls, "lost races ran the function again").toBeGreaterThan(40);
    } finally {
      await b.drop();
    }
  });

  it("store - a change that keeps losing gives up at its deadline with LostRacesError (retryable, 503 store_unavailable)", async () => {
    const b = await scratch({ raceDeadlineMs: 300 });
    try {
      await b.store.change("c", () => ({ n: 0 }));
      let calls = 0;
      const started = Date.now();
      // Another writer wins every race: each attempt's read is stale by the time it writes.
      const err = await b.store
        .change("c", async (cur) => {
          calls++;
          await b.kv.put("c", JSON.stringify({ n: 1000 + calls }));
          return { n: (cur?.n ?? 0) + 1 };
        })
        .catch((e: unknown) => e);
      const elapsed = Date.now() - started;
      expect(err, "error type").toBeInstanceOf(LostRacesError);
      expect(err, "a store error the API answers 503").toBeInstanceOf(StoreUnavailableError);
      const e = err as LostRacesError;
      expect([e.status, e.code, e.retryable], "status, code, retryable").toEqual([503, "store_unavailable", true]);
      expect(e.message, "message names the key and the deadline").toMatch(/c kept changing under concurrent writers for 300 ms/);
      expect(elapsed, "gave up at the deadline, not before").toBeGreaterThanOrEqual(300);
      expect(elapsed, "nor long after").toBeLessThan(3000);
      expect(calls, "retried until then").toBeGreaterThan(2);
      expect(RACE_DEADLINE_MS, "the documented default deadline").toBe(10_000);
    } finally {
      await b.drop();
    }
  });

  it("store - a function that throws aborts the change and writes nothing", async () => {
    const b = await scratch();
    try {
      const first = await b.store.change("c", () => ({ n: 1 }));
      await expect(
        b.store.change("c", () => {
          throw new Error("refused");
        }),
        "the function's error reaches the caller",
      ).rejects.toThrow("refused");
      expect((await b.store.get("c"))?.revision, "no write").toBe(first.revision);
    } finally {
      await b.drop();
    }
  });

  it("store - a known entry spares the first read; a stale one is retried on what is stored", async () => {
    const b = await scratch();
    try {
      const created = await b.store.change("c", () => ({ n: 1 }));
      await b.store.change("c", () => ({ n: 5 }));
      const seen: (number | undefined)[] = [];
      const got = await b.store.change(
        "c",
        (cur) => {
          seen.push(cur?.n);
          return { n: (cur?.n ?? 0) + 1 };
        },
        { known: { value: { n: 1 }, revision: created.revision! } },
      );
      expect(seen, "first the known value, then the stored one").toEqual([1, 5]);
      expect(got.value, "applied to what is stored").toEqual({ n: 6 });
      const fresh = await b.store.change("d", (cur) => ({ n: (cur?.n ?? 0) + 1 }), { known: null });
      expect([fresh.outcome, fresh.value], "known absent: created without a read").toEqual(["created", { n: 1 }]);
      const stale = await b.store.change("d", (cur) => ({ n: (cur?.n ?? 0) + 1 }), { known: null });
      expect([stale.outcome, stale.value], "known absent but present: the create loses and the update is made").toEqual(["updated", { n: 2 }]);
    } finally {
      await b.drop();
    }
  });
});

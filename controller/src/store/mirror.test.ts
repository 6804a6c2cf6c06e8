/**
 * A bucket mirror against the real nats-server: the records it holds follow puts and deletes,
 * every listener hears each change once the record is in (or gone), a listener that throws
 * neither stops the others nor the mirror, an unlistened one hears nothing more, and a record
 * that does not parse is left out.
 */
import { randomBytes } from "node:crypto";
import { Kvm, type KV } from "@nats-io/kv";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { eventually, startTestController, type TestController } from "../testing.js";
import { RecordStore } from "./kv.js";
import { BucketMirror } from "./mirror.js";

const Item = z.object({ n: z.number() });

let t: TestController;
let kv: KV;
const bucket = `test-mirror-${randomBytes(4).toString("hex")}`;
beforeAll(async () => {
  t = await startTestController();
  kv = await new Kvm(t.running.nc).create(bucket, { history: 1 });
});
afterAll(async () => {
  await kv?.destroy().catch(() => undefined);
  await t?.stop();
});

describe("bucket mirror", () => {
  it("mirror - listeners hear every change after the record is in; a throwing listener harms no one; unlisten stops", async () => {
    await kv.put("a", JSON.stringify({ n: 1 }));
    const mirror = await BucketMirror.start(new RecordStore(kv, Item, bucket), Item, { bucket, log: pino({ level: "silent" }) });
    try {
      expect(mirror.entries.get("a"), "read at start").toEqual({ n: 1 });
      const seen: string[] = [];
      const late: string[] = [];
      mirror.listen(() => {
        throw new Error("a broken reader");
      });
      mirror.listen((key) => seen.push(`${key}=${JSON.stringify(mirror.entries.get(key) ?? null)}`));
      const stopLate = mirror.listen((key) => late.push(key));
      await kv.put("b", JSON.stringify({ n: 2 }));
      await kv.put("bad", JSON.stringify({ n: "not a number" }));
      await kv.delete("a");
      expect(await eventually(() => (seen.includes("a=null") ? true : undefined)), `changes heard: ${seen.join(" ")}`).toBe(true);
      expect(seen, "each change with the record as the mirror holds it then; the unparsable one not at all").toEqual(expect.arrayContaining(["b={\"n\":2}", "a=null"]));
      expect(seen.some((s) => s.startsWith("bad=")), "the record that does not parse").toBe(false);
      expect([...mirror.entries.keys()].sort(), "held after the changes").toEqual(["b"]);
      stopLate();
      const heardBefore = late.length;
      await kv.put("c", JSON.stringify({ n: 3 }));
      expect(await eventually(() => (mirror.entries.has("c") ? true : undefined)), "the mirror follows on").toBe(true);
      expect(late.length, "an unlistened listener hears nothing more").toBe(heardBefore);
    } finally {
      mirror.stop();
    }
  });
});

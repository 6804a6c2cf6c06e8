/**
 * Claims against the real nats-server: once followed, the taken addresses and prefixes are the
 * bucket's (also claims another controller makes and releases), allocation hands out the lowest
 * free address without reading the bucket, and a claim lost to another controller moves on.
 */
import { randomBytes } from "node:crypto";
import { Kvm, type KV } from "@nats-io/kv";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RecordStore } from "../store/kv.js";
import { eventually, startTestController, type TestController } from "../testing.js";
import { AddressAllocator } from "./allocator.js";
import { Claim, Claims } from "./claims.js";

let t: TestController;
let kv: KV;
const bucket = `test-claims-${randomBytes(4).toString("hex")}`;
beforeAll(async () => {
  t = await startTestController();
  kv = await new Kvm(t.running.nc).create(bucket, { history: 1 });
});
afterAll(async () => {
  await kv?.destroy().catch(() => undefined);
  await t?.stop();
});

describe("ipam claims", () => {
  it("claims - a followed set equals the bucket's claims, also another controller's; allocation skips them and reuses released ones", async () => {
    const store = new RecordStore(kv, Claim, bucket);
    const other = new Claims(store); // another controller, not following
    expect((await other.claim("addr", "100.64.0.1", "n-a")).ok, "claimed before following").toBe(true);
    const claims = new Claims(store);
    await claims.follow(pino({ level: "silent" }));
    try {
      expect([...(await claims.claimedAddresses())], "the claim made before").toEqual(["100.64.0.1"]);
      const allocator = new AddressAllocator(claims, "100.64.0.0/24");
      expect(await allocator.allocate("n-b"), "lowest free").toBe("100.64.0.2");
      expect((await other.claim("addr", "100.64.0.3", "n-c")).ok, "another controller claims .3").toBe(true);
      expect((await other.claim("wprefix", "100.80.0.0/24", "n-c")).ok).toBe(true);
      const seen = await eventually(async () => ((await claims.claimedAddresses()).has("100.64.0.3") && (await claims.claimedPrefixes()).includes("100.80.0.0/24") ? true : undefined));
      expect(seen, "the other controller's claims reach the followed sets").toBe(true);
      expect(await allocator.allocate("n-d"), "skips .3").toBe("100.64.0.4");
      await other.release("addr", "100.64.0.1", "n-a");
      const gone = await eventually(async () => (!(await claims.claimedAddresses()).has("100.64.0.1") ? true : undefined));
      expect(gone, "a release reaches the followed set").toBe(true);
      expect(await allocator.allocate("n-e"), "the released address again").toBe("100.64.0.1");
      expect(new Set(await claims.claimedAddresses()), "followed equals the bucket").toEqual(new Set((await store.keys("addr.>")).map((k) => k.slice(5))));
    } finally {
      claims.stop();
    }
  });
});

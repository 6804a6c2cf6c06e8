/**
 * Join keys as an admin sees them, against a real controller and its embedded
 * NATS: the secret is shown once and never listed, revocation and one-time use
 * show in the state and reject enrollment, expiry follows an injected clock, and
 * a key's labels end up on the nodes it enrolls.
 */
import { createHash } from "node:crypto";
import { Kvm } from "@nats-io/kv";
import { Buckets, generateKeyPair, type JoinKeyInfo } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JoinKeyRejectedError } from "../errors.js";
import { RecordStore } from "../store/kv.js";
import { agentIdentity, assertNothingStored, refusalDetail, startTestController, storedState, type TestController } from "../testing.js";
import { JoinKeys, StoredJoinKey } from "./joinkeys.js";

const KEY_FORMAT = /^weft_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

let t: TestController;

beforeAll(async () => {
  t = await startTestController();
});
afterAll(async () => {
  await t?.stop();
});

function enroll(joinKey: string, overrides: Record<string, unknown> = {}) {
  return t.client.raw("POST", "/v1/enroll", JSON.stringify(agentIdentity(joinKey, generateKeyPair().publicKey, overrides).body));
}

async function keyInfo(id: string): Promise<JoinKeyInfo | undefined> {
  return (await t.client.listJoinKeys()).find((k) => k.id === id);
}

/** A JoinKeys on the controller's own bucket whose clock the test moves. */
async function joinKeysAt(clock: { now: number }): Promise<JoinKeys> {
  const kv = await new Kvm(t.running.nc).open(Buckets.keys);
  return new JoinKeys(new RecordStore(kv, StoredJoinKey, Buckets.keys), () => new Date(clock.now));
}

/** An enrollment's use of a presented key: checked (`verify`), then recorded (`consumeVerified`). */
async function consume(keys: JoinKeys, presented: string, nodeId: string) {
  return keys.consumeVerified((await keys.verify(presented)).value.id, nodeId);
}

describe("join keys", () => {
  it("keys - create shows the secret once as weft_<id>_<secret>; list and revoke never show it or its hash", async () => {
    const created = await t.client.createJoinKey({ description: "rack 4", labels: { env: "prod" } });
    const m = KEY_FORMAT.exec(created.key);
    expect(m, `key: got ${created.key}, want weft_<12 hex>_<43 base64url>`).not.toBeNull();
    expect(m?.[1], `key id part: got ${m?.[1]}, want the key's id ${created.id}`).toBe(created.id);
    expect(created.state, "state of a new key").toBe("active");
    expect(created.uses, "uses of a new key").toBe(0);
    const ttlMs = Date.parse(created.expiresAt) - Date.parse(created.createdAt);
    expect(ttlMs, `default lifetime: got ${ttlMs} ms, want 24 h`).toBe(24 * 3600 * 1000);

    const secret = m?.[2] ?? "";
    const hash = createHash("sha256").update(secret).digest("hex");
    const listed = await t.client.raw("GET", "/v1/keys");
    const revoked = await t.client.raw("DELETE", `/v1/keys/${created.id}`);
    for (const [what, res] of [
      ["GET /v1/keys", listed],
      ["DELETE /v1/keys/:id", revoked],
    ] as const) {
      expect(res.status, `${what}: status`).toBe(200);
      for (const [leak, value] of [
        ["secret", secret],
        ["hash", hash],
        ["full key", created.key],
      ] as const) {
        expect(res.text.includes(value), `${what}: got the ${leak} in ${res.text.slice(0, 200)}…, want it absent`).toBe(false);
      }
    }
    const item = (listed.body as Record<string, unknown>[]).find((k) => k["id"] === created.id);
    expect(item, `GET /v1/keys: got no entry for ${created.id}`).toBeDefined();
    expect(Object.keys(item ?? {}).sort(), "listed fields").toEqual(["createdAt", "description", "expiresAt", "id", "labels", "reusable", "state", "uses"]);
  });

  it("keys - a revoked key is listed as revoked, rejects enrollment with 403, and revoking again changes nothing", async () => {
    const created = await t.client.createJoinKey({ reusable: true });
    const first = await t.client.revokeJoinKey(created.id);
    expect(first.state, "state after revoke").toBe("revoked");
    expect(first.revokedAt, "revokedAt after revoke").toBeDefined();
    expect((await keyInfo(created.id))?.state, "listed state after revoke").toBe("revoked");

    const before = await storedState(t);
    const res = await enroll(created.key);
    expect(res.status, `enroll with a revoked key: got ${res.status} ${res.text}, want 403`).toBe(403);
    expect(refusalDetail(t, res, "revoked key").message, "the logged reason names it").toMatch(/revoked/);
    await assertNothingStored(t, before, "enroll with a revoked key");

    const again = await t.client.revokeJoinKey(created.id);
    expect(again.revokedAt, `second revoke: got revokedAt ${again.revokedAt}, want the first ${first.revokedAt}`).toBe(first.revokedAt);
  });

  it("keys - revoking an unknown or malformed id is 404 and stores nothing", async () => {
    const before = await storedState(t);
    for (const id of ["000000000000", "not-a-key", "a*b", "a.b", "%3E"]) {
      const res = await t.client.raw("DELETE", `/v1/keys/${id}`);
      expect(res.status, `DELETE /v1/keys/${id}: got ${res.status} ${res.text}, want 404`).toBe(404);
      expect((res.body as { error?: string } | undefined)?.error, `DELETE /v1/keys/${id}: error code`).toBe("not_found");
    }
    await assertNothingStored(t, before, "revoke unknown ids");
  });

  it("keys - a one-time key goes active → used after one enrollment, and a second enrollment is 403", async () => {
    const created = await t.client.createJoinKey({ reusable: false });
    const res = await enroll(created.key);
    expect(res.status, `first enrollment: got ${res.status} ${res.text}, want 201`).toBe(201);
    const info = await keyInfo(created.id);
    expect(info?.state, "state after one use").toBe("used");
    expect(info?.uses, "uses after one use").toBe(1);

    const before = await storedState(t);
    const second = await enroll(created.key);
    expect(second.status, `second enrollment: got ${second.status} ${second.text}, want 403`).toBe(403);
    expect(refusalDetail(t, second, "used key").message, "the logged reason names it").toMatch(/already used/);
    await assertNothingStored(t, before, "second use of a one-time key");
  });

  it("keys - a reusable key stays active and counts its uses", async () => {
    const created = await t.client.createJoinKey({ reusable: true });
    for (let i = 0; i < 3; i++) {
      const res = await enroll(created.key);
      expect(res.status, `enrollment ${i + 1}: got ${res.status} ${res.text}, want 201`).toBe(201);
    }
    const info = await keyInfo(created.id);
    expect(info?.state, "state after three uses").toBe("active");
    expect(info?.uses, "uses after three uses").toBe(3);
  });

  it("keys - the key's labels are copied to the node it enrolls", async () => {
    const labels = { env: "prod", "team/owner": "net", "k8s.io:zone": "a" };
    const created = await t.client.createJoinKey({ labels });
    const res = await enroll(created.key);
    expect(res.status, `enroll: got ${res.status} ${res.text}, want 201`).toBe(201);
    const node = await t.client.getNode((res.body as { nodeId: string }).nodeId);
    expect(node.labels, "node labels").toEqual(labels);
    expect(node.joinKeyId, "node joinKeyId").toBe(created.id);
  });

  it("keys - invalid create requests are 400 naming the field, and store nothing", async () => {
    const before = await storedState(t);
    for (const [what, body, field] of [
      ["ttl below 60 s", { ttlSeconds: 59 }, "ttlSeconds"],
      ["ttl not an integer", { ttlSeconds: 90.5 }, "ttlSeconds"],
      ["reusable as a string", { reusable: "yes" }, "reusable"],
      ["unknown field", { admin: true }, "admin"],
      ["bad label key", { labels: { "bad key": "x" } }, "labels"],
    ] as const) {
      const res = await t.client.raw("POST", "/v1/keys", JSON.stringify(body));
      expect(res.status, `${what}: got ${res.status} ${res.text}, want 400`).toBe(400);
      expect(res.text.includes(field), `${what}: message ${res.text} should name ${field}`).toBe(true);
    }
    await assertNothingStored(t, before, "invalid key create requests");
  });

  it("keys - a key whose instance selector names onprem is 400 naming instanceSelector.provider, says to use a plain key with a site, and stores nothing", async () => {
    const before = await storedState(t);
    for (const body of [{ instanceSelector: { provider: "onprem" } }, { site: "lab", labels: { "weft:gateway": "true" }, instanceSelector: { provider: "onprem", account: "lab" } }]) {
      const res = await t.client.raw("POST", "/v1/keys", JSON.stringify(body));
      expect(res.status, `${JSON.stringify(body)}: got ${res.status} ${res.text}, want 400`).toBe(400);
      const got = JSON.parse(res.text) as { message: string; details?: { path: string }[] };
      expect(got.details?.map((d) => d.path), `details of ${res.text}`).toEqual(["instanceSelector.provider"]);
      expect(got.message, "the refusal says what to do instead").toContain("enroll on-prem hosts with a plain join key naming their site");
    }
    await assertNothingStored(t, before, "onprem instance selector keys");
    const aws = await t.client.createJoinKey({ instanceSelector: { provider: "aws" } });
    expect(aws.instanceSelector, "an aws selector is still taken").toEqual({ provider: "aws" });
    await t.client.revokeJoinKey(aws.id);
  });

  it("keys - a key past its expiry is listed as expired and rejects enrollment with 403", async () => {
    // Created by a JoinKeys whose clock is two days behind: a 60 s key that expired long ago.
    const past = { now: Date.now() - 2 * 24 * 3600 * 1000 };
    const created = await (await joinKeysAt(past)).create({ reusable: true, ttlSeconds: 60, labels: {} });
    expect((await keyInfo(created.id))?.state, "listed state").toBe("expired");

    const before = await storedState(t);
    const res = await enroll(created.key);
    expect(res.status, `enroll with an expired key: got ${res.status} ${res.text}, want 403`).toBe(403);
    expect(refusalDetail(t, res, "expired key").message, "the logged reason names it").toMatch(/expired/);
    await assertNothingStored(t, before, "enroll with an expired key");
  });
});

describe("join keys with an injected clock", () => {
  it("keys - a 60 s key is usable until its 60th second and expired from then on", async () => {
    const clock = { now: Date.parse("2030-01-01T00:00:00Z") };
    const keys = await joinKeysAt(clock);
    const created = await keys.create({ reusable: true, ttlSeconds: 60, labels: {} });
    const state = async () => (await keys.list()).find((k) => k.id === created.id)?.state;

    clock.now += 59_999;
    expect(await state(), "state at 59.999 s").toBe("active");
    await expect(keys.verify(created.key), "verify at 59.999 s").resolves.toBeDefined();

    clock.now += 1;
    expect(await state(), "state at 60 s").toBe("expired");
    const err = await keys.verify(created.key).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, `verify at 60 s: got ${String(err)}, want JoinKeyRejectedError`).toBeInstanceOf(JoinKeyRejectedError);
    expect(String(err), "message names the reason").toMatch(/expired at 2030-01-01T00:01:00.000Z/);
    await expect(consume(keys, created.key, "n-0000000000000001"), "consume at 60 s").rejects.toBeInstanceOf(JoinKeyRejectedError);
  });

  it("keys - revoked wins over expired and used in the listed state", async () => {
    const clock = { now: Date.parse("2030-01-01T00:00:00Z") };
    const keys = await joinKeysAt(clock);
    const created = await keys.create({ reusable: false, ttlSeconds: 60, labels: {} });
    await consume(keys, created.key, "n-0000000000000002");
    const state = async () => (await keys.list()).find((k) => k.id === created.id)?.state;
    expect(await state(), "after one use").toBe("used");
    clock.now += 120_000;
    expect(await state(), "used and past expiry").toBe("expired");
    await keys.revoke(created.id);
    expect(await state(), "revoked, used and past expiry").toBe("revoked");
  });

  it("keys - 64 enrollments at once on one reusable key all record their use, none starved; a one-time key still goes to exactly one", async () => {
    const keys = await joinKeysAt({ now: Date.now() });
    const shared = await keys.create({ reusable: true, ttlSeconds: 3600, labels: {} });
    const ids = Array.from({ length: 64 }, (_, i) => `n-${(0x100 + i).toString(16).padStart(16, "0")}`);
    const results = await Promise.allSettled(ids.map((id) => consume(keys, shared.key, id)));
    expect(results.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason)), "failed uses").toEqual([]);
    const info = (await keys.list()).find((k) => k.id === shared.id);
    expect(info?.uses, "uses recorded").toBe(64);

    const once = await keys.create({ reusable: false, ttlSeconds: 3600, labels: {} });
    const race = await Promise.allSettled(ids.slice(0, 8).map((id) => consume(keys, once.key, id)));
    expect(race.filter((r) => r.status === "fulfilled").length, "one-time key: uses that won").toBe(1);
  });
});

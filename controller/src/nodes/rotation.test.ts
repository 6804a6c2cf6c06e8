/**
 * WireGuard key rotation over NATS against a real controller: the node's new public key reaches
 * its peer record (every agent's view), the `wgkey` claims follow it, another node's key is
 * refused, and a malformed request is answered without changing anything.
 */
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { Buckets, KeyRotationReply, PeerRecord, Subjects, generateKeyPair } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { claimKey } from "../ipam/claims.js";
import { enrollAgent, startTestController, storedState, type TestController } from "../testing.js";

let t: TestController;
const open: NatsConnection[] = [];

beforeAll(async () => {
  t = await startTestController();
});
afterAll(async () => {
  for (const c of open) await c.close().catch(() => undefined);
  await t?.stop();
});

async function rotate(nc: NatsConnection, nodeId: string, body: unknown): Promise<KeyRotationReply> {
  const msg = await nc.request(Subjects.wireguardKey(nodeId), typeof body === "string" ? body : JSON.stringify(body), { timeout: 5000 });
  return KeyRotationReply.parse(msg.json());
}

describe("WireGuard key rotation", () => {
  it("rotation - the new key reaches the peer record and the claims; another node's key and garbage are refused", async () => {
    const key = (await t.client.createJoinKey({ reusable: true })).key;
    const oldKey = generateKeyPair().publicKey;
    const a = await enrollAgent(t, key, oldKey);
    const b = await enrollAgent(t, key, generateKeyPair().publicKey);
    open.push(a.nc, b.nc);
    const next = generateKeyPair().publicKey;

    expect(await rotate(a.nc, a.enrolled.nodeId, { version: 1, wireguardPublicKey: next }), "rotation").toEqual({ ok: true, wireguardPublicKey: next });
    const peer = PeerRecord.parse((await (await new Kvm(t.running.nc).open(Buckets.peers)).get(a.enrolled.nodeId))?.json());
    expect(peer.wireguardPublicKey, "peer record's key").toBe(next);
    expect((await t.client.getNode(a.enrolled.nodeId)).wireguardPublicKey, "node record's key").toBe(next);
    const claims = (await storedState(t)).claims;
    expect(claims, "the new key is claimed").toContain(claimKey("wgkey", next));
    expect(claims, "the old key's claim is released").not.toContain(claimKey("wgkey", oldKey));

    const stolen = await rotate(b.nc, b.enrolled.nodeId, { version: 1, wireguardPublicKey: next });
    expect(stolen.ok ? "ok" : stolen.error.code, "taking another node's key").toBe("conflict");
    const garbage = await rotate(b.nc, b.enrolled.nodeId, "{nope");
    expect(garbage.ok ? "ok" : garbage.error.code, "a malformed request").toBe("invalid_request");
    const bad = await rotate(b.nc, b.enrolled.nodeId, { version: 1, wireguardPublicKey: "short" });
    expect(bad.ok ? "ok" : bad.error.code, "not a WireGuard key").toBe("invalid_request");
    expect((await t.client.getNode(b.enrolled.nodeId)).wireguardPublicKey, "b's key unchanged").not.toBe(next);
    expect(a.errors.concat(b.errors).map(String), "permission errors").toEqual([]);
  });
});

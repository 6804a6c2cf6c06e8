/**
 * Wire schemas: keys and names are checked at the edge, enrollment requests
 * are strict, defaults are filled in, and subjects parse back to node ids.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createAccount, createUser } from "@nats-io/nkeys";
import { describe, expect, it } from "vitest";
import { EnrollRequest, Heartbeat, JoinKeyCreateRequest, PeerRecord, natsUserKey, nodeName, wireguardKey } from "./messages.js";
import { Subjects, nodeIdFromSubject } from "./names.js";

function wgPublicKey(): string {
  const x = generateKeyPairSync("x25519").publicKey.export({ format: "jwk" }).x!;
  return Buffer.from(x, "base64url").toString("base64");
}

function validEnroll(): Record<string, unknown> {
  return {
    version: 1,
    joinKey: `weft_0123456789ab_${"A".repeat(43)}`,
    name: "web-1",
    site: "aws-eu",
    wireguardPublicKey: wgPublicKey(),
    natsPublicKey: createUser().getPublicKey(),
    listenPort: 51820,
    endpoints: { private: "10.0.0.1:51820" },
  };
}

function issuePaths(result: { success: boolean; error?: { issues: { path: PropertyKey[] }[] } }): string[] {
  return (result.error?.issues ?? []).map((i) => i.path.map(String).join("."));
}

describe("messages", () => {
  it("messages - WireGuard keys: 32 bytes of standard base64, nothing else", () => {
    for (let i = 0; i < 20; i++) {
      const k = wgPublicKey();
      expect(wireguardKey.safeParse(k).success, `real key ${k}`).toBe(true);
    }
    const real = wgPublicKey();
    const bad: [string, string][] = [
      ["empty", ""],
      ["43 characters, no padding", real.slice(0, 43)],
      ["base64url alphabet", `${real.slice(0, 10)}-${real.slice(11)}`],
      ["33 bytes", Buffer.from(randomBytes(33)).toString("base64")],
      ["31 bytes", Buffer.from(randomBytes(31)).toString("base64")],
      ["non-zero padding bits", real.slice(0, 42) + "B="],
      ["trailing newline", `${real}\n`],
      ["hex", randomBytes(32).toString("hex")],
      ["a NATS key", createUser().getPublicKey()],
    ];
    for (const [what, k] of bad) expect(wireguardKey.safeParse(k).success, `${what}: ${JSON.stringify(k)} should be rejected`).toBe(false);
  });

  it("messages - NATS user keys: public 'U' nkeys only, never seeds or account keys", () => {
    const user = createUser();
    expect(natsUserKey.safeParse(user.getPublicKey()).success, "user public key").toBe(true);
    const bad: [string, string][] = [
      ["user seed", new TextDecoder().decode(user.getSeed())],
      ["account key", createAccount().getPublicKey()],
      ["lowercase", user.getPublicKey().toLowerCase()],
      ["too short", user.getPublicKey().slice(0, 55)],
      ["too long", `${user.getPublicKey()}A`],
      ["base32 alphabet violation", `U${"1".repeat(55)}`],
      ["WireGuard key", wgPublicKey()],
    ];
    for (const [what, k] of bad) expect(natsUserKey.safeParse(k).success, `${what}: ${k.slice(0, 20)}… should be rejected`).toBe(false);
  });

  it("messages - node names are DNS labels", () => {
    for (const ok of ["a", "web-1", "n-web", "x".repeat(63), "0abc"]) expect(nodeName.safeParse(ok).success, `name ${ok}`).toBe(true);
    for (const bad of ["", "-web", "web-", "Web", "web_1", "web.1", "x".repeat(64), "wéb", "a b"]) {
      expect(nodeName.safeParse(bad).success, `name ${JSON.stringify(bad)} should be rejected`).toBe(false);
    }
  });

  it("messages - an enrollment request is strict and names each bad field", () => {
    expect(EnrollRequest.safeParse(validEnroll()).success, "valid request").toBe(true);
    const cases: [string, Record<string, unknown>, string][] = [
      ["unknown field", { ...validEnroll(), nodeId: "n-0123456789abcdef" }, ""],
      ["unknown endpoint kind", { ...validEnroll(), endpoints: { v6: "x" } }, "endpoints"],
      ["bad WireGuard key", { ...validEnroll(), wireguardPublicKey: "abc" }, "wireguardPublicKey"],
      ["bad NATS key", { ...validEnroll(), natsPublicKey: "UABC" }, "natsPublicKey"],
      ["bad overlayAddress", { ...validEnroll(), overlayAddress: "100.64.0.256" }, "overlayAddress"],
      ["port too big", { ...validEnroll(), listenPort: 70000 }, "listenPort"],
      ["version 2", { ...validEnroll(), version: 2 }, "version"],
    ];
    for (const [what, body, path] of cases) {
      const r = EnrollRequest.safeParse(body);
      expect(r.success, `${what}: should be rejected`).toBe(false);
      expect(issuePaths(r), `${what}: issue paths`).toContain(path);
    }
  });

  it("messages - a join key request gets its defaults and refuses a ttl under 60 s", () => {
    expect(JoinKeyCreateRequest.parse({}), "defaults").toEqual({ reusable: false, ttlSeconds: 86400, labels: {} });
    expect(JoinKeyCreateRequest.safeParse({ ttlSeconds: 59 }).success, "ttl 59").toBe(false);
    expect(JoinKeyCreateRequest.safeParse({ ttlSeconds: 60 }).success, "ttl 60").toBe(true);
    expect(JoinKeyCreateRequest.safeParse({ ttlSeconds: 366 * 24 * 3600 }).success, "ttl over a year").toBe(false);
    expect(JoinKeyCreateRequest.safeParse({ key: "weft_x" }).success, "unknown field").toBe(false);
  });

  it("messages - peer records and heartbeats reject records that would break WireGuard", () => {
    const peer = { version: 1, nodeId: "n-0123456789abcdef", name: "a", site: "s", wireguardPublicKey: wgPublicKey(), overlayAddress: "100.64.0.1", allowedIps: ["100.64.0.1/32"], endpoints: {}, updatedAt: "x" };
    expect(PeerRecord.safeParse(peer).success, "valid peer").toBe(true);
    expect(PeerRecord.safeParse({ ...peer, allowedIps: [] }).success, "no allowedIps").toBe(false);
    expect(PeerRecord.safeParse({ ...peer, allowedIps: ["100.64.0.1"] }).success, "allowedIps without a prefix").toBe(false);
    expect(PeerRecord.safeParse({ ...peer, nodeId: "n-XYZ" }).success, "bad node id").toBe(false);
    const hb = { version: 1, nodeId: "n-0123456789abcdef", sentAt: "t", appliedRevision: 3, peers: [{ publicKey: wgPublicKey() }] };
    expect(Heartbeat.safeParse(hb).success, "valid heartbeat").toBe(true);
    expect(Heartbeat.safeParse({ ...hb, appliedRevision: -1 }).success, "negative revision").toBe(false);
    expect(Heartbeat.safeParse({ ...hb, peers: [{ publicKey: "x" }] }).success, "bad peer key").toBe(false);
  });

  it("messages - heartbeat subjects parse back to their node id; anything else does not", () => {
    const id = "n-0123456789abcdef";
    expect(nodeIdFromSubject(Subjects.heartbeat(id)), "own heartbeat subject").toBe(id);
    for (const s of ["weft.v1.node.*.heartbeat", "weft.v1.node.n-XYZ.heartbeat", "weft.v2.node.n-0123456789abcdef.heartbeat", "weft.v1.node.n-0123456789abcdef", "weft.v1.node.n-0123456789abcdef.heartbeat.extra", "x.v1.node.n-0123456789abcdef.heartbeat"]) {
      expect(nodeIdFromSubject(s), `nodeIdFromSubject(${s})`).toBeUndefined();
    }
  });
});

import { createPrivateKey, createPublicKey, verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ed25519PublicKey, ed25519Signer, nkeyRawSeed } from "./ed25519.js";

describe("ed25519", () => {
  it("ed25519 - signs with the seed's key (checked by Node against the derived public key)", () => {
    const seed = new Uint8Array(32).fill(7);
    const sig = ed25519Signer(seed)(new TextEncoder().encode("nonce"));
    expect(sig.length, "signature length").toBe(64);
    const der = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]);
    const pub = createPublicKey(createPrivateKey({ key: der, format: "der", type: "pkcs8" }));
    expect(verify(null, Buffer.from("nonce"), pub, sig), "verifies").toBe(true);
    expect(verify(null, Buffer.from("other"), pub, sig), "another message does not").toBe(false);
  });

  it("ed25519 - refuses a seed that is not 32 bytes", () => {
    expect(() => ed25519Signer(new Uint8Array(31))).toThrow(/32 bytes, got 31/);
  });

  it("ed25519 - derives the public key of RFC 8032's first test vector", () => {
    const seed = Buffer.from("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", "hex");
    expect(Buffer.from(ed25519PublicKey(seed)).toString("hex")).toBe("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    expect(() => ed25519PublicKey(new Uint8Array(33))).toThrow(/32 bytes, got 33/);
  });

  it("ed25519 - nkeyRawSeed is undefined for an object without getRawSeed", () => {
    expect(nkeyRawSeed({})).toBeUndefined();
  });
});

import { createPrivateKey, createPublicKey, verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ed25519Signer, nkeyRawSeed } from "./ed25519.js";

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

  it("ed25519 - nkeyRawSeed is undefined for an object without getRawSeed", () => {
    expect(nkeyRawSeed({})).toBeUndefined();
  });
});

import { createAccount, createUser } from "@nats-io/nkeys";
import { describe, expect, it } from "vitest";
import { nativeSigner } from "./native-signer.js";

describe("nats native signer", () => {
  it("nats native signer - same public key and byte-identical signatures as nkeys", () => {
    for (const kp of [createAccount(), createUser()]) {
      const fast = nativeSigner(kp);
      expect(fast.getPublicKey(), "public key").toBe(kp.getPublicKey());
      for (const text of ["", "a user JWT's header.payload", "x".repeat(5000)]) {
        const input = new TextEncoder().encode(text);
        const got = Buffer.from(fast.sign(input)).toString("hex");
        const want = Buffer.from(kp.sign(input)).toString("hex");
        expect(got, `signature of ${text.length} bytes: got ${got.slice(0, 16)}…, want ${want.slice(0, 16)}…`).toBe(want);
        expect(kp.verify(input, fast.sign(input)), "nkeys verifies the native signature").toBe(true);
      }
    }
  });

  it("nats native signer - signing stays on the wrapped seed's key", () => {
    const a = nativeSigner(createAccount());
    const b = createAccount();
    const input = new TextEncoder().encode("payload");
    expect(b.verify(input, a.sign(input)), "another key must not verify it").toBe(false);
  });

  it("nats native signer - the private key is derived once and handed out as a copy", () => {
    const kp = createUser();
    let derived = 0;
    const counting = new Proxy(kp, {
      get: (target, prop) => (prop === "getPrivateKey" ? () => (derived++, target.getPrivateKey()) : Reflect.get(target, prop)),
    });
    const fast = nativeSigner(counting);
    const first = fast.getPrivateKey();
    first.fill(0);
    const second = fast.getPrivateKey();
    expect(Buffer.from(second).toString("hex"), "same private key as nkeys, unharmed by a caller clearing its copy").toBe(Buffer.from(kp.getPrivateKey()).toString("hex"));
    fast.getPrivateKey();
    expect(derived, "derivations from the seed for three asks").toBe(1);
  });
});

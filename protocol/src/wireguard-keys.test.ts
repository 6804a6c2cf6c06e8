/**
 * WireGuard keys: the RFC 7748 X25519 vector, clamping as `wg genkey` does, validation, and a
 * private key that never prints itself. (The agent's tests also compare with `wg pubkey`.)
 */
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { InvalidKeyError, PrivateKey, assertValidKey, derivePublicKey, generateKeyPair, isValidKey } from "./wireguard-keys.js";

const b64 = (hex: string) => Buffer.from(hex, "hex").toString("base64");

describe("wireguard keys", () => {
  it("wireguard keys - the public key of RFC 7748's Alice is RFC 7748's", () => {
    const priv = b64("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    const want = b64("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    expect(derivePublicKey(priv), "derivePublicKey(RFC 7748 Alice)").toBe(want);
    expect(PrivateKey.fromBase64(priv).publicKey(), "PrivateKey.publicKey()").toBe(want);
  });

  it("wireguard keys - generated pairs are clamped, valid, distinct and consistent", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const { privateKey, publicKey } = generateKeyPair();
      const raw = Buffer.from(privateKey.toBase64(), "base64");
      expect(raw.length, `pair ${i}: private key bytes`).toBe(32);
      expect((raw[0] ?? 0) & 7, `pair ${i}: low 3 bits of byte 0`).toBe(0);
      expect((raw[31] ?? 0) >> 6, `pair ${i}: top 2 bits of byte 31`).toBe(1);
      expect(isValidKey(publicKey), `pair ${i}: public key ${publicKey} valid`).toBe(true);
      expect(derivePublicKey(privateKey.toBase64()), `pair ${i}: derived from the base64 private key`).toBe(publicKey);
      seen.add(publicKey);
    }
    expect(seen.size, "distinct public keys of 10 pairs").toBe(10);
  });

  it("wireguard keys - only standard base64 of exactly 32 bytes is a key", () => {
    const good = generateKeyPair().publicKey;
    const cases: [string, boolean][] = [
      [good, true],
      ["A".repeat(43) + "=", true],
      [good.slice(0, 43), false],
      ["A".repeat(42) + "B=", false],
      ["_".repeat(43) + "=", false],
      ["", false],
    ];
    for (const [key, want] of cases) expect(isValidKey(key), `isValidKey(${JSON.stringify(key)})`).toBe(want);
    expect(() => assertValidKey("nope", "peer key")).toThrow(InvalidKeyError);
    expect(() => PrivateKey.fromBase64("not a key")).toThrow(/invalid WireGuard private key/);
  });

  it("wireguard keys - a private key prints as redacted in strings, JSON and inspect", () => {
    const { privateKey } = generateKeyPair();
    const secret = privateKey.toBase64();
    for (const [how, text] of [
      ["String", String(privateKey)],
      ["JSON", JSON.stringify({ privateKey })],
      ["inspect", inspect({ privateKey })],
    ] as const) {
      expect(text, `${how}: got ${text}`).not.toContain(secret);
      expect(text, `${how}: got ${text}`).toContain("redacted");
    }
  });
});

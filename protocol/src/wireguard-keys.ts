/**
 * WireGuard keys: Curve25519 key pairs from node:crypto (byte-identical to `wg genkey` /
 * `wg pubkey`) and key validation. Shared by the agent (its own key; it keeps the key files) and
 * by anything else that makes a node's key, such as the controller's tests. A private key is a
 * `PrivateKey` object that redacts itself in logs, JSON and inspection.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { inspect } from "node:util";

const KEY_BYTES = 32;
// Standard base64 of 32 bytes: 43 characters, the last of which carries 2 zero bits, then "=".
const KEY_RE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;
// PKCS#8 DER prefix of an X25519 private key (OID 1.3.101.110), followed by the 32 raw bytes.
const X25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const REDACTED = "[redacted WireGuard private key]";

/** A string is not a WireGuard key (standard base64 of exactly 32 bytes), or a file does not hold one. */
export class InvalidKeyError extends Error {
  override readonly name = "InvalidKeyError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** True if `text` is a WireGuard key: standard base64 of exactly 32 bytes. */
export function isValidKey(text: string): boolean {
  return KEY_RE.test(text) && Buffer.from(text, "base64").length === KEY_BYTES;
}

/** Throws `InvalidKeyError` unless `text` is a valid key; `what` names it in the message. */
export function assertValidKey(text: string, what = "key"): void {
  if (!isValidKey(text)) {
    throw new InvalidKeyError(`invalid WireGuard ${what}: expected base64 of 32 bytes (44 characters ending in "=")`);
  }
}

function clamp(raw: Buffer): Buffer {
  const b = Buffer.from(raw);
  b[0] = (b[0] ?? 0) & 248;
  b[31] = ((b[31] ?? 0) & 127) | 64;
  return b;
}

function publicFromRaw(raw: Buffer): string {
  const key = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, raw]), format: "der", type: "pkcs8" });
  const x = createPublicKey(key).export({ format: "jwk" }).x;
  if (x === undefined) throw new InvalidKeyError("X25519 public key export returned no key");
  return Buffer.from(x, "base64url").toString("base64");
}

/** A WireGuard private key. Prints as "[redacted ...]"; call `toBase64()` to reveal it. */
export class PrivateKey {
  readonly #raw: Buffer;
  #publicKey: string | undefined;

  private constructor(raw: Buffer) {
    this.#raw = raw;
  }

  /** Parses a base64 private key (e.g. `wg genkey` output); throws `InvalidKeyError`. */
  static fromBase64(text: string): PrivateKey {
    const s = text.trim();
    assertValidKey(s, "private key");
    return new PrivateKey(Buffer.from(s, "base64"));
  }

  /** A fresh random key, clamped exactly as `wg genkey` does. */
  static generate(): PrivateKey {
    const { privateKey } = generateKeyPairSync("x25519");
    const d = privateKey.export({ format: "jwk" }).d;
    if (d === undefined) throw new InvalidKeyError("X25519 private key export returned no key");
    return new PrivateKey(clamp(Buffer.from(d, "base64url")));
  }

  /** The secret, as standard base64. Never log it. */
  toBase64(): string {
    return this.#raw.toString("base64");
  }

  /** The matching public key, as standard base64 (what `wg pubkey` prints). */
  publicKey(): string {
    this.#publicKey ??= publicFromRaw(this.#raw);
    return this.#publicKey;
  }

  equals(other: PrivateKey): boolean {
    return this.toBase64() === other.toBase64();
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

export interface KeyPair {
  privateKey: PrivateKey;
  publicKey: string;
}

/** Generates a key pair (same format as `wg genkey | tee priv | wg pubkey`). */
export function generateKeyPair(): KeyPair {
  const privateKey = PrivateKey.generate();
  return { privateKey, publicKey: privateKey.publicKey() };
}

/** Derives the public key from a private key (object or base64 text). */
export function derivePublicKey(privateKey: PrivateKey | string): string {
  return (typeof privateKey === "string" ? PrivateKey.fromBase64(privateKey) : privateKey).publicKey();
}

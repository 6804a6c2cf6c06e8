/**
 * Ed25519 signatures and public keys with Node's native crypto from a raw 32-byte seed — the form
 * NATS nkeys keep. `@nats-io/nkeys` signs in JavaScript (tweetnacl) and derives the key pair from
 * the seed again on every call, public key included: milliseconds of CPU per call, and ~60 ms in an
 * agent's V8, which runs JavaScript with the interpreter only (packaging/bin/weft). The controller
 * signs every agent's user JWT and each agent signs the server's nonce on every (re)connect, so
 * both sign natively. Ed25519 is deterministic: the signatures are the same bytes nkeys makes.
 */
import { createPrivateKey, createPublicKey, sign, type KeyObject } from "node:crypto";

/** PKCS#8 DER header of an Ed25519 private key; the 32-byte seed follows. */
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");

/** A signing function for the key of `seed` (32 bytes). Throws when the seed is not 32 bytes. */
export function ed25519Signer(seed: Uint8Array): (data: Uint8Array) => Uint8Array {
  const key = privateKeyOf(seed);
  return (data) => new Uint8Array(sign(null, data, key));
}

/** The raw 32-byte public key of the seed `seed` (32 bytes). Throws when the seed is not 32 bytes. */
export function ed25519PublicKey(seed: Uint8Array): Uint8Array {
  const spki = createPublicKey(privateKeyOf(seed)).export({ format: "der", type: "spki" });
  return new Uint8Array(spki.subarray(spki.length - 32));
}

function privateKeyOf(seed: Uint8Array): KeyObject {
  if (seed.length !== 32) throw new RangeError(`an Ed25519 seed is 32 bytes, got ${seed.length}`);
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: "der", type: "pkcs8" });
}

/** The raw 32-byte seed of an nkeys key pair (its `getRawSeed`, present though not typed), or undefined. */
export function nkeyRawSeed(kp: object): Uint8Array | undefined {
  const raw = (kp as { getRawSeed?: () => Uint8Array }).getRawSeed;
  return typeof raw === "function" ? raw.call(kp) : undefined;
}

/**
 * An nkey pair that signs with Node's native Ed25519. `@nats-io/nkeys` derives the key pair from
 * the seed in JavaScript (tweetnacl) on every `getPublicKey()` and `sign()`, and issuing one user
 * JWT calls them several times: about 20 ms of CPU per enrollment on a loaded 2-core machine
 * (test/bench/scale.ts). Here the public key is derived once and signatures come from
 * `crypto.sign` (Ed25519 is deterministic: the same bytes as nkeys would make). Everything else is
 * the wrapped pair's.
 */
import { createPrivateKey, sign, type KeyObject } from "node:crypto";
import type { KeyPair } from "@nats-io/nkeys";

/** PKCS#8 DER header of an Ed25519 private key; the 32-byte seed follows. */
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");

export function nativeSigner(kp: KeyPair): KeyPair {
  const rawSeed = (kp as KeyPair & { getRawSeed?: () => Uint8Array }).getRawSeed?.bind(kp);
  if (!rawSeed) return kp; // an nkeys without it: keep its own signing
  const key: KeyObject = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, rawSeed()]), format: "der", type: "pkcs8" });
  const publicKey = kp.getPublicKey();
  return {
    getSeed: () => kp.getSeed(),
    getPublicKey: () => publicKey,
    getPrivateKey: () => kp.getPrivateKey(),
    sign: (input: Uint8Array) => new Uint8Array(sign(null, input, key)),
    verify: (input: Uint8Array, sig: Uint8Array) => kp.verify(input, sig),
    seal: (input, recipient, nonce) => kp.seal(input, recipient, nonce),
    open: (message, sender) => kp.open(message, sender),
    clear: () => kp.clear(),
  };
}

/**
 * An nkey pair that signs with Node's native Ed25519 (`@weft/protocol` ed25519.ts). `@nats-io/nkeys`
 * derives the key pair from the seed in JavaScript on every `getPublicKey()` and `sign()`, and
 * issuing one user JWT calls them several times: about 20 ms of CPU per enrollment on a loaded
 * 2-core machine (test/bench/scale.ts). Here the public and private keys are derived once
 * (`@nats-io/jwt` asks for the private key on every JWT it encodes) and signatures are native (the
 * same bytes). Everything else is the wrapped pair's.
 */
import type { KeyPair } from "@nats-io/nkeys";
import { ed25519Signer, nkeyRawSeed } from "@weft/protocol";

export function nativeSigner(kp: KeyPair): KeyPair {
  const seed = nkeyRawSeed(kp);
  if (!seed) return kp; // an nkeys without it: keep its own signing
  const signNative = ed25519Signer(seed);
  const publicKey = kp.getPublicKey();
  let privateKey: Uint8Array | undefined;
  return {
    getSeed: () => kp.getSeed(),
    getPublicKey: () => publicKey,
    // A copy each time: the caller may clear what it gets.
    getPrivateKey: () => (privateKey ??= kp.getPrivateKey()).slice(),
    sign: (input) => signNative(input),
    verify: (input, sig) => kp.verify(input, sig),
    seal: (input, recipient, nonce) => kp.seal(input, recipient, nonce),
    open: (message, sender) => kp.open(message, sender),
    clear: () => kp.clear(),
  };
}

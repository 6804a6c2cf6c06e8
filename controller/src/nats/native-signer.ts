/**
 * An nkey pair that signs with Node's native Ed25519 (`@weft/protocol` ed25519.ts). `@nats-io/nkeys`
 * derives the key pair from the seed in JavaScript on every `getPublicKey()` and `sign()`, and
 * issuing one user JWT calls them several times: about 20 ms of CPU per enrollment on a loaded
 * 2-core machine (test/bench/scale.ts). Here the public key is derived once and signatures are
 * native (the same bytes). Everything else is the wrapped pair's.
 */
import type { KeyPair } from "@nats-io/nkeys";
import { ed25519Signer, nkeyRawSeed } from "@weft/protocol";

export function nativeSigner(kp: KeyPair): KeyPair {
  const seed = nkeyRawSeed(kp);
  if (!seed) return kp; // an nkeys without it: keep its own signing
  const signNative = ed25519Signer(seed);
  const publicKey = kp.getPublicKey();
  return {
    getSeed: () => kp.getSeed(),
    getPublicKey: () => publicKey,
    getPrivateKey: () => kp.getPrivateKey(),
    sign: (input) => signNative(input),
    verify: (input, sig) => kp.verify(input, sig),
    seal: (input, recipient, nonce) => kp.seal(input, recipient, nonce),
    open: (message, sender) => kp.open(message, sender),
    clear: () => kp.clear(),
  };
}

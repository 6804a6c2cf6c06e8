/**
 * The agent's NATS authenticator: what `jwtAuthenticator(userJwt, seed)` of `@nats-io/nats-core`
 * sends (the user JWT, this node's public nkey, the server's nonce signed with its seed), with the
 * public key derived once, natively (state/nkey.ts), and the nonce signed by Node's native Ed25519 (`@weft/protocol`) instead
 * of tweetnacl re-deriving the key pair twice per connect. The same bytes; a few milliseconds of
 * CPU less per (re)connect, which matters when thousands of agents reconnect to a restarted
 * server, and for a process holding many of them (test/bench/scale.ts).
 */
import { jwtAuthenticator, type Authenticator } from "@nats-io/transport-node";
import { encode, fromSeed } from "@nats-io/nkeys";
import { ed25519Signer, nkeyRawSeed } from "@weft/protocol";
import { natsPublicKey } from "../state/nkey.js";

export function agentAuthenticator(userJwt: () => string, seed: Uint8Array): Authenticator {
  const kp = fromSeed(seed);
  const raw = nkeyRawSeed(kp);
  if (!raw) return jwtAuthenticator(userJwt, seed); // an nkeys without it: the library's own
  const nkey = natsPublicKey(seed);
  const signNative = ed25519Signer(raw);
  return (nonce?: string) => ({ jwt: userJwt(), nkey, sig: nonce ? encode(signNative(new TextEncoder().encode(nonce))) : "" });
}

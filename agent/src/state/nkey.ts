/**
 * The agent's NATS identity: a user nkey generated on the host. The seed stays
 * in `<stateDir>/nats.seed` (mode 0600); only the public key is sent.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { createUser } from "@nats-io/nkeys";
import { Codec } from "@nats-io/nkeys/lib/codec.js";
import { ed25519PublicKey } from "@weft/protocol";
import { StateError } from "../errors.js";
import { NATS_SEED_FILE, writeFileAtomic } from "./store.js";

export interface NatsIdentity {
  publicKey: string;
  seed: Uint8Array;
}

export async function loadOrCreateNatsIdentity(dir: string): Promise<NatsIdentity> {
  const path = join(dir, NATS_SEED_FILE);
  try {
    const info = await stat(path);
    if ((info.mode & 0o077) !== 0) throw new StateError(`${path} is readable by others; run \`chmod 600 ${path}\``);
    const seed = new TextEncoder().encode((await readFile(path, "utf8")).trim());
    return { publicKey: natsPublicKey(seed), seed };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      if (err instanceof StateError) throw err;
      throw new StateError(`cannot load NATS seed ${path}`, { cause: err });
    }
  }
  const kp = createUser();
  const seed = kp.getSeed();
  await writeFileAtomic(path, `${new TextDecoder().decode(seed)}\n`);
  return { publicKey: natsPublicKey(seed), seed };
}

/**
 * The public nkey of an encoded nkeys seed (`SU…` → `U…`), derived with Node's native Ed25519:
 * nkeys' own `getPublicKey` does the curve arithmetic in JavaScript, ~60 ms of CPU per call in the
 * agent's interpreter-only V8 (twice at every start). Throws NKeysError for a malformed seed.
 */
export function natsPublicKey(seed: Uint8Array): string {
  const { prefix, buf } = Codec.decodeSeed(seed);
  return new TextDecoder().decode(Codec.encode(prefix, ed25519PublicKey(buf)));
}

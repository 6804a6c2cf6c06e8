/** Checks of user public nkeys (`U…`) that agents present: never a seed, never another key type. */
import { fromPublic } from "@nats-io/jwt";
import { InvalidUserKeyError } from "./errors.js";

/** True if key is a valid user public nkey. */
export function isUserPublicKey(key: unknown): key is string {
  try {
    assertUserPublicKey(key);
    return true;
  } catch {
    return false;
  }
}

/** Throws InvalidUserKeyError unless key is a valid user public nkey. */
export function assertUserPublicKey(key: unknown): asserts key is string {
  if (typeof key !== "string") throw new InvalidUserKeyError(`got ${typeof key}`);
  if (key.startsWith("S")) throw new InvalidUserKeyError("got a seed, which must never leave the agent's host");
  if (!key.startsWith("U")) throw new InvalidUserKeyError(`got a key with prefix "${key.slice(0, 1)}"`);
  try {
    fromPublic(key);
  } catch (cause) {
    throw new InvalidUserKeyError("not a valid public nkey (bad length, encoding or checksum)", { cause });
  }
}

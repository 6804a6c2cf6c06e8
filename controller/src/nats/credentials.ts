/**
 * A user credential the controller holds for itself (its own connections, the system user): the
 * JWT and the user seed, which redacts itself in JSON and util.inspect.
 */
import { inspect } from "node:util";
import { fmtCreds, fromSeed } from "@nats-io/jwt";

export const REDACTED = "[redacted]";

/** A user credential held by the controller itself (JWT plus the user seed). */
export class UserCredentials {
  readonly #seed: Uint8Array;
  constructor(
    readonly jwt: string,
    readonly publicKey: string,
    seed: Uint8Array,
  ) {
    this.#seed = seed;
  }
  /** The user's nkey seed, for jwtAuthenticator. Never log it. */
  seed(): Uint8Array {
    return this.#seed;
  }
  /** The content of a `.creds` file (JWT and seed) for the nats CLI; mode it 0600. */
  credsFile(): Uint8Array {
    return fmtCreds(this.jwt, fromSeed(this.#seed));
  }
  toJSON(): Record<string, string> {
    return { publicKey: this.publicKey, jwt: this.jwt, seed: REDACTED };
  }
  [inspect.custom](): string {
    return `UserCredentials { publicKey: ${this.publicKey}, seed: ${REDACTED} }`;
  }
}

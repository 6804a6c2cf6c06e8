/**
 * The controller's NATS signing material (decentralized JWT auth): an operator, a
 * system account, the WEFT account that holds all state, and an account signing key
 * that signs user JWTs. Persisted under the state directory (authority-file.ts), so
 * user JWTs issued before a restart stay valid after it; the JWTs and claims are made
 * in jwts.ts, user nkeys checked in nkeys.ts.
 *
 * The WEFT account JWT carries the revocation list (revocations.ts): revokeUser
 * persists an entry, then re-signs the account JWT; access.ts pushes that JWT to
 * the running server. Every account JWT signed here holds the whole list.
 *
 * Seeds never leave this module except through `UserCredentials` of controller
 * and system users, and both types redact themselves in JSON and util.inspect.
 */
import { inspect } from "node:util";
import { createAccount, createOperator, createUser, encodeUser, type KeyPair } from "@nats-io/jwt";
import { REDACTED, UserCredentials } from "./credentials.js";
import { ClockBehindRevocationError } from "./errors.js";
import { agentUserClaims, controllerUserClaims, signAccount, SYSTEM_ACCOUNT_NAME, systemUserClaims, trustChainJwts, WEFT_ACCOUNT_NAME, type AuthorityKeys } from "./jwts.js";
import { assertUserPublicKey, isUserPublicKey } from "./nkeys.js";
import { assertNodeId } from "./permissions.js";
import { mergeRevocations, readRevocations, writeRevocations, type Revocations } from "./revocations.js";
import { nativeSigner } from "./native-signer.js";

/**
 * Longest wait issueAgentUser accepts so that a JWT for a revoked key is issued after
 * its revocation second; a longer one means the clock went back.
 */
const MAX_REVOCATION_WAIT_MS = 2_000;

/** Default lifetime of an agent's user JWT; the agent renews it at half-life (session/credentials.ts). */
export const AGENT_CREDENTIAL_LIFETIME_SECONDS = 24 * 3600;
/**
 * The longest lifetime an agent JWT may be given. A revocation is pruned once this much time (and
 * a minute of clock skew) has passed since it: every JWT it covers has expired by then.
 */
export const AGENT_CREDENTIAL_MAX_LIFETIME_SECONDS = 7 * 24 * 3600;
const PRUNE_SKEW_SECONDS = 60;

export interface IssueAgentUserOptions {
  /** The agent's node id (NODE_ID_PATTERN). */
  nodeId: string;
  /** The user public nkey the agent generated on its host ('U…'); its seed stays there. */
  userPublicKey: string;
  /** Expiry of the JWT; default now + the authority's agent credential lifetime (24 h). */
  expiresAt?: Date;
}

/** The result of Authority.revokeUser. */
export interface Revocation {
  userPublicKey: string;
  /** Every JWT of this user issued at or before this second is refused. */
  revokedAt: Date;
  /** The key was revoked before (its time moved forward to now). */
  wasRevoked: boolean;
}

export interface AuthorityOptions {
  /** Revoked user keys → unix seconds (readRevocations). */
  revocations?: Revocations;
  /** Authority directory: revokeUser persists the list there. Without it the list lives in memory only (tests). */
  dir?: string;
  /**
   * Unix seconds since which every agent JWT carries an expiry (set when the authority was
   * created). Absent: the revocation list is never pruned (an older JWT may never expire).
   */
  agentJwtsExpireSince?: number;
  /** Lifetime of agent JWTs in seconds (60 … 7 days). Default 24 h. */
  agentCredentialLifetimeSeconds?: number;
}

export interface ServerConfigFragmentOptions {
  /**
   * Directory for a `full` account resolver: account JWTs pushed at run time (revocations)
   * are stored there and survive a restart of that server. Without it the fragment uses a
   * MEMORY resolver, which applies pushed JWTs until the server restarts, then starts again
   * from this fragment's preload.
   */
  resolverDir?: string;
}

/** The operator, the accounts and the signing key, with the JWTs derived from them. */
export class Authority {
  readonly #keys: AuthorityKeys;
  readonly #dir: string | undefined;
  readonly #expireSince: number | undefined;
  #lifetimeSeconds = AGENT_CREDENTIAL_LIFETIME_SECONDS;
  #revocations: ReadonlyMap<string, number>;
  #accountJwt: string;
  /** Serializes revokeUser calls (read, merge, write, re-sign). */
  #queue: Promise<void> = Promise.resolve();
  readonly operatorPublicKey: string;
  readonly systemAccountPublicKey: string;
  readonly accountPublicKey: string;
  readonly signingKeyPublicKey: string;
  readonly operatorJwt: string;
  readonly systemAccountJwt: string;

  private constructor(parts: {
    keys: AuthorityKeys;
    dir: string | undefined;
    expireSince: number | undefined;
    revocations: ReadonlyMap<string, number>;
    operatorJwt: string;
    systemAccountJwt: string;
    accountJwt: string;
  }) {
    // Every enrollment and credential renewal signs a user JWT with the signing key: natively.
    this.#keys = { ...parts.keys, signingKey: nativeSigner(parts.keys.signingKey) };
    this.#dir = parts.dir;
    this.#expireSince = parts.expireSince;
    this.#revocations = parts.revocations;
    this.#accountJwt = parts.accountJwt;
    this.operatorPublicKey = parts.keys.operator.getPublicKey();
    this.systemAccountPublicKey = parts.keys.systemAccount.getPublicKey();
    this.accountPublicKey = parts.keys.account.getPublicKey();
    this.signingKeyPublicKey = parts.keys.signingKey.getPublicKey();
    this.operatorJwt = parts.operatorJwt;
    this.systemAccountJwt = parts.systemAccountJwt;
  }

  /** The current WEFT account JWT (operator-signed, with the revocation list). Changes on revokeUser. */
  get accountJwt(): string {
    return this.#accountJwt;
  }

  /** Builds the JWTs for a set of keys. Account JWTs are re-signed on every load. */
  static async fromKeys(keys: AuthorityKeys, opts: AuthorityOptions = {}): Promise<Authority> {
    const { operatorJwt, systemAccountJwt } = await trustChainJwts(keys);
    const revocations = new Map(opts.revocations ?? []);
    const accountJwt = await signAccount(keys, revocations);
    const authority = new Authority({ keys, dir: opts.dir, expireSince: opts.agentJwtsExpireSince, revocations, operatorJwt, systemAccountJwt, accountJwt });
    if (opts.agentCredentialLifetimeSeconds !== undefined) authority.agentCredentialLifetimeSeconds = opts.agentCredentialLifetimeSeconds;
    return authority;
  }

  /** Lifetime given to agent JWTs (seconds, 60 … 7 days). */
  get agentCredentialLifetimeSeconds(): number {
    return this.#lifetimeSeconds;
  }

  set agentCredentialLifetimeSeconds(seconds: number) {
    if (!Number.isInteger(seconds) || seconds < 60 || seconds > AGENT_CREDENTIAL_MAX_LIFETIME_SECONDS) {
      throw new RangeError(`agent credential lifetime: want 60 … ${AGENT_CREDENTIAL_MAX_LIFETIME_SECONDS} seconds, got ${seconds}`);
    }
    this.#lifetimeSeconds = seconds;
  }

  /**
   * Drops revocations that no longer cover a valid JWT: every agent JWT expires within
   * AGENT_CREDENTIAL_MAX_LIFETIME_SECONDS of its issue, so a revocation older than that (plus a
   * minute) covers only expired JWTs. Only for authorities whose agent JWTs have always expired
   * (agentJwtsExpireSince); others keep their list. Persists and re-signs when something was
   * dropped; push the new account JWT afterwards. Returns the keys dropped.
   */
  async pruneRevocations(now: Date = new Date()): Promise<string[]> {
    if (this.#expireSince === undefined) return [];
    const run = this.#queue.then(async () => {
      const cutoff = Math.floor(now.getTime() / 1000) - AGENT_CREDENTIAL_MAX_LIFETIME_SECONDS - PRUNE_SKEW_SECONDS;
      let current = this.#revocations;
      if (this.#dir !== undefined) current = mergeRevocations(await readRevocations(this.#dir, isUserPublicKey), current);
      const dropped = [...current].filter(([, at]) => at < cutoff).map(([key]) => key);
      if (dropped.length === 0) return [];
      const next = new Map([...current].filter(([, at]) => at >= cutoff));
      if (this.#dir !== undefined) await writeRevocations(this.#dir, next);
      this.#accountJwt = await signAccount(this.#keys, next);
      this.#revocations = next;
      return dropped;
    });
    this.#queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Whether a revocation made at `at` (unix seconds) covers only expired JWTs by `now` (pruneRevocations drops it). */
  prunable(at: number, now: Date = new Date()): boolean {
    if (this.#expireSince === undefined) return false;
    return at < Math.floor(now.getTime() / 1000) - AGENT_CREDENTIAL_MAX_LIFETIME_SECONDS - PRUNE_SKEW_SECONDS;
  }

  /**
   * Takes in revocations made elsewhere (another controller, through the store): per key the
   * later time wins; persisted and re-signed when anything changed (push the new JWT afterwards).
   * Entries pruneRevocations would drop are left out. Returns the keys added or moved forward.
   */
  async adoptRevocations(list: Revocations, now: Date = new Date()): Promise<string[]> {
    const run = this.#queue.then(async () => {
      const changed = [...list].filter(([key, at]) => isUserPublicKey(key) && Number.isSafeInteger(at) && at > 0 && at > (this.#revocations.get(key) ?? 0) && !this.prunable(at, now));
      if (changed.length === 0) return [];
      let next = mergeRevocations(this.#revocations, new Map(changed));
      if (this.#dir !== undefined) {
        next = mergeRevocations(await readRevocations(this.#dir, isUserPublicKey), next);
        await writeRevocations(this.#dir, next);
      }
      this.#accountJwt = await signAccount(this.#keys, next);
      this.#revocations = next;
      return changed.map(([key]) => key);
    });
    this.#queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Fresh, unpersisted signing material (tests; the controller uses loadOrCreateAuthority). */
  static generate(): Promise<Authority> {
    return Authority.fromKeys(
      { operator: createOperator(), systemAccount: createAccount(), account: createAccount(), signingKey: createAccount() },
      { agentJwtsExpireSince: Math.floor(Date.now() / 1000) },
    );
  }

  /**
   * Revokes every JWT of a user issued up to now: records `{ userPublicKey: now }`
   * (persisted first, merged with what is on disk), then re-signs the account JWT
   * (`accountJwt`). It does not reach the server: push the new JWT with NatsAccess or
   * pushAccountClaims. Revoking a key again moves its time forward (a host that
   * re-enrolled with the same key and was deleted again). Throws InvalidUserKeyError,
   * or AuthorityStateError if the list cannot be written (then nothing changed).
   */
  async revokeUser(userPublicKey: string): Promise<Revocation> {
    assertUserPublicKey(userPublicKey);
    const run = this.#queue.then(() => this.#revoke(userPublicKey));
    this.#queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async #revoke(userPublicKey: string): Promise<Revocation> {
    const previous = this.#revocations.get(userPublicKey);
    const at = Math.max(previous ?? 0, Math.floor(Date.now() / 1000));
    let next = mergeRevocations(this.#revocations, new Map([[userPublicKey, at]]));
    if (this.#dir !== undefined) {
      next = mergeRevocations(await readRevocations(this.#dir, isUserPublicKey), next);
      await writeRevocations(this.#dir, next);
    }
    this.#accountJwt = await signAccount(this.#keys, next);
    this.#revocations = next;
    return { userPublicKey, revokedAt: new Date(at * 1000), wasRevoked: previous !== undefined };
  }

  /** When the user's JWTs were revoked (those issued at or before that second), or undefined. */
  revokedAt(userPublicKey: string): Date | undefined {
    const at = this.#revocations.get(userPublicKey);
    return at === undefined ? undefined : new Date(at * 1000);
  }

  /** A copy of the revocation list: user public nkey → unix seconds. */
  revocations(): ReadonlyMap<string, number> {
    return new Map(this.#revocations);
  }

  /**
   * A user of the system account that may only push the WEFT account JWT
   * (`$SYS.REQ.ACCOUNT.<WEFT>.CLAIMS.UPDATE`) and receive replies under
   * SYSTEM_USER_INBOX_PREFIX; connect it with `inboxPrefix: SYSTEM_USER_INBOX_PREFIX`.
   */
  async issueSystemUser(opts: { name?: string } = {}): Promise<UserCredentials> {
    const user = createUser();
    const jwt = await encodeUser(opts.name ?? "weft-controller-system", user, this.#keys.systemAccount, systemUserClaims(this.accountPublicKey));
    return new UserCredentials(jwt, user.getPublicKey(), user.getSeed());
  }

  /**
   * A user with full access to the WEFT account, for the controller's own connections.
   * Each call makes a new user nkey; the seed stays in the returned object.
   */
  async issueControllerUser(opts: { name?: string } = {}): Promise<UserCredentials> {
    const user = createUser();
    const jwt = await encodeUser(opts.name ?? "weft-controller", user, this.accountPublicKey, controllerUserClaims(), {
      signer: this.#keys.signingKey,
    });
    return new UserCredentials(jwt, user.getPublicKey(), user.getSeed());
  }

  /**
   * A user JWT for one agent, bound to the public nkey the agent generated. Its
   * permissions are agentPermissions(nodeId). A key revoked before (a host that
   * re-enrolls after its node was deleted) gets a JWT issued after the revocation
   * second, waiting up to a second for it. Throws InvalidNodeIdError,
   * InvalidUserKeyError or ClockBehindRevocationError.
   */
  async issueAgentUser(opts: IssueAgentUserOptions): Promise<string> {
    assertNodeId(opts.nodeId);
    assertUserPublicKey(opts.userPublicKey);
    await this.#waitPastRevocation(opts.userPublicKey);
    const claims = agentUserClaims(opts.nodeId);
    const expiresAt = opts.expiresAt ?? new Date(Date.now() + this.#lifetimeSeconds * 1000);
    const encodeOpts: { signer: KeyPair; exp: number } = { signer: this.#keys.signingKey, exp: Math.floor(expiresAt.getTime() / 1000) };
    return encodeUser(`agent-${opts.nodeId}`, opts.userPublicKey, this.accountPublicKey, claims, encodeOpts);
  }

  /** Resolves once a JWT signed now (iat, whole seconds) is past the key's revocation. */
  async #waitPastRevocation(userPublicKey: string): Promise<void> {
    const at = this.#revocations.get(userPublicKey);
    if (at === undefined) return;
    const wait = (at + 1) * 1000 - Date.now();
    if (wait <= 0) return;
    if (wait > MAX_REVOCATION_WAIT_MS) throw new ClockBehindRevocationError(userPublicKey, new Date(at * 1000));
    await new Promise((r) => setTimeout(r, wait));
  }

  /**
   * nats-server configuration that makes a server trust Weft: operator JWT, system
   * account, and a resolver preloaded with both account JWTs (the WEFT one with the
   * current revocation list). With `resolverDir` the resolver is `full`, so JWTs pushed
   * at run time persist there; without it, MEMORY. Paste it into an external server's
   * config (it holds no secrets).
   */
  serverConfigFragment(opts: ServerConfigFragmentOptions = {}): string {
    const resolver =
      opts.resolverDir === undefined
        ? [
            "# MEMORY resolver: account JWTs the controller pushes at run time (node revocations)",
            "# last until this server restarts; the controller pushes again when it reconnects.",
            "resolver: MEMORY",
          ]
        : [
            "# full resolver: account JWTs the controller pushes at run time (node revocations)",
            "# are stored in dir and survive restarts; the preload below replaces an older one.",
            `resolver: { type: full, dir: ${JSON.stringify(opts.resolverDir)}, allow_delete: false, interval: "2m" }`,
          ];
    return [
      "# Weft: decentralized JWT auth (operator, system account, WEFT account).",
      `# operator ${this.operatorPublicKey}`,
      `operator: ${JSON.stringify(this.operatorJwt)}`,
      `system_account: ${JSON.stringify(this.systemAccountPublicKey)}`,
      ...resolver,
      "resolver_preload: {",
      `  # ${SYSTEM_ACCOUNT_NAME}`,
      `  ${JSON.stringify(this.systemAccountPublicKey)}: ${JSON.stringify(this.systemAccountJwt)}`,
      `  # ${WEFT_ACCOUNT_NAME} (${this.#revocations.size} revoked users)`,
      `  ${JSON.stringify(this.accountPublicKey)}: ${JSON.stringify(this.#accountJwt)}`,
      "}",
      "",
    ].join("\n");
  }

  toJSON(): Record<string, string | number> {
    return {
      operator: this.operatorPublicKey,
      systemAccount: this.systemAccountPublicKey,
      account: this.accountPublicKey,
      signingKey: this.signingKeyPublicKey,
      revokedUsers: this.#revocations.size,
      seeds: REDACTED,
    };
  }

  [inspect.custom](): string {
    return `Authority { operator: ${this.operatorPublicKey}, account: ${this.accountPublicKey}, seeds: ${REDACTED} }`;
  }
}

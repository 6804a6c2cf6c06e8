/**
 * The controller's NATS signing material (decentralized JWT auth): an operator, a
 * system account, the WEFT account that holds all state, and an account signing key
 * that signs user JWTs. Generated once and persisted under the state directory, so
 * user JWTs issued before a restart stay valid after it.
 *
 * The WEFT account JWT carries the revocation list (revocations.ts): revokeUser
 * persists an entry, then re-signs the account JWT; access.ts pushes that JWT to
 * the running server. Every account JWT signed here holds the whole list.
 *
 * Seeds never leave this module except through `UserCredentials` of controller
 * and system users, and both types redact themselves in JSON and util.inspect.
 */
import { randomBytes } from "node:crypto";
import { chmod, link, mkdir, readFile, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { inspect } from "node:util";
import {
  createAccount,
  createOperator,
  createUser,
  encodeAccount,
  encodeOperator,
  encodeUser,
  fmtCreds,
  fromPublic,
  fromSeed,
  type Account,
  type KeyPair,
  type User,
} from "@nats-io/jwt";
import { AuthorityStateError, ClockBehindRevocationError, InvalidUserKeyError } from "./errors.js";
import { agentPermissions, assertNodeId } from "./permissions.js";
import { mergeRevocations, readRevocations, writeRevocations, type Revocations } from "./revocations.js";

/** Name of the account that holds Weft's buckets and subjects. */
export const WEFT_ACCOUNT_NAME = "WEFT";
const SYSTEM_ACCOUNT_NAME = "SYS";
const OPERATOR_NAME = "weft";
/** File inside the authority directory. */
const AUTH_FILE = "authority.json";
const FILE_VERSION = 1;
/** Inbox prefix of system users (issueSystemUser); pass it as the connection's `inboxPrefix`. */
export const SYSTEM_USER_INBOX_PREFIX = "_INBOX_weft_sys";
/**
 * Longest wait issueAgentUser accepts so that a JWT for a revoked key is issued after
 * its revocation second; a longer one means the clock went back.
 */
const MAX_REVOCATION_WAIT_MS = 2_000;

const redacted = "[redacted]";

interface AuthorityFile {
  version: number;
  operatorSeed: string;
  systemAccountSeed: string;
  accountSeed: string;
  accountSigningKeySeed: string;
}

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
    return { publicKey: this.publicKey, jwt: this.jwt, seed: redacted };
  }
  [inspect.custom](): string {
    return `UserCredentials { publicKey: ${this.publicKey}, seed: ${redacted} }`;
  }
}

export interface IssueAgentUserOptions {
  /** The agent's node id (NODE_ID_PATTERN). */
  nodeId: string;
  /** The user public nkey the agent generated on its host ('U…'); its seed stays there. */
  userPublicKey: string;
  /** Optional expiry of the JWT; none by default (revoke through the account instead). */
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
    revocations: ReadonlyMap<string, number>;
    operatorJwt: string;
    systemAccountJwt: string;
    accountJwt: string;
  }) {
    this.#keys = parts.keys;
    this.#dir = parts.dir;
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
    const { operator, systemAccount } = keys;
    const operatorJwt = await encodeOperator(OPERATOR_NAME, operator, {
      system_account: systemAccount.getPublicKey(),
    });
    // An account JWT without limits allows zero connections: spell them out.
    const systemClaims: Partial<Account> = { limits: NATS_LIMITS };
    const systemAccountJwt = await encodeAccount(SYSTEM_ACCOUNT_NAME, systemAccount, systemClaims, { signer: operator });
    const revocations = new Map(opts.revocations ?? []);
    const accountJwt = await signAccount(keys, revocations);
    return new Authority({ keys, dir: opts.dir, revocations, operatorJwt, systemAccountJwt, accountJwt });
  }

  /** Fresh, unpersisted signing material (tests; the controller uses loadOrCreateAuthority). */
  static generate(): Promise<Authority> {
    return Authority.fromKeys({
      operator: createOperator(),
      systemAccount: createAccount(),
      account: createAccount(),
      signingKey: createAccount(),
    });
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
    const claims: Partial<User> = {
      pub: { allow: [claimsUpdateSubject(this.accountPublicKey)], deny: [] },
      sub: { allow: [`${SYSTEM_USER_INBOX_PREFIX}.>`], deny: [] },
      bearer_token: false,
      tags: ["weft-controller-system"],
    };
    const jwt = await encodeUser(opts.name ?? "weft-controller-system", user, this.#keys.systemAccount, claims);
    return new UserCredentials(jwt, user.getPublicKey(), user.getSeed());
  }

  /**
   * A user with full access to the WEFT account, for the controller's own connections.
   * Each call makes a new user nkey; the seed stays in the returned object.
   */
  async issueControllerUser(opts: { name?: string } = {}): Promise<UserCredentials> {
    const user = createUser();
    const claims: Partial<User> = { tags: ["weft-controller"] };
    const jwt = await encodeUser(opts.name ?? "weft-controller", user, this.accountPublicKey, claims, {
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
    const perms = agentPermissions(opts.nodeId);
    const claims: Partial<User> = {
      pub: { allow: [...perms.pub.allow], deny: [] },
      sub: { allow: [...perms.sub.allow], deny: [] },
      subs: -1,
      data: -1,
      payload: -1,
      bearer_token: false,
      allowed_connection_types: ["STANDARD"],
      tags: ["weft-agent"],
    };
    const encodeOpts: { signer: KeyPair; exp?: number } = { signer: this.#keys.signingKey };
    if (opts.expiresAt !== undefined) encodeOpts.exp = Math.floor(opts.expiresAt.getTime() / 1000);
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
      seeds: redacted,
    };
  }

  [inspect.custom](): string {
    return `Authority { operator: ${this.operatorPublicKey}, account: ${this.accountPublicKey}, seeds: ${redacted} }`;
  }
}

/** The subject on which servers take an updated JWT for account (request/reply, system account only). */
export function claimsUpdateSubject(account: string): string {
  return `$SYS.REQ.ACCOUNT.${account}.CLAIMS.UPDATE`;
}

const NATS_LIMITS = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
};

/** The WEFT account JWT, operator-signed, carrying the whole revocation list. */
async function signAccount(keys: AuthorityKeys, revocations: Revocations): Promise<string> {
  const claims: Partial<Account> = {
    limits: { ...NATS_LIMITS, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 },
    signing_keys: [keys.signingKey.getPublicKey()],
  };
  if (revocations.size > 0) claims.revocations = Object.fromEntries(revocations);
  return encodeAccount(WEFT_ACCOUNT_NAME, keys.account, claims, { signer: keys.operator });
}

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

/** The file that holds the seeds inside an authority directory. */
export function authorityPath(dir: string): string {
  return join(dir, AUTH_FILE);
}

/**
 * Loads the authority persisted in dir (e.g. `<stateDir>/authority`), with its
 * revocation list. Throws AuthorityStateError if the keys are missing, corrupt, or
 * readable by group/others, or if the revocation list is corrupt or writable by them.
 */
export async function loadAuthority(dir: string): Promise<Authority> {
  const path = authorityPath(dir);
  let text: string;
  try {
    const st = await stat(path);
    if ((st.mode & 0o077) !== 0) {
      throw new AuthorityStateError(
        path,
        `mode ${(st.mode & 0o777).toString(8)} lets others read the signing keys; chmod 600 it`,
      );
    }
    text = await readFile(path, "utf8");
  } catch (err) {
    if (err instanceof AuthorityStateError) throw err;
    throw new AuthorityStateError(path, "cannot read", { cause: err });
  }
  const keys = parseAuthorityFile(path, text);
  return Authority.fromKeys(keys, { dir, revocations: await readRevocations(dir, isUserPublicKey) });
}

/**
 * Loads the authority persisted in dir, or generates and persists a new one there
 * (dir 0700, file 0600) if there is none. Safe against two processes racing: the file
 * is published with an exclusive link, and the loser loads the winner's keys.
 */
export async function loadOrCreateAuthority(dir: string): Promise<Authority> {
  const path = authorityPath(dir);
  try {
    return await loadAuthority(dir);
  } catch (err) {
    if (!(err instanceof AuthorityStateError) || !isNotFound(err.cause)) throw err;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const keys: AuthorityKeys = {
    operator: createOperator(),
    systemAccount: createAccount(),
    account: createAccount(),
    signingKey: createAccount(),
  };
  const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    await writeFile(tmp, JSON.stringify(serializeKeys(keys), null, 2) + "\n", { mode: 0o600, flag: "wx" });
    await link(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return loadAuthority(dir);
    throw new AuthorityStateError(path, "cannot write", { cause: err });
  } finally {
    await unlink(tmp).catch(() => {});
  }
  return Authority.fromKeys(keys, { dir, revocations: await readRevocations(dir, isUserPublicKey) });
}

function parseAuthorityFile(path: string, text: string): AuthorityKeys {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new AuthorityStateError(path, "not valid JSON", { cause });
  }
  const f = raw as Partial<AuthorityFile> | null;
  if (f === null || typeof f !== "object" || f.version !== FILE_VERSION) {
    throw new AuthorityStateError(path, `unsupported format (want version ${FILE_VERSION})`);
  }
  const seed = (field: keyof AuthorityFile, prefix: string): KeyPair => {
    const v = f[field];
    if (typeof v !== "string" || !v.startsWith(prefix)) {
      throw new AuthorityStateError(path, `${field}: missing or not a ${prefix}… seed`);
    }
    try {
      return fromSeed(new TextEncoder().encode(v));
    } catch (cause) {
      throw new AuthorityStateError(path, `${field}: invalid seed`, { cause });
    }
  };
  return {
    operator: seed("operatorSeed", "SO"),
    systemAccount: seed("systemAccountSeed", "SA"),
    account: seed("accountSeed", "SA"),
    signingKey: seed("accountSigningKeySeed", "SA"),
  };
}

/** The four key pairs an Authority is made of. */
export interface AuthorityKeys {
  operator: KeyPair;
  systemAccount: KeyPair;
  account: KeyPair;
  signingKey: KeyPair;
}

function serializeKeys(keys: AuthorityKeys): AuthorityFile {
  const dec = new TextDecoder();
  return {
    version: FILE_VERSION,
    operatorSeed: dec.decode(keys.operator.getSeed()),
    systemAccountSeed: dec.decode(keys.systemAccount.getSeed()),
    accountSeed: dec.decode(keys.account.getSeed()),
    accountSigningKeySeed: dec.decode(keys.signingKey.getSeed()),
  };
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
}

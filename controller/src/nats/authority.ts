/**
 * The controller's NATS signing material (decentralized JWT auth): an operator, a
 * system account, the WEFT account that holds all state, and an account signing key
 * that signs user JWTs. Generated once and persisted under the state directory, so
 * user JWTs issued before a restart stay valid after it.
 *
 * Seeds never leave this module except through `UserCredentials` of controller
 * users, and both types redact themselves in JSON and util.inspect.
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
import { AuthorityStateError, InvalidUserKeyError } from "./errors.js";
import { agentPermissions, assertNodeId } from "./permissions.js";

/** Name of the account that holds Weft's buckets and subjects. */
export const WEFT_ACCOUNT_NAME = "WEFT";
const SYSTEM_ACCOUNT_NAME = "SYS";
const OPERATOR_NAME = "weft";
/** File inside the authority directory. */
const AUTH_FILE = "authority.json";
const FILE_VERSION = 1;

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

/** The operator, the accounts and the signing key, with the JWTs derived from them. */
export class Authority {
  readonly #signingKey: KeyPair;
  readonly operatorPublicKey: string;
  readonly systemAccountPublicKey: string;
  readonly accountPublicKey: string;
  readonly signingKeyPublicKey: string;
  readonly operatorJwt: string;
  readonly systemAccountJwt: string;
  readonly accountJwt: string;

  private constructor(parts: {
    operator: KeyPair;
    systemAccount: KeyPair;
    account: KeyPair;
    signingKey: KeyPair;
    operatorJwt: string;
    systemAccountJwt: string;
    accountJwt: string;
  }) {
    this.#signingKey = parts.signingKey;
    this.operatorPublicKey = parts.operator.getPublicKey();
    this.systemAccountPublicKey = parts.systemAccount.getPublicKey();
    this.accountPublicKey = parts.account.getPublicKey();
    this.signingKeyPublicKey = parts.signingKey.getPublicKey();
    this.operatorJwt = parts.operatorJwt;
    this.systemAccountJwt = parts.systemAccountJwt;
    this.accountJwt = parts.accountJwt;
  }

  /** Builds the JWTs for a set of keys. Account JWTs are re-signed on every load. */
  static async fromKeys(keys: AuthorityKeys): Promise<Authority> {
    const { operator, systemAccount, account, signingKey } = keys;
    const operatorJwt = await encodeOperator(OPERATOR_NAME, operator, {
      system_account: systemAccount.getPublicKey(),
    });
    const natsLimits = {
      subs: -1,
      data: -1,
      payload: -1,
      imports: -1,
      exports: -1,
      wildcards: true,
      conn: -1,
      leaf: -1,
    };
    // An account JWT without limits allows zero connections: spell them out.
    const systemClaims: Partial<Account> = { limits: natsLimits };
    const accountClaims: Partial<Account> = {
      limits: { ...natsLimits, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 },
      signing_keys: [signingKey.getPublicKey()],
    };
    const systemAccountJwt = await encodeAccount(SYSTEM_ACCOUNT_NAME, systemAccount, systemClaims, { signer: operator });
    const accountJwt = await encodeAccount(WEFT_ACCOUNT_NAME, account, accountClaims, { signer: operator });
    return new Authority({ ...keys, operatorJwt, systemAccountJwt, accountJwt });
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
   * A user with full access to the WEFT account, for the controller's own connections.
   * Each call makes a new user nkey; the seed stays in the returned object.
   */
  async issueControllerUser(opts: { name?: string } = {}): Promise<UserCredentials> {
    const user = createUser();
    const claims: Partial<User> = { tags: ["weft-controller"] };
    const jwt = await encodeUser(opts.name ?? "weft-controller", user, this.accountPublicKey, claims, {
      signer: this.#signingKey,
    });
    return new UserCredentials(jwt, user.getPublicKey(), user.getSeed());
  }

  /**
   * A user JWT for one agent, bound to the public nkey the agent generated. Its
   * permissions are agentPermissions(nodeId). Throws InvalidNodeIdError or
   * InvalidUserKeyError.
   */
  async issueAgentUser(opts: IssueAgentUserOptions): Promise<string> {
    assertNodeId(opts.nodeId);
    assertUserPublicKey(opts.userPublicKey);
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
    const encodeOpts: { signer: KeyPair; exp?: number } = { signer: this.#signingKey };
    if (opts.expiresAt !== undefined) encodeOpts.exp = Math.floor(opts.expiresAt.getTime() / 1000);
    return encodeUser(`agent-${opts.nodeId}`, opts.userPublicKey, this.accountPublicKey, claims, encodeOpts);
  }

  /**
   * nats-server configuration that makes a server trust Weft: operator JWT, system
   * account and a MEMORY resolver preloaded with both account JWTs. Paste it into an
   * external server's config (it holds no secrets).
   */
  serverConfigFragment(): string {
    return [
      "# Weft: decentralized JWT auth (operator, system account, WEFT account).",
      `# operator ${this.operatorPublicKey}`,
      `operator: ${JSON.stringify(this.operatorJwt)}`,
      `system_account: ${JSON.stringify(this.systemAccountPublicKey)}`,
      "resolver: MEMORY",
      "resolver_preload: {",
      `  # ${SYSTEM_ACCOUNT_NAME}`,
      `  ${JSON.stringify(this.systemAccountPublicKey)}: ${JSON.stringify(this.systemAccountJwt)}`,
      `  # ${WEFT_ACCOUNT_NAME}`,
      `  ${JSON.stringify(this.accountPublicKey)}: ${JSON.stringify(this.accountJwt)}`,
      "}",
      "",
    ].join("\n");
  }

  toJSON(): Record<string, string> {
    return {
      operator: this.operatorPublicKey,
      systemAccount: this.systemAccountPublicKey,
      account: this.accountPublicKey,
      signingKey: this.signingKeyPublicKey,
      seeds: redacted,
    };
  }

  [inspect.custom](): string {
    return `Authority { operator: ${this.operatorPublicKey}, account: ${this.accountPublicKey}, seeds: ${redacted} }`;
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
 * Loads the authority persisted in dir (e.g. `<stateDir>/authority`). Throws
 * AuthorityStateError if it is missing, corrupt, or readable by group/others.
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
  return Authority.fromKeys(parseAuthorityFile(path, text));
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
  return Authority.fromKeys(keys);
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

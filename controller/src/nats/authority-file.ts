/**
 * The authority's seeds on disk: `<dir>/authority.json` (mode 0600 in a 0700 directory), created
 * once and read at every start, with the revocation list beside it (revocations.ts). A file that
 * others may read, or that does not parse, is refused. Two processes creating it at once end with
 * one set of keys: the file is published with an exclusive link, and the loser loads the winner's.
 */
import { randomBytes } from "node:crypto";
import { chmod, link, mkdir, readFile, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createAccount, createOperator, fromSeed, type KeyPair } from "@nats-io/jwt";
import { Authority } from "./authority.js";
import { AuthorityStateError } from "./errors.js";
import type { AuthorityKeys } from "./jwts.js";
import { isUserPublicKey } from "./nkeys.js";
import { ensureRevocationReserve, readRevocations } from "./revocations.js";

/** File inside the authority directory. */
const AUTH_FILE = "authority.json";
const FILE_VERSION = 1;

interface AuthorityFile {
  version: number;
  operatorSeed: string;
  systemAccountSeed: string;
  accountSeed: string;
  accountSigningKeySeed: string;
  /**
   * Unix seconds since which every agent JWT this authority issued carries an expiry: set when the
   * authority is created (absent in authorities made before agent credentials expired, which then
   * never prune their revocation list: an old JWT without expiry stays covered).
   */
  agentJwtsExpireSince?: number;
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
      throw new AuthorityStateError(path, `mode ${(st.mode & 0o777).toString(8)} lets others read the signing keys; chmod 600 it`);
    }
    text = await readFile(path, "utf8");
  } catch (err) {
    if (err instanceof AuthorityStateError) throw err;
    throw new AuthorityStateError(path, "cannot read", { cause: err });
  }
  const { keys, agentJwtsExpireSince } = parseAuthorityFile(path, text);
  await ensureRevocationReserve(dir);
  return Authority.fromKeys(keys, { dir, revocations: await readRevocations(dir, isUserPublicKey), ...(agentJwtsExpireSince !== undefined ? { agentJwtsExpireSince } : {}) });
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
  const agentJwtsExpireSince = Math.floor(Date.now() / 1000);
  const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    await writeFile(tmp, JSON.stringify({ ...serializeKeys(keys), agentJwtsExpireSince }, null, 2) + "\n", { mode: 0o600, flag: "wx" });
    await link(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return loadAuthority(dir);
    throw new AuthorityStateError(path, "cannot write", { cause: err });
  } finally {
    await unlink(tmp).catch(() => {});
  }
  await ensureRevocationReserve(dir);
  return Authority.fromKeys(keys, { dir, revocations: await readRevocations(dir, isUserPublicKey), agentJwtsExpireSince });
}

function parseAuthorityFile(path: string, text: string): { keys: AuthorityKeys; agentJwtsExpireSince: number | undefined } {
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
  const since = f.agentJwtsExpireSince;
  if (since !== undefined && (typeof since !== "number" || !Number.isSafeInteger(since) || since <= 0)) {
    throw new AuthorityStateError(path, `agentJwtsExpireSince: want unix seconds, got ${JSON.stringify(since)}`);
  }
  return {
    keys: {
      operator: seed("operatorSeed", "SO"),
      systemAccount: seed("systemAccountSeed", "SA"),
      account: seed("accountSeed", "SA"),
      signingKey: seed("accountSigningKeySeed", "SA"),
    },
    agentJwtsExpireSince: since,
  };
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

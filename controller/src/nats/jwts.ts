/**
 * The JWTs of Weft's NATS trust chain, signed from the four key pairs (pure apart from signing):
 * the operator, the system account, the WEFT account (with the revocation list and the signing
 * key) and the claims of each kind of user — the controller's own, the system user that pushes
 * account JWTs, and an agent (agentPermissions). Authority (authority.ts) holds the keys and the
 * revocation list and issues through these.
 */
import { encodeAccount, encodeOperator, type Account, type KeyPair, type User } from "@nats-io/jwt";
import { agentPermissions } from "./permissions.js";
import type { Revocations } from "./revocations.js";

/** Name of the account that holds Weft's buckets and subjects. */
export const WEFT_ACCOUNT_NAME = "WEFT";
export const SYSTEM_ACCOUNT_NAME = "SYS";
export const OPERATOR_NAME = "weft";
/** Inbox prefix of system users (issueSystemUser); pass it as the connection's `inboxPrefix`. */
export const SYSTEM_USER_INBOX_PREFIX = "_INBOX_weft_sys";

/** The four key pairs an Authority is made of. */
export interface AuthorityKeys {
  operator: KeyPair;
  systemAccount: KeyPair;
  account: KeyPair;
  signingKey: KeyPair;
}

/** An account JWT without limits allows zero connections: spell them out. */
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

/** The subject on which servers take an updated JWT for account (request/reply, system account only). */
export function claimsUpdateSubject(account: string): string {
  return `$SYS.REQ.ACCOUNT.${account}.CLAIMS.UPDATE`;
}

/** The operator JWT (naming the system account) and the system account JWT, both operator-signed. */
export async function trustChainJwts(keys: AuthorityKeys): Promise<{ operatorJwt: string; systemAccountJwt: string }> {
  const operatorJwt = await encodeOperator(OPERATOR_NAME, keys.operator, { system_account: keys.systemAccount.getPublicKey() });
  const systemClaims: Partial<Account> = { limits: NATS_LIMITS };
  const systemAccountJwt = await encodeAccount(SYSTEM_ACCOUNT_NAME, keys.systemAccount, systemClaims, { signer: keys.operator });
  return { operatorJwt, systemAccountJwt };
}

/** The WEFT account JWT, operator-signed, carrying the whole revocation list. */
export async function signAccount(keys: AuthorityKeys, revocations: Revocations): Promise<string> {
  const claims: Partial<Account> = {
    limits: { ...NATS_LIMITS, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 },
    signing_keys: [keys.signingKey.getPublicKey()],
  };
  if (revocations.size > 0) claims.revocations = Object.fromEntries(revocations);
  return encodeAccount(WEFT_ACCOUNT_NAME, keys.account, claims, { signer: keys.operator });
}

/**
 * Claims of the system user: it may only push the WEFT account JWT and receive replies under
 * SYSTEM_USER_INBOX_PREFIX.
 */
export function systemUserClaims(accountPublicKey: string): Partial<User> {
  return {
    pub: { allow: [claimsUpdateSubject(accountPublicKey)], deny: [] },
    sub: { allow: [`${SYSTEM_USER_INBOX_PREFIX}.>`], deny: [] },
    bearer_token: false,
    tags: ["weft-controller-system"],
  };
}

/** Claims of a controller user: the whole WEFT account. */
export function controllerUserClaims(): Partial<User> {
  return { tags: ["weft-controller"] };
}

/**
 * Limits of every agent user. nats-server enforces `subs` (a subscription past it is refused) and
 * `payload` (a larger publish closes the connection); `data` is carried for tools and future
 * servers (2.15 does not enforce a user's data limit). An agent holds 6 long-lived subscriptions
 * (its inbox, the peers republish subject, one per key it follows: policy, services, path plan,
 * trust bundle) and one per direct-get batch in flight.
 * A heartbeat carries ~120 bytes per peer, so 512 KiB is ~4,000 peers.
 */
export const AGENT_LIMITS = { subs: 32, payload: 512 * 1024, data: 64 * 1024 * 1024 } as const;

/** Claims of one agent's user: agentPermissions(nodeId), AGENT_LIMITS, standard connections only, no bearer token. */
export function agentUserClaims(nodeId: string): Partial<User> {
  const perms = agentPermissions(nodeId);
  return {
    pub: { allow: [...perms.pub.allow], deny: [] },
    sub: { allow: [...perms.sub.allow], deny: [] },
    ...AGENT_LIMITS,
    bearer_token: false,
    allowed_connection_types: ["STANDARD"],
    tags: ["weft-agent"],
  };
}

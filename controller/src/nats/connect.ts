/**
 * The controller's own NATS connection (a full-access user of the WEFT account,
 * reconnecting forever with jitter) and the KV buckets it owns.
 */
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, jwtAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { Buckets, type BucketName } from "@weft/protocol";
import type { Authority } from "./authority.js";
import { kvStreamName } from "./permissions.js";
import { silentLogger, type Logger } from "./logger.js";

export interface ConnectControllerOptions {
  /** One URL or several (a cluster); e.g. the embedded server's `url`. */
  servers: string | string[];
  authority: Authority;
  /** Connection name shown in the server's monitor. Default "weft-controller". */
  name?: string;
  /** Connection state changes; pass one bound to the component, e.g. `log.child({ component: "nats" })`. */
  logger?: Logger;
  /** Keep retrying the first connect instead of failing. Default false. */
  waitOnFirstConnect?: boolean;
}

/** Connects as a freshly issued controller user; reconnects forever with jittered backoff. */
export async function connectController(opts: ConnectControllerOptions): Promise<NatsConnection> {
  const log = opts.logger ?? silentLogger;
  const user = await opts.authority.issueControllerUser({ name: opts.name ?? "weft-controller" });
  const nc = await connect({
    servers: opts.servers,
    name: opts.name ?? "weft-controller",
    authenticator: jwtAuthenticator(user.jwt, user.seed()),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    reconnectJitter: 500,
    waitOnFirstConnect: opts.waitOnFirstConnect ?? false,
  });
  void (async () => {
    for await (const s of nc.status()) {
      switch (s.type) {
        case "disconnect":
          log.warn({ server: s.server }, "disconnected from NATS");
          break;
        case "reconnect":
          log.info({ server: s.server }, "reconnected to NATS");
          break;
        case "error":
          log.error({ err: s.error.message }, "NATS connection error");
          break;
        default:
          break;
      }
    }
  })();
  return nc;
}

/** History kept per key: the latest value only, except node records (a little audit trail). */
export const BUCKET_HISTORY: Readonly<Record<BucketName, number>> = {
  [Buckets.nodes]: 5,
  [Buckets.peers]: 1,
  [Buckets.ipam]: 1,
  [Buckets.keys]: 1,
  [Buckets.identities]: 1,
  [Buckets.policies]: 5,
  [Buckets.nodePolicies]: 1,
  [Buckets.inventory]: 1,
  [Buckets.enrollPolicies]: 5,
  [Buckets.nodePaths]: 1,
  [Buckets.trustBundle]: 1,
  [Buckets.enrollNonces]: 1,
  [Buckets.attestations]: 1,
};

/**
 * Buckets whose records expire (seconds), and their size cap: enrollment nonces are written for
 * unauthenticated callers, so age and bytes bound what they can make the store keep. A nonce's
 * own expiry (inventory.instanceIdentity.azure.nonceTtlSeconds, at most this) is checked on use.
 */
export const BUCKET_LIMITS: Readonly<Partial<Record<BucketName, { maxAgeSeconds: number; maxBytes: number }>>> = {
  [Buckets.enrollNonces]: { maxAgeSeconds: 900, maxBytes: 64 * 1024 * 1024 },
};

export interface EnsureBucketsOptions {
  /** Stream replicas (3 on a NATS cluster). Default 1. */
  replicas?: number;
}

/**
 * Creates the Weft KV buckets that do not exist yet; existing ones are left as they
 * are (never reconfigured here). Idempotent. Returns the names it created.
 */
export async function ensureBuckets(nc: NatsConnection, opts: EnsureBucketsOptions = {}): Promise<BucketName[]> {
  const jsm = await jetstreamManager(nc);
  const kvm = new Kvm(nc);
  const created: BucketName[] = [];
  const all: BucketName[] = Object.values(Buckets);
  for (const bucket of all) {
    if (await streamExists(jsm, kvStreamName(bucket))) continue;
    const limits = BUCKET_LIMITS[bucket];
    await kvm.create(bucket, {
      history: BUCKET_HISTORY[bucket],
      replicas: opts.replicas ?? 1,
      ...(limits ? { ttl: limits.maxAgeSeconds * 1000, max_bytes: limits.maxBytes } : {}),
    });
    created.push(bucket);
  }
  return created;
}

async function streamExists(jsm: JetStreamManager, stream: string): Promise<boolean> {
  try {
    await jsm.streams.info(stream);
    return true;
  } catch (err) {
    if (isStreamNotFound(err)) return false;
    throw err;
  }
}

function isStreamNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
}

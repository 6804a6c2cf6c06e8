/**
 * The controller's own NATS connection (a full-access user of the WEFT account, over TLS trusting
 * the controller's CA, reconnecting forever with jitter) and the KV buckets it owns, each with a
 * max value size and max bytes (BUCKET_LIMITS), the peers bucket and the buckets agents read one
 * key of republishing every write for agents (followed without consumers).
 */
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager, type JetStreamManager, type StreamConfig } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, jwtAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { Buckets, Subjects, type BucketName } from "@weft/protocol";
import { retry } from "@weft/util";
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
  /** The CA (PEM) the server's certificate chains to; set: TLS is required and only this CA is trusted. */
  caPem?: string;
}

/** nats.js TLS options trusting only `caPem`, or nothing (plain text, tests of the NATS layer). */
export function natsTlsOptions(caPem: string | undefined): { tls?: { ca: string } } {
  return caPem === undefined ? {} : { tls: { ca: caPem } };
}

/**
 * How often the controller's connections ping their server, and how many pings may go unanswered:
 * a server cut off without a close (a partition, a frozen process) is left after about 4–6 s, not
 * nats.js's default 4 minutes, so a follower connected to it can still take over a lease within
 * 10 s. Two small messages per connection every 2 s.
 */
export const CONTROLLER_PING = { pingInterval: 2000, maxPingOut: 2 } as const;

/**
 * How long one connection attempt to one server may take (TCP, TLS, the first PONG) when there
 * are other servers to try. nats.js waits 20 s by default before it tries the next server, and a
 * server whose packets are dropped (a partitioned host) answers nothing: a follower whose
 * connection was there would come back only after the partition, too late to take over the lease.
 * With one server there is nowhere else to go, and nats.js's default stays.
 */
export const CLUSTER_DIAL_TIMEOUT_MS = 5000;

/** The dial timeout for a connection to `servers` (see CLUSTER_DIAL_TIMEOUT_MS). */
export function dialTimeout(servers: string | string[]): { timeout?: number } {
  return Array.isArray(servers) && servers.length > 1 ? { timeout: CLUSTER_DIAL_TIMEOUT_MS } : {};
}

/**
 * nats.js captures a stack trace for every request when it is made (for a timeout's message),
 * two Error objects per request, whether or not it fails: at 10,000 nodes a policy change is
 * 10,000 KV puts, and these traces were 0.44 s of the 1.1 s the controller spent issuing them
 * (scale benchmark, V8 profile). Our errors name what failed without them.
 */
export const NO_ASYNC_TRACES = { noAsyncTraces: true } as const;

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
    ...CONTROLLER_PING,
    ...dialTimeout(opts.servers),
    ...NO_ASYNC_TRACES,
    waitOnFirstConnect: opts.waitOnFirstConnect ?? false,
    ...natsTlsOptions(opts.caPem),
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
  [Buckets.services]: 5,
  [Buckets.nodeServices]: 1,
  [Buckets.nodePaths]: 1,
  [Buckets.trustBundle]: 1,
  [Buckets.enrollNonces]: 1,
  [Buckets.attestations]: 1,
  [Buckets.leader]: 1,
  [Buckets.liveness]: 1,
  [Buckets.revocations]: 1,
};

/** Size limits of one bucket: the largest value and the whole bucket (all keys and history). */
export interface BucketLimit {
  maxValueSize: number;
  maxBytes: number;
  /**
   * Records expire after this many seconds (enrollment nonces: they are written for
   * unauthenticated callers, so age and bytes bound what they can make the store keep; a nonce's
   * own expiry, inventory.instanceIdentity.azure.nonceTtlSeconds, at most this, is checked on use).
   */
  maxAgeSeconds?: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Default limits per bucket (`nats.buckets` in the controller config overrides them). Together
 * 1020.25 MiB, inside the embedded server's default JetStream store limit of 1 GiB
 * (DEFAULT_MAX_FILE_STORE), which nats-server reserves for them up front. A write past a limit is
 * refused (the bucket discards new writes), never stored half. Node and peer records carry a
 * node's workloads (up to 1024, ~130 bytes each), compiled policies up to ~40,000 entries. Path
 * plans exist only for nodes behind NAT and relays (up to 4096 peers and 8192 relay sessions in
 * one key); the inventory gave up 16 MiB for them, and 4 MiB for the revocations (~30,000 entries).
 */
export const BUCKET_LIMITS: Readonly<Record<BucketName, BucketLimit>> = {
  [Buckets.nodes]: { maxValueSize: 256 * KiB, maxBytes: 192 * MiB },
  [Buckets.peers]: { maxValueSize: 256 * KiB, maxBytes: 96 * MiB },
  [Buckets.ipam]: { maxValueSize: 1 * KiB, maxBytes: 32 * MiB },
  [Buckets.keys]: { maxValueSize: 16 * KiB, maxBytes: 16 * MiB },
  [Buckets.identities]: { maxValueSize: 1 * KiB, maxBytes: 16 * MiB },
  [Buckets.policies]: { maxValueSize: 256 * KiB, maxBytes: 64 * MiB },
  [Buckets.nodePolicies]: { maxValueSize: 1 * MiB, maxBytes: 192 * MiB },
  [Buckets.enrollPolicies]: { maxValueSize: 16 * KiB, maxBytes: 16 * MiB },
  [Buckets.inventory]: { maxValueSize: 64 * KiB, maxBytes: 236 * MiB },
  [Buckets.trustBundle]: { maxValueSize: 256 * KiB, maxBytes: 4 * MiB },
  [Buckets.enrollNonces]: { maxValueSize: 1 * KiB, maxBytes: 64 * MiB, maxAgeSeconds: 900 },
  [Buckets.attestations]: { maxValueSize: 16 * KiB, maxBytes: 16 * MiB },
  [Buckets.services]: { maxValueSize: 64 * KiB, maxBytes: 16 * MiB },
  [Buckets.nodeServices]: { maxValueSize: 256 * KiB, maxBytes: 32 * MiB },
  [Buckets.nodePaths]: { maxValueSize: 1 * MiB, maxBytes: 16 * MiB },
  [Buckets.leader]: { maxValueSize: 4 * KiB, maxBytes: 256 * KiB },
  [Buckets.liveness]: { maxValueSize: 4 * KiB, maxBytes: 8 * MiB },
  [Buckets.revocations]: { maxValueSize: 1 * KiB, maxBytes: 4 * MiB },
};

/** Where the peers bucket republishes its writes: `weft.v1.peers.<key>`. */
export const PEERS_REPUBLISH = { src: `$KV.${Buckets.peers}.>`, dest: Subjects.allPeerUpdates } as const;

/**
 * The buckets an agent reads ONE key of (its compiled policy, services and path plan; the trust
 * bundle): each republishes its writes under `weft.v1.kv.<bucket>.>`, so an agent hears a change
 * with its revision once stored and needs no read to follow it (agent/src/control/key-watch.ts).
 */
export const OWN_KEY_BUCKETS: readonly BucketName[] = [Buckets.nodePolicies, Buckets.nodeServices, Buckets.nodePaths, Buckets.trustBundle];

/** What a bucket's stream republishes, and where; undefined: nothing. */
export function republishOf(bucket: BucketName): { src: string; dest: string } | undefined {
  if (bucket === Buckets.peers) return PEERS_REPUBLISH;
  if (OWN_KEY_BUCKETS.includes(bucket)) return { src: `$KV.${bucket}.>`, dest: Subjects.allKeyUpdates(bucket) };
  return undefined;
}

export interface EnsureBucketsOptions {
  /** Stream replicas (3 on a NATS cluster). Default 1. */
  replicas?: number;
  /** Per-bucket limits replacing BUCKET_LIMITS' (e.g. from the config). */
  limits?: Partial<Record<BucketName, Partial<BucketLimit>>>;
}

/**
 * Creates the Weft KV buckets that do not exist yet, and brings the limits (and the republish,
 * republishOf) of existing ones in line with what is wanted. Idempotent. Returns the
 * names it created.
 */
export async function ensureBuckets(nc: NatsConnection, opts: EnsureBucketsOptions = {}): Promise<BucketName[]> {
  const jsm = await jetstreamManager(nc);
  const kvm = new Kvm(nc);
  const created: BucketName[] = [];
  const all: BucketName[] = Object.values(Buckets);
  for (const bucket of all) {
    const limit = { ...BUCKET_LIMITS[bucket], ...opts.limits?.[bucket] };
    const republish = republishOf(bucket);
    const existing = await streamConfig(jsm, kvStreamName(bucket));
    if (!existing) {
      await whenPlaceable(() =>
        kvm.create(bucket, {
          history: BUCKET_HISTORY[bucket],
          replicas: opts.replicas ?? 1,
          maxValueSize: limit.maxValueSize,
          max_bytes: limit.maxBytes,
          ...(limit.maxAgeSeconds ? { ttl: limit.maxAgeSeconds * 1000 } : {}),
          ...(republish ? { republish } : {}),
        }),
      );
      created.push(bucket);
      continue;
    }
    const want: Partial<StreamConfig> = { max_msg_size: limit.maxValueSize, max_bytes: limit.maxBytes, ...(republish ? { republish } : {}) };
    const same =
      existing.max_msg_size === want.max_msg_size &&
      existing.max_bytes === want.max_bytes &&
      (republish === undefined || (existing.republish?.src === republish.src && existing.republish.dest === republish.dest));
    if (!same) await jsm.streams.update(kvStreamName(bucket), want);
  }
  return created;
}

/**
 * How long creating a replicated bucket waits for a cluster that is still forming: JetStream
 * refuses to place a stream ("no suitable peers for placement, peer offline") until enough servers
 * have joined, which a controller started beside its nats-server can see first.
 */
const PLACEMENT_WAIT_MS = 30_000;

function whenPlaceable(create: () => Promise<unknown>): Promise<unknown> {
  const deadline = Date.now() + PLACEMENT_WAIT_MS;
  const unplaceable = (err: unknown) => err instanceof Error && /no suitable peers for placement/i.test(err.message) && Date.now() <= deadline;
  return retry(create, { initialMs: 500, maxMs: 500, jitter: 0, retryIf: unplaceable });
}

async function streamConfig(jsm: JetStreamManager, stream: string): Promise<StreamConfig | undefined> {
  try {
    return (await jsm.streams.info(stream)).config;
  } catch (err) {
    if (isStreamNotFound(err)) return undefined;
    throw err;
  }
}

function isStreamNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
}

/**
 * Helpers shared by the controller's tests (not part of the public surface):
 * a real controller with its embedded NATS on 127.0.0.1 (free ports, temp state
 * dir), enrollment bodies, and a read-back of everything the controller stores,
 * so negative tests can prove that nothing was written.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { createUser } from "@nats-io/nkeys";
import { connect, jwtAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { Buckets, ControllerClient, Subjects, type EnrollResponse, type JoinKeyInfo, type NodeView } from "@weft/protocol";
import { pino } from "pino";
import { startController, type RunningController } from "./controller.js";
import type { ControllerConfigInput } from "./config.js";
import { claimKey } from "./ipam/claims.js";

export interface TestController {
  running: RunningController;
  /** Admin client over TCP (HTTPS, trusting the controller's own CA). */
  client: ControllerClient;
  stateDir: string;
  /**
   * The detail the controller logged for a refusal whose body (or its message) carries a
   * reference (`ref-…`): strangers get only a code, tests read the reason here.
   */
  refusal(body: unknown): { reason: string; message: string } | undefined;
  /** Stops the controller and removes its state dir (unless the caller gave it); safe to call twice or after a failed start. */
  stop(): Promise<void>;
}

/**
 * Starts a controller on 127.0.0.1 with free ports and a fresh state dir (or
 * `opts.stateDir`, which is then left in place by stop()).
 */
export async function startTestController(
  overrides: Partial<Pick<ControllerConfigInput, "overlay" | "offlineAfterSeconds" | "heartbeatSeconds" | "identity" | "inventory" | "spiffe">> = {},
  opts: { stateDir?: string; rateLimit?: { max: number; windowSeconds: number } } = {},
): Promise<TestController> {
  const stateDir = opts.stateDir ?? (await mkdtemp(join(tmpdir(), "weft-ctl-")));
  const ownsStateDir = opts.stateDir === undefined;
  let running: RunningController;
  // The log, kept in memory (the last 5000 lines), so tests can read what strangers are not told.
  const lines: string[] = [];
  const sink = { write: (line: string) => void (lines.push(line) > 5000 && lines.splice(0, 1000)) };
  try {
    running = await startController(
      // Every test enrolls from 127.0.0.1: a rate limit that only a test about it sets low.
      { stateDir, nats: { listenHost: "127.0.0.1", port: 0 }, api: { listenHost: "127.0.0.1", port: 0, rateLimit: opts.rateLimit ?? { max: 100_000, windowSeconds: 1 } }, ...overrides },
      pino({ level: "info" }, sink),
    );
  } catch (err) {
    if (ownsStateDir) await rm(stateDir, { recursive: true, force: true });
    throw err;
  }
  let stopped = false;
  return {
    running,
    client: new ControllerClient({ url: running.apiUrl, adminToken: running.adminToken, caPem: running.caPem }),
    stateDir,
    refusal: (body) => {
      const text = typeof body === "string" ? body : JSON.stringify(body ?? "");
      const reference = /ref-[0-9a-f]{10}/.exec(text)?.[0];
      if (reference === undefined) return undefined;
      for (const line of lines) {
        if (!line.includes(reference)) continue;
        const o = JSON.parse(line) as { reason?: string; err?: string };
        return { reason: o.reason ?? "", message: o.err ?? "" };
      }
      return undefined;
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      try {
        await running.stop();
      } finally {
        if (ownsStateDir) await rm(stateDir, { recursive: true, force: true });
      }
    },
  };
}

export interface AgentIdentity {
  /** The enrollment request body (a plain object, so tests can break it). */
  body: Record<string, unknown>;
  /** The NATS user seed that stays on the agent's host. */
  natsSeed: Uint8Array;
  natsPublicKey: string;
}

let agentCounter = 0;

/**
 * A fresh agent identity and a valid enrollment body for it. The WireGuard
 * public key is passed in (tests make it with protocol's generateKeyPair()).
 */
export function agentIdentity(joinKey: string, wireguardPublicKey: string, overrides: Record<string, unknown> = {}): AgentIdentity {
  const user = createUser();
  const n = ++agentCounter;
  return {
    body: {
      version: 1,
      joinKey,
      name: `node-${process.pid}-${n}`,
      site: "site-a",
      wireguardPublicKey,
      natsPublicKey: user.getPublicKey(),
      listenPort: 51820,
      endpoints: { private: `10.0.0.${(n % 250) + 1}:51820` },
      ...overrides,
    },
    natsSeed: user.getSeed(),
    natsPublicKey: user.getPublicKey(),
  };
}

/** Everything the controller stores, read back through the API and the KV buckets. */
export interface StoredState {
  nodes: NodeView[];
  keys: JoinKeyInfo[];
  /** Keys of the ipam bucket (addr.*, wgkey.*, name.*), sorted. */
  claims: string[];
  /** Keys of the weft-peers bucket, sorted. */
  peers: string[];
  /** Keys of the weft-policies bucket (policy names) with each one's revision, sorted. */
  policies: string[];
  /** Keys of the weft-identities bucket (spiffe.* and id.*), sorted: a refused request allocates no identity. */
  identities: string[];
}

export async function storedState(t: TestController): Promise<StoredState> {
  const kvm = new Kvm(t.running.nc);
  const keysOf = async (bucket: string) => {
    const out: string[] = [];
    for await (const k of await (await kvm.open(bucket)).keys()) out.push(k);
    return out.sort();
  };
  const policiesKv = await kvm.open(Buckets.policies);
  const policyRevisions = async () => {
    const out: string[] = [];
    for (const k of await keysOf(Buckets.policies)) out.push(`${k}@${(await policiesKv.get(k))?.revision ?? "?"}`);
    return out;
  };
  const [nodes, keys, claims, peers, policies, identities] = await Promise.all([
    t.client.listNodes(),
    t.client.listJoinKeys(),
    keysOf(Buckets.ipam),
    keysOf(Buckets.peers),
    policyRevisions(),
    keysOf(Buckets.identities),
  ]);
  return { nodes, keys, claims, peers, policies, identities };
}

/** What the negative tests compare: ids, key use counts and states, claim and peer keys. */
function summary(s: StoredState): Record<string, string[]> {
  return {
    nodes: s.nodes.map((n) => `${n.nodeId} ${n.name} ${n.overlayAddress}`).sort(),
    keys: s.keys.map((k) => `${k.id} ${k.state} uses=${k.uses}`).sort(),
    claims: s.claims,
    peers: s.peers,
    policies: s.policies,
    identities: s.identities,
  };
}

/**
 * Reads the state back and throws, naming every difference, unless it is what
 * it was in `before`; then checks the API still answers /healthz. Proves that a
 * rejected request stored nothing and left the controller serving.
 */
export async function assertNothingStored(t: TestController, before: StoredState, what: string): Promise<void> {
  const was = summary(before);
  const now = summary(await storedState(t));
  const diffs: string[] = [];
  for (const [field, want] of Object.entries(was)) {
    const got = now[field] ?? [];
    const added = got.filter((x) => !want.includes(x));
    const removed = want.filter((x) => !got.includes(x));
    if (added.length > 0 || removed.length > 0) diffs.push(`${field}: got +${JSON.stringify(added)} -${JSON.stringify(removed)}, want no change`);
  }
  if (diffs.length > 0) throw new Error(`${what}: state changed: ${diffs.join("; ")}`);
  const health = await t.client.raw("GET", "/healthz");
  if (health.status !== 200) throw new Error(`${what}: GET /healthz afterwards: got ${health.status} ${health.text}, want 200`);
}

/** The ipam claim keys a set of nodes should own, sorted (addr, wprefix, wgkey, name per node). */
export function claimsOf(nodes: Pick<NodeView, "overlayAddress" | "wireguardPublicKey" | "name" | "workloadPrefix">[]): string[] {
  return nodes
    .flatMap((n) => [
      claimKey("addr", n.overlayAddress),
      ...(n.workloadPrefix ? [claimKey("wprefix", n.workloadPrefix)] : []),
      claimKey("wgkey", n.wireguardPublicKey),
      claimKey("name", n.name),
    ])
    .sort();
}

/** Poll `fn` until it returns a value that is not undefined, or give up after `ms`. */
export async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined, ms = 3000, stepMs = 20): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const got = await fn();
    if (got !== undefined) return got;
    if (Date.now() > end) return undefined;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Poll a synchronous condition until it holds (true) or `ms` pass (false). */
export async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  return (await eventually(() => (cond() ? true : undefined), ms, 10)) ?? false;
}

/** An enrolled test agent: its enrollment answer and a NATS connection made the way the agent makes it. */
export interface EnrolledAgent {
  enrolled: EnrollResponse;
  /** The agent's own connection: its JWT, its nkey, its inbox prefix. */
  nc: NatsConnection;
  /** Errors the server reported on the connection (permission violations). */
  errors: Error[];
}

/**
 * Enrolls a fresh agent with `joinKey` (WireGuard public key from the caller,
 * body overrides as in agentIdentity) and connects it to the controller's NATS.
 * The caller closes `nc`.
 */
export async function enrollAgent(t: TestController, joinKey: string, wireguardPublicKey: string, overrides: Record<string, unknown> = {}): Promise<EnrolledAgent> {
  const agent = agentIdentity(joinKey, wireguardPublicKey, overrides);
  const res = await t.client.raw("POST", "/v1/enroll", JSON.stringify(agent.body));
  if (res.status !== 201) throw new Error(`enroll: got ${res.status} ${res.text}, want 201`);
  const enrolled = res.body as EnrollResponse;
  const nc = await connect({
    servers: t.running.natsUrl,
    tls: { ca: t.running.natsCaPem },
    authenticator: jwtAuthenticator(enrolled.nats.userJwt, agent.natsSeed),
    inboxPrefix: Subjects.inboxPrefix(enrolled.nodeId),
    maxReconnectAttempts: 0,
  });
  const errors: Error[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === "error") errors.push(s.error);
  })();
  return { enrolled, nc, errors };
}

/** Node ids, IPv4 addresses, 12-digit accounts and GUIDs: what a refusal body must never carry. */
const LEAKS = /n-[0-9a-f]{16}|\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b|\b\d{12}\b|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/**
 * What a refusal said: a 400's own message (the caller's fields), else — after checking the body
 * is a code and a generic message with a reference, leaking no node id, address or account — the
 * detail the controller logged under that reference.
 */
export function refusalDetail(t: TestController, res: { status: number; text: string }, what: string): { code: string; message: string; reason: string } {
  const body = JSON.parse(res.text) as { error?: string; message?: string; details?: unknown };
  if (res.status === 400) return { code: body.error ?? "", message: body.message ?? "", reason: "invalid_request" };
  const leak = LEAKS.exec(res.text);
  if (leak) throw new Error(`${what}: the refusal body leaks ${leak[0]}: ${res.text}`);
  if (body.details !== undefined) throw new Error(`${what}: the refusal body carries details: ${res.text}`);
  const logged = t.refusal(body.message);
  if (!logged) throw new Error(`${what}: no logged refusal for the reference in ${res.text}`);
  return { code: body.error ?? "", message: logged.message, reason: logged.reason };
}

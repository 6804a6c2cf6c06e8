/**
 * The workloads service: agents send their node's whole workload set on
 * `weft.v1.node.<id>.workloads` (request/reply); the controller validates it,
 * checks each identity is one the node may hold (grants.ts: its own, or granted by its key,
 * enrollment policy or instance tags), checks the node stays within its identity cap (the
 * identities of its workloads plus those it dropped less than the release grace ago, each
 * recorded in the node record's `recentIdentities` until then), allocates an identity per SPIFFE ID
 * (`spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`), gives each
 * workload an address in the node's workload prefix (stable per name) and records
 * the set in the node record through the registry (which rebuilds the peer record
 * every agent reads from it). Requests of one node run one after another.
 *
 * The node id comes from the subject, never from the body: NATS permissions let an
 * agent publish only under its own `weft.v1.node.<id>.>`. Everything that can refuse
 * a request runs before anything is written; a refused request writes nothing.
 * (A request that fails later, on a store error, may leave identities allocated: an identity
 * nothing references is released after the grace, identity/reaper.ts.)
 */
import { NODE_ID_PATTERN, Subjects, WORKLOAD_IDENTITIES_LABEL, WorkloadsRequest, cidrSize, formatIpv4, parseCidr, parseIpv4, type Identity, type Ipv4Cidr, type NodeRecord, type NodeView, type Workload, type WorkloadSpec, type WorkloadsReply } from "@weft/protocol";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { KeyedSerial } from "@weft/util";
import type { Logger } from "pino";
import { AddressExhaustedError, ControllerError, ForbiddenError, IdentityLimitError, NotFoundError, ValidationError, refusalReason, type FieldIssue } from "../errors.js";
import type { ControllerCounters } from "../metrics/counters.js";
import type { NodeRegistry } from "../nodes/registry.js";
import { fieldIssues } from "../validation.js";
import { describeGrants, mayHoldIdentity } from "./grants.js";

export interface WorkloadServiceDeps {
  registry: NodeRegistry;
  /** The identity of a SPIFFE ID, allocated the first time it is seen. */
  allocateIdentity: (spiffeId: string) => Promise<Identity>;
  trustDomain: string;
  /** Most workload identities a node may hold at once, counting those it dropped within the grace. */
  maxIdentitiesPerNode: number;
  /** How long a dropped workload identity still counts for its node (identity.releaseAfterSeconds). */
  releaseAfterMs: number;
  /** Refusals are counted here (endpoint `workloads`). */
  counters?: ControllerCounters;
  now?: () => Date;
  log: Logger;
}

export interface WorkloadsResult {
  workloadPrefix: string;
  workloads: Workload[];
}

/** Queue group of the controllers serving workload requests: one answer per request. */
export const WORKLOADS_QUEUE = "weft-controller";

/**
 * The workload identities a node holds after a request (pure): the requested set, plus those it
 * dropped within the grace (`recentIdentities` still running, and what the request drops now,
 * until now + grace). The node's own identity is not a workload identity and never counts.
 */
export function heldIdentities(
  node: Pick<NodeRecord, "identity" | "workloads" | "recentIdentities">,
  requested: readonly Identity[],
  now: Date,
  graceMs: number,
): { recent: NonNullable<NodeRecord["recentIdentities"]>; count: number } {
  const own = node.identity?.spiffeId;
  const wanted = new Set(requested.map((i) => i.spiffeId));
  const recent = new Map<string, { identity: Identity; until: string }>();
  for (const r of node.recentIdentities ?? []) {
    if (Date.parse(r.until) > now.getTime() && !wanted.has(r.identity.spiffeId)) recent.set(r.identity.spiffeId, r);
  }
  const until = new Date(now.getTime() + graceMs).toISOString();
  for (const w of node.workloads ?? []) {
    if (!wanted.has(w.identity.spiffeId) && w.identity.spiffeId !== own) recent.set(w.identity.spiffeId, { identity: w.identity, until });
  }
  const held = new Set([...wanted, ...recent.keys()]);
  if (own !== undefined) held.delete(own);
  return { recent: [...recent.values()].sort((a, b) => a.identity.id - b.identity.id), count: held.size };
}

export class WorkloadService {
  /** Requests of one node run one after another. */
  private readonly queues = new KeyedSerial();

  constructor(private readonly deps: WorkloadServiceDeps) {}

  /** Answer the request of `nodeId`; never throws (a refusal is an `ok: false` reply). */
  async handle(nodeId: string, body: unknown): Promise<WorkloadsReply> {
    try {
      const result = await this.queues.run(nodeId, () => this.apply(nodeId, body));
      return { ok: true, ...result };
    } catch (err) {
      if (err instanceof ControllerError) {
        if (err.status >= 500) this.deps.log.warn({ node: nodeId, err }, "workloads request failed");
        else {
          this.deps.counters?.refusals.inc({ endpoint: "workloads", reason: refusalReason(err) });
          this.deps.log.info({ node: nodeId, reason: err.message }, "workloads request refused");
        }
        return { ok: false, error: { code: err.code, message: err.message } };
      }
      this.deps.log.error({ node: nodeId, err }, "workloads request failed");
      return { ok: false, error: { code: "store_unavailable", message: "the controller could not record the workloads; retry" } };
    }
  }

  /** Serve `Subjects.allWorkloads` on `nc` (queue group WORKLOADS_QUEUE). */
  serve(nc: NatsConnection): Subscription {
    return nc.subscribe(Subjects.allWorkloads, {
      queue: WORKLOADS_QUEUE,
      callback: (err, msg) => {
        if (err) {
          this.deps.log.warn({ err }, "workloads subscription error");
          return;
        }
        void this.onMessage(msg);
      },
    });
  }

  private async onMessage(msg: Msg): Promise<void> {
    const nodeId = msg.subject.split(".")[3] ?? "";
    // Replies go only to the requesting agent's own inbox; anything else (a JetStream
    // delivery, a reply aimed elsewhere) is not a request from that agent.
    if (!NODE_ID_PATTERN.test(nodeId) || !msg.reply?.startsWith(`${Subjects.inboxPrefix(nodeId)}.`)) {
      this.deps.log.warn({ subject: msg.subject }, "dropping workloads message without the node's own reply inbox");
      return;
    }
    let body: unknown;
    try {
      body = msg.json();
    } catch {
      msg.respond(JSON.stringify({ ok: false, error: { code: "invalid_request", message: "workloads request is not JSON" } } satisfies WorkloadsReply));
      return;
    }
    const reply = await this.handle(nodeId, body);
    try {
      msg.respond(JSON.stringify(reply));
    } catch (err) {
      this.deps.log.warn({ node: nodeId, err }, "cannot answer a workloads request");
    }
  }

  private async apply(nodeId: string, body: unknown): Promise<WorkloadsResult> {
    const req = parseRequest(body);
    const node = await this.deps.registry.get(nodeId); // NotFoundError
    authorize(node, req);
    const now = this.deps.now?.() ?? new Date();
    // The cap, before any identity is allocated: spiffe IDs stand in for the numbers not yet known.
    const wantedIds = [...new Set(req.workloads.map((w) => spiffeIdOf(this.deps.trustDomain, w)))].map((spiffeId) => ({ id: 0, spiffeId }));
    const held = heldIdentities(node, wantedIds, now, this.deps.releaseAfterMs);
    if (held.count > this.deps.maxIdentitiesPerNode) {
      throw new IdentityLimitError(
        `workloads request refused: the node would hold ${held.count} workload identities (${wantedIds.length} requested, ${held.recent.length} dropped within the last ${Math.round(this.deps.releaseAfterMs / 1000)} s), at most ${this.deps.maxIdentitiesPerNode} (identity.maxWorkloadIdentitiesPerNode); retry after the dropped ones are released`,
        { reason: "identity_limit" },
      );
    }
    const prefix = await this.deps.registry.ensureWorkloadPrefix(nodeId);
    const range = parseCidr(prefix)!;
    const hosts = cidrSize(range) - 2;
    if (req.workloads.length > hosts) {
      throw new AddressExhaustedError(`workloads: ${req.workloads.length} workloads do not fit in the node's workload prefix ${prefix} (${hosts} addresses)`);
    }
    const identities = new Map<string, Identity>();
    for (const w of req.workloads) {
      const spiffeId = spiffeIdOf(this.deps.trustDomain, w);
      if (!identities.has(spiffeId)) identities.set(spiffeId, await this.deps.allocateIdentity(spiffeId));
    }
    let result: Workload[] = [];
    const outcome = await this.deps.registry.updateNode(nodeId, (cur) => {
      result = assignAddresses(req, cur.workloadPrefix === prefix ? (cur.workloads ?? []) : [], range, (w) => identities.get(spiffeIdOf(this.deps.trustDomain, w))!);
      const { recent } = heldIdentities(cur, result.map((w) => w.identity), now, this.deps.releaseAfterMs);
      const unchanged = cur.workloadPrefix === prefix && JSON.stringify(cur.workloads ?? []) === JSON.stringify(result) && JSON.stringify(cur.recentIdentities ?? []) === JSON.stringify(recent);
      if (unchanged) return undefined;
      const { recentIdentities: _old, ...rest } = cur;
      return { ...rest, workloads: result, ...(recent.length > 0 ? { recentIdentities: recent } : {}) };
    });
    if (outcome.outcome === "gone") throw new NotFoundError(`node ${nodeId} was deleted meanwhile`);
    if (outcome.outcome === "updated") this.deps.log.info({ node: nodeId, workloads: result.length }, "workloads recorded");
    return { workloadPrefix: prefix, workloads: result };
  }
}

function spiffeIdOf(trustDomain: string, w: WorkloadSpec): string {
  return `spiffe://${trustDomain}/ns/${w.namespace}/sa/${w.serviceAccount}`;
}

/**
 * The addresses of the requested workloads (pure): names already recorded keep their address
 * while it is a host address of `range`; new names get the lowest free host address.
 */
export function assignAddresses(req: WorkloadsRequest, recorded: readonly Workload[], range: Ipv4Cidr, identityOf: (w: WorkloadSpec) => Identity): Workload[] {
  const old = new Map(recorded.map((w) => [w.name, w]));
  const inRange = (a: string) => {
    const ip = parseIpv4(a);
    return ip !== undefined && ip > range.network && ip < range.network + cidrSize(range) - 1;
  };
  const used = new Set<string>();
  for (const w of req.workloads) {
    const was = old.get(w.name);
    if (was && inRange(was.address)) used.add(was.address);
  }
  let next = range.network + 1;
  const freeAddress = () => {
    while (used.has(formatIpv4(next))) next++;
    const a = formatIpv4(next);
    used.add(a);
    return a;
  };
  return req.workloads.map((w) => {
    const was = old.get(w.name);
    return { name: w.name, address: was && inRange(was.address) ? was.address : freeAddress(), identity: identityOf(w) };
  });
}

function parseRequest(body: unknown): WorkloadsRequest {
  const parsed = WorkloadsRequest.safeParse(body);
  const issues: FieldIssue[] = parsed.success ? [] : fieldIssues(parsed.error);
  if (parsed.success) {
    const first = new Map<string, number>();
    parsed.data.workloads.forEach((w, i) => {
      const at = first.get(w.name);
      if (at === undefined) first.set(w.name, i);
      else issues.push({ path: `workloads[${i}].name`, message: `duplicate workload name ${JSON.stringify(w.name)} (also workloads[${at}].name); names are unique per node` });
    });
  }
  if (issues.length > 0 || !parsed.success) {
    throw new ValidationError(`workloads request is invalid: ${issues.map((d) => `${d.path}: ${d.message}`).join("; ")}`, { details: issues });
  }
  return parsed.data;
}

function authorize(node: NodeView, req: WorkloadsRequest): void {
  const issues: FieldIssue[] = [];
  req.workloads.forEach((w, i) => {
    if (!mayHoldIdentity(node, w)) issues.push({ path: `workloads[${i}]`, message: `node ${node.name} was not granted identity ${w.namespace}/${w.serviceAccount}` });
  });
  if (issues.length === 0) return;
  throw new ForbiddenError(
    `workloads request refused: ${issues.slice(0, 10).map((d) => `${d.path}: ${d.message}`).join("; ")}; it may hold: ${describeGrants(node)} (the label ${WORKLOAD_IDENTITIES_LABEL} of its join key or enrollment policy, or that tag on its instance, grants more)`,
    { details: issues, reason: "identity_not_granted" },
  );
}

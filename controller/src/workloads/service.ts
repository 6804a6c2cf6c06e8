/**
 * The workloads service: agents send their node's whole workload set on
 * `weft.v1.node.<id>.workloads` (request/reply); the controller validates it,
 * checks the namespaces the node may host, allocates an identity per SPIFFE ID
 * (`spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`), gives each
 * workload an address in the node's workload prefix (stable per name) and records
 * the set in the node record through the registry (which rebuilds the peer record
 * every agent reads from it). Requests of one node run one after another.
 *
 * The node id comes from the subject, never from the body: NATS permissions let an
 * agent publish only under its own `weft.v1.node.<id>.>`. Everything that can refuse
 * a request runs before anything is written; a refused request writes nothing.
 * (A request that fails later, on a store error, may leave identities allocated:
 * identities are never reused and an unused one is harmless.)
 */
import { NODE_ID_PATTERN, SPIFFE_ID_PATTERN, Subjects, WORKLOAD_NAMESPACES_LABEL, WorkloadsRequest, cidrSize, formatIpv4, parseCidr, parseIpv4, type Identity, type Ipv4Cidr, type NodeView, type Workload, type WorkloadSpec, type WorkloadsReply } from "@weft/protocol";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { KeyedSerial } from "@weft/util";
import type { Logger } from "pino";
import { AddressExhaustedError, ControllerError, ForbiddenError, NotFoundError, ValidationError, type FieldIssue } from "../errors.js";
import type { NodeRegistry } from "../nodes/registry.js";
import { fieldIssues } from "../validation.js";

export interface WorkloadServiceDeps {
  registry: NodeRegistry;
  /** The identity of a SPIFFE ID, allocated the first time it is seen. */
  allocateIdentity: (spiffeId: string) => Promise<Identity>;
  trustDomain: string;
  log: Logger;
}

export interface WorkloadsResult {
  workloadPrefix: string;
  workloads: Workload[];
}

/** Queue group of the controllers serving workload requests: one answer per request. */
export const WORKLOADS_QUEUE = "weft-controller";

/** The namespaces `node` may host workloads in: its label, else its own identity's namespace. `"*"` = any. */
export function allowedNamespaces(node: Pick<NodeView, "labels" | "identity">): Set<string> | "*" {
  const label = node.labels[WORKLOAD_NAMESPACES_LABEL];
  if (label !== undefined) {
    const list = label.split(",").map((s) => s.trim()).filter((s) => s !== "");
    return list.includes("*") ? "*" : new Set(list);
  }
  const own = node.identity ? SPIFFE_ID_PATTERN.exec(node.identity.spiffeId)?.[3] : undefined;
  return new Set(own ? [own] : []);
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
        else this.deps.log.info({ node: nodeId, reason: err.message }, "workloads request refused");
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
      const unchanged = cur.workloadPrefix === prefix && JSON.stringify(cur.workloads ?? []) === JSON.stringify(result);
      return unchanged ? undefined : { ...cur, workloads: result };
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
  const allowed = allowedNamespaces(node);
  if (allowed === "*") return;
  const issues: FieldIssue[] = [];
  req.workloads.forEach((w, i) => {
    if (!allowed.has(w.namespace)) issues.push({ path: `workloads[${i}].namespace`, message: `node ${node.name} may not host workloads in namespace ${JSON.stringify(w.namespace)}` });
  });
  if (issues.length === 0) return;
  const may = allowed.size > 0 ? `it may host: ${[...allowed].sort().join(", ")}` : "it may host none";
  throw new ForbiddenError(
    `workloads request refused: ${issues.map((d) => `${d.path}: ${d.message}`).join("; ")}; ${may} (the join key label ${WORKLOAD_NAMESPACES_LABEL} lists the namespaces a node may host, or *)`,
    { details: issues },
  );
}

/**
 * The controller's Prometheus metrics: one prom-client registry with the families an operator
 * watches (enrollments and refusals by reason, nodes by status, KV operations and errors,
 * inventory sync duration and result per account, policy publish latency and size per node, API
 * requests by route and status, flow reports), plus the process's own (CPU, memory, event loop).
 * The services report through the small `record*` methods; nodes by status are counted at scrape
 * time from the registry, so the gauge never drifts from `GET /v1/nodes`.
 *
 * Label values come from closed sets (error codes, route templates, bucket names, providers) or
 * from records the controller itself wrote (node ids, account ids); anything else is folded into
 * "other", so a stranger cannot grow a family by sending odd input.
 */
import client from "prom-client";
import type { ControllerCounters } from "./counters.js";

export type KvOutcome = "ok" | "conflict" | "error";

export interface ControllerMetricsOptions {
  /** Node statuses now (online, offline, never-seen), read at scrape time. */
  nodeStatuses: () => Promise<readonly { status: string }[]>;
  /** Also collect the process's default metrics (CPU, memory, event loop lag). Default true. */
  processMetrics?: boolean;
  /** The controller's own counters (refusals by endpoint and reason, undelivered policies, released identities), rendered at scrape time. */
  counters?: ControllerCounters;
}

/** A label value from a closed vocabulary: lower-case words, digits, `_ - . : /`, at most 64 characters; else "other". */
export function labelValue(v: string | undefined): string {
  if (v === undefined || v === "") return "none";
  return /^[A-Za-z0-9_.:/{}-]{1,64}$/.test(v) ? v : "other";
}

const NODE_STATUSES = ["online", "offline", "never-seen"] as const;

export class ControllerMetrics {
  readonly registry = new client.Registry();
  readonly #enrollments: client.Counter<"result" | "reason">;
  readonly #kvOps: client.Counter<"bucket" | "op" | "result">;
  readonly #kvErrors: client.Counter<"bucket" | "op">;
  readonly #syncSeconds: client.Histogram<"provider" | "account">;
  readonly #syncs: client.Counter<"provider" | "account" | "result">;
  readonly #publishSeconds: client.Histogram;
  readonly #policyBytes: client.Gauge<"node">;
  readonly #policyEntries: client.Gauge<"node">;
  readonly #apiRequests: client.Counter<"method" | "route" | "status">;
  readonly #apiSeconds: client.Histogram<"method" | "route">;
  readonly #flowReports: client.Counter<"result">;
  readonly #sessions: client.Gauge;

  constructor(o: ControllerMetricsOptions) {
    const registers = [this.registry];
    if (o.processMetrics ?? true) client.collectDefaultMetrics({ register: this.registry, prefix: "weft_controller_" });
    this.#enrollments = new client.Counter({
      name: "weft_controller_enrollments_total",
      help: "Enrollment requests by result (enrolled, refused) and reason (the error code of a refusal; none when enrolled)",
      labelNames: ["result", "reason"],
      registers,
    });
    new client.Gauge({
      name: "weft_controller_nodes",
      help: "Enrolled nodes by liveness status (online, offline, never-seen)",
      labelNames: ["status"],
      registers,
      async collect() {
        const counts = new Map<string, number>(NODE_STATUSES.map((s) => [s, 0]));
        for (const n of await o.nodeStatuses()) counts.set(labelValue(n.status), (counts.get(labelValue(n.status)) ?? 0) + 1);
        this.reset();
        for (const [status, n] of counts) this.set({ status }, n);
      },
    });
    this.#kvOps = new client.Counter({
      name: "weft_controller_kv_operations_total",
      help: "JetStream KV operations by bucket, operation and result (ok, conflict: a compare-and-set lost to another writer, error); op list.replicas (keys.replicas, stamps.replicas): a listing read from the stream's replicas because no consumer could be made (a cluster without a JetStream meta leader)",
      labelNames: ["bucket", "op", "result"],
      registers,
    });
    this.#kvErrors = new client.Counter({ name: "weft_controller_kv_errors_total", help: "JetStream KV operations that failed (store unavailable), by bucket and operation", labelNames: ["bucket", "op"], registers });
    this.#syncSeconds = new client.Histogram({
      name: "weft_controller_inventory_sync_duration_seconds",
      help: "Duration of one account's inventory sync (fetch, store, decisions)",
      labelNames: ["provider", "account"],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    this.#syncs = new client.Counter({ name: "weft_controller_inventory_syncs_total", help: "Inventory syncs per account by result (ok, partial, failed)", labelNames: ["provider", "account", "result"], registers });
    this.#publishSeconds = new client.Histogram({
      name: "weft_controller_policy_publish_seconds",
      help: "From the first change of a burst (policy, identity or node) to a node's compiled policy written to weft-node-policies",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.#policyBytes = new client.Gauge({ name: "weft_controller_node_policy_bytes", help: "Size of each node's compiled policy record (JSON bytes)", labelNames: ["node"], registers });
    this.#policyEntries = new client.Gauge({ name: "weft_controller_node_policy_entries", help: "Map entries in each node's compiled policy", labelNames: ["node"], registers });
    this.#apiRequests = new client.Counter({ name: "weft_controller_api_requests_total", help: "REST API requests by method, route template and status code", labelNames: ["method", "route", "status"], registers });
    this.#apiSeconds = new client.Histogram({
      name: "weft_controller_api_request_duration_seconds",
      help: "REST API request duration by method and route template",
      labelNames: ["method", "route"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
    this.#flowReports = new client.Counter({ name: "weft_controller_flow_reports_total", help: "Flow reports from agents by result (accepted, refused)", labelNames: ["result"], registers });
    this.#sessions = new client.Gauge({ name: "weft_controller_console_sessions", help: "Console sessions currently open", registers });
    // The counters of metrics/counters.ts, copied into families of the same name at scrape time.
    for (const counter of o.counters?.all() ?? []) {
      new client.Counter({
        name: counter.name,
        help: counter.help,
        labelNames: [...counter.labelNames],
        registers,
        collect() {
          this.reset();
          for (const sample of counter.snapshot().samples) this.inc(sample.labels, sample.value);
        },
      });
    }
  }

  recordEnrollment(result: "enrolled" | "refused", reason?: string): void {
    this.#enrollments.inc({ result, reason: labelValue(result === "enrolled" ? undefined : reason) });
  }

  recordKv(bucket: string, op: string, result: KvOutcome): void {
    const labels = { bucket: labelValue(bucket), op: labelValue(op) };
    this.#kvOps.inc({ ...labels, result });
    if (result === "error") this.#kvErrors.inc(labels);
  }

  recordInventorySync(a: { provider: string; account: string; result: string }, seconds: number): void {
    const labels = { provider: labelValue(a.provider), account: labelValue(a.account) };
    this.#syncSeconds.observe(labels, seconds);
    this.#syncs.inc({ ...labels, result: labelValue(a.result) });
  }

  recordPolicyPublished(node: string, bytes: number, entries: number, seconds: number): void {
    this.#policyBytes.set({ node: labelValue(node) }, bytes);
    this.#policyEntries.set({ node: labelValue(node) }, entries);
    this.#publishSeconds.observe(seconds);
  }

  recordPolicyRemoved(node: string): void {
    this.#policyBytes.remove({ node: labelValue(node) });
    this.#policyEntries.remove({ node: labelValue(node) });
  }

  recordApiRequest(method: string, route: string, status: number, seconds: number): void {
    const labels = { method: labelValue(method), route: labelValue(route) };
    this.#apiRequests.inc({ ...labels, status: String(status) });
    this.#apiSeconds.observe(labels, seconds);
  }

  recordFlowReport(result: "accepted" | "refused"): void {
    this.#flowReports.inc({ result });
  }

  setConsoleSessions(n: number): void {
    this.#sessions.set(n);
  }

  /** The Prometheus text exposition of every family. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

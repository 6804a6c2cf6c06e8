/**
 * AwsInventory: one AWS account's instances and VPCs across its regions, read with the real
 * EC2Client (one per region). Every page is its own retried call (withRetry is the only retry
 * policy: the SDK's own retries are off), NextToken is followed to the end, and a region that
 * fails is reported in `issues` (complete=false) while the other regions still return. Refused
 * credentials throw InventoryAuthError from fetch().
 */
import {
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  EC2Client,
  type EC2ClientConfig,
  type Instance as Ec2Instance,
  type Subnet as Ec2Subnet,
  type Vpc,
} from "@aws-sdk/client-ec2";
import { silentLogger, type Logger } from "@weft/protocol";
import { InventoryAuthError, InventoryError } from "../errors.js";
import type { Instance, InventoryAdapter, InventoryIssue, InventorySnapshot, Network } from "../model.js";
import { withRetry, type RetryOptions } from "../retry.js";
import { classifyEc2Error } from "./classify.js";
import { normaliseInstance, normaliseNetworks } from "./normalise.js";

export interface AwsInventoryOptions {
  /** The AWS account id the snapshot is for. */
  account: string;
  /** Regions to read, e.g. ["eu-west-1", "us-east-1"]. */
  regions: string[];
  /** One EC2 endpoint for every region (a simulator); default: the SDK's regional endpoints. */
  endpoint?: string;
  /** Default: the SDK's default credential chain (environment, profile, SSO, IMDS…). */
  credentials?: EC2ClientConfig["credentials"];
  retry?: RetryOptions;
  /** MaxResults per page, 5–1000 (default 1000). */
  pageSize?: number;
  /** Per-request timeout: a request with no answer by then fails (transient, retried). Default 30 s. */
  requestTimeoutMs?: number;
  logger?: Logger;
}

/** Pages in one listing before it is judged a loop. */
const MAX_PAGES = 10_000;

interface Listing<T> {
  items: T[];
  /** Set when the listing stopped early: its items are the pages read before it. */
  error?: InventoryError;
}

export class AwsInventory implements InventoryAdapter {
  readonly provider = "aws" as const;
  readonly account: string;
  private readonly clients = new Map<string, EC2Client>();
  private readonly log: Logger;

  constructor(private readonly o: AwsInventoryOptions) {
    if (o.regions.length === 0) throw new TypeError("AwsInventory: at least one region is required");
    const size = o.pageSize ?? 1000;
    if (!Number.isInteger(size) || size < 5 || size > 1000) throw new RangeError(`AwsInventory: pageSize ${size} is not between 5 and 1000`);
    this.account = o.account;
    this.log = (o.logger ?? silentLogger).child({ component: "cloud/aws", account: o.account });
    for (const region of new Set(o.regions)) {
      this.clients.set(
        region,
        new EC2Client({
          region,
          maxAttempts: 1,
          ...(o.endpoint ? { endpoint: o.endpoint } : {}),
          ...(o.credentials ? { credentials: o.credentials } : {}),
          // throwOnRequestTimeout: without it @smithy/node-http-handler only logs a warning when
          // requestTimeout passes, and a server that never answers stalls the listing.
          requestHandler: { requestTimeout: o.requestTimeoutMs ?? 30_000, connectionTimeout: Math.min(o.requestTimeoutMs ?? 30_000, 10_000), throwOnRequestTimeout: true },
        }),
      );
    }
  }

  async fetch(signal?: AbortSignal): Promise<InventorySnapshot> {
    const fetchedAt = new Date().toISOString();
    // An auth failure in one region ends the whole fetch: stop the others too.
    const stop = new AbortController();
    const onAbort = () => stop.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const regions = await Promise.all(
        [...this.clients].map(([region, client]) =>
          this.fetchRegion(region, client, stop.signal).catch((err: unknown) => {
            stop.abort(err);
            throw err;
          }),
        ),
      );
      const issues = regions.flatMap((r) => r.issues);
      return {
        provider: "aws",
        account: this.account,
        fetchedAt,
        complete: issues.length === 0,
        instances: regions.flatMap((r) => r.instances),
        networks: regions.flatMap((r) => r.networks),
        issues,
      };
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Releases the clients' sockets. */
  close(): void {
    for (const c of this.clients.values()) c.destroy();
  }

  private async fetchRegion(region: string, client: EC2Client, signal: AbortSignal): Promise<{ instances: Instance[]; networks: Network[]; issues: InventoryIssue[] }> {
    const [instances, vpcs, subnets] = await Promise.all([
      this.list<Ec2Instance>(region, "DescribeInstances", signal, async (NextToken) => {
        const out = await client.send(new DescribeInstancesCommand({ MaxResults: this.pageSize, NextToken }), { abortSignal: signal });
        return { items: (out.Reservations ?? []).flatMap((r) => r.Instances ?? []), next: out.NextToken };
      }),
      this.list<Vpc>(region, "DescribeVpcs", signal, async (NextToken) => {
        const out = await client.send(new DescribeVpcsCommand({ MaxResults: this.pageSize, NextToken }), { abortSignal: signal });
        return { items: out.Vpcs ?? [], next: out.NextToken };
      }),
      this.list<Ec2Subnet>(region, "DescribeSubnets", signal, async (NextToken) => {
        const out = await client.send(new DescribeSubnetsCommand({ MaxResults: this.pageSize, NextToken }), { abortSignal: signal });
        return { items: out.Subnets ?? [], next: out.NextToken };
      }),
    ]);
    const issues: InventoryIssue[] = [];
    for (const [op, l] of [["DescribeInstances", instances], ["DescribeVpcs", vpcs], ["DescribeSubnets", subnets]] as const) {
      if (!l.error) continue;
      issues.push({ scope: `${region}/${op}`, code: l.error.code, message: l.error.message });
      this.log.warn({ region, op, code: l.error.code, err: l.error.message }, "ec2 listing failed; snapshot is partial");
    }
    return {
      instances: instances.items.flatMap((i) => normaliseInstance(i, this.account, region) ?? []),
      networks: normaliseNetworks(vpcs.items, subnets.items, this.account, region),
      issues,
    };
  }

  private get pageSize(): number {
    return this.o.pageSize ?? 1000;
  }

  /**
   * Every page of one listing, each page retried on its own. Auth errors and aborts propagate;
   * any other failure ends the listing with the pages read so far and the error.
   */
  private async list<T>(region: string, op: string, signal: AbortSignal, page: (token: string | undefined) => Promise<{ items: T[]; next: string | undefined }>): Promise<Listing<T>> {
    const name = `ec2 ${op} (${region})`;
    const items: T[] = [];
    const seen = new Set<string>();
    let token: string | undefined;
    try {
      for (let n = 0; ; n++) {
        if (n >= MAX_PAGES) throw new InventoryError(`${name}: more than ${MAX_PAGES} pages`, { code: "pagination", retryable: false });
        const out = await withRetry(() => page(token), (err) => classifyEc2Error(err, name), {
          ...this.o.retry,
          signal,
          onRetry: (err, attempt, delayMs) => {
            this.log.debug({ region, op, attempt, delayMs, code: err.code }, "ec2 call retried");
            this.o.retry?.onRetry?.(err, attempt, delayMs);
          },
        });
        items.push(...out.items);
        if (!out.next) return { items };
        if (seen.has(out.next)) throw new InventoryError(`${name}: NextToken repeated; pagination stopped`, { code: "pagination", retryable: false });
        seen.add(out.next);
        token = out.next;
      }
    } catch (raw) {
      if (raw instanceof InventoryAuthError) throw raw;
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : raw;
      const err = raw instanceof InventoryError ? raw : new InventoryError(`${name}: ${(raw as Error)?.message ?? String(raw)}`, { code: "unknown", retryable: false, cause: raw });
      return { items, error: err };
    }
  }
}

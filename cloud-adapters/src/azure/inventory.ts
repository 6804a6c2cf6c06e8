/**
 * One Azure subscription's inventory through the unmodified ARM SDKs. Five subscription-wide
 * lists, every page followed: virtualMachines.listAll (model: tags, vmId, NIC references),
 * virtualMachines.listAll with statusOnly=true (power state, one pass for all VMs rather than an
 * instanceView call per VM), networkInterfaces.listAll, publicIPAddresses.listAll and
 * virtualNetworks.listAll. The SDKs' own retry policy is off (maxRetries 0) so withRetry is the
 * single policy, applied per page. A list that keeps failing becomes an issue and makes the
 * snapshot incomplete; refused credentials throw InventoryAuthError.
 */
import { ComputeManagementClient } from "@azure/arm-compute";
import { NetworkManagementClient, getContinuationToken } from "@azure/arm-network";
import type { TokenCredential } from "@azure/core-auth";
import { DefaultAzureCredential } from "@azure/identity";
import { silentLogger, type Logger } from "@weft/protocol";
import { InventoryAuthError, InventoryError } from "../errors.js";
import type { InventoryAdapter, InventoryIssue, InventorySnapshot } from "../model.js";
import { withRetry, type RetryOptions } from "../retry.js";
import { bounded } from "../timeout.js";
import { classifyAzureError } from "./classify.js";
import { joinInstances, toNetworks } from "./normalise.js";

export interface AzureInventoryOptions {
  subscriptionId: string;
  /** ARM base URL (default https://management.azure.com; a simulator's URL in tests and the lab). */
  endpoint?: string;
  /** Default: DefaultAzureCredential (environment, workload identity, managed identity, Azure CLI…). */
  credential?: TokenCredential;
  /** Extra CA to trust for `endpoint` (the simulator's test CA); in-process, no NODE_EXTRA_CA_CERTS. */
  caPem?: string;
  /** Token scope (default https://management.azure.com/.default; other clouds have their own). */
  credentialScope?: string;
  retry?: Omit<RetryOptions, "signal">;
  /** Per-page timeout: a page with no answer by then fails (transient, retried). Default 30 s. */
  requestTimeoutMs?: number;
  /** Upper bound on pages per list, against a nextLink that never ends (default 10 000). */
  maxPages?: number;
  logger?: Logger;
}

/** A list's pages, resumable from a continuation token (the nextLink). */
type PageSource<T> = (token: string | undefined, abortSignal: AbortSignal) => { next(): Promise<IteratorResult<T[]>> };

export class AzureInventory implements InventoryAdapter {
  readonly provider = "azure" as const;
  readonly account: string;
  private readonly compute: ComputeManagementClient;
  private readonly network: NetworkManagementClient;
  private readonly log: Logger;

  constructor(private readonly o: AzureInventoryOptions) {
    this.account = o.subscriptionId;
    this.log = (o.logger ?? silentLogger).child({ component: "cloud/azure", account: o.subscriptionId });
    const credential = o.credential ?? new DefaultAzureCredential();
    const scope = o.credentialScope ?? "https://management.azure.com/.default";
    const common = {
      ...(o.endpoint ? { endpoint: o.endpoint } : {}),
      ...(o.caPem ? { tlsOptions: { ca: o.caPem } } : {}),
      retryOptions: { maxRetries: 0 },
      userAgentOptions: { userAgentPrefix: "weft-inventory" },
    };
    this.compute = new ComputeManagementClient(credential, o.subscriptionId, { ...common, credentials: { scopes: [scope] } });
    this.network = new NetworkManagementClient(credential, o.subscriptionId, { ...common, ...(o.endpoint ? { $host: o.endpoint } : {}), credentialScopes: [scope] });
  }

  async fetch(signal?: AbortSignal): Promise<InventorySnapshot> {
    const issues: InventoryIssue[] = [];
    // VMs first and alone: refused credentials then cost one request, not five.
    const vms = await this.list(
      "virtualMachines.listAll",
      (token, abortSignal) => this.compute.virtualMachines.listAll({ abortSignal }).byPage({ continuationToken: token }),
      computeToken,
      issues,
      signal,
    );
    // ARM did not answer the first list even when retried: the others would wait as long. Partial, nothing more asked.
    if (issues.some((i) => i.code === "timeout")) {
      return { provider: "azure", account: this.account, fetchedAt: new Date().toISOString(), complete: false, instances: [], networks: [], issues };
    }
    const [statuses, nics, publicIps, vnets] = await Promise.all([
      this.list(
        "virtualMachines.listAll?statusOnly",
        (token, abortSignal) => this.compute.virtualMachines.listAll({ statusOnly: "true", abortSignal }).byPage({ continuationToken: token }),
        computeToken,
        issues,
        signal,
      ),
      this.list("networkInterfaces.listAll", (token, abortSignal) => this.network.networkInterfaces.listAll({ abortSignal }).byPage({ continuationToken: token }), getContinuationToken, issues, signal),
      this.list("publicIPAddresses.listAll", (token, abortSignal) => this.network.publicIPAddresses.listAll({ abortSignal }).byPage({ continuationToken: token }), getContinuationToken, issues, signal),
      this.list("virtualNetworks.listAll", (token, abortSignal) => this.network.virtualNetworks.listAll({ abortSignal }).byPage({ continuationToken: token }), getContinuationToken, issues, signal),
    ]);
    return {
      provider: "azure",
      account: this.account,
      fetchedAt: new Date().toISOString(),
      complete: issues.length === 0,
      instances: joinInstances(this.account, { vms, statuses, nics, publicIps }),
      networks: toNetworks(this.account, vnets),
      issues,
    };
  }

  /**
   * Every page of one list, each page retried on its own. When the list fails for good it records
   * an issue and returns the pages read before the failure; InventoryAuthError and aborts are rethrown.
   */
  private async list<T>(
    operation: string,
    pages: PageSource<T>,
    tokenOf: (page: unknown) => string | undefined,
    issues: InventoryIssue[],
    signal: AbortSignal | undefined,
  ): Promise<T[]> {
    const out: T[] = [];
    const seen = new Set<string>();
    let token: string | undefined;
    try {
      for (let n = 0; ; n++) {
        if (n >= (this.o.maxPages ?? 10_000)) throw new InventoryError(`azure ${operation}: more than ${n} pages`, { code: "paging_limit", retryable: false });
        const at = token;
        const page = await withRetry(
          () =>
            bounded(
              async (callSignal) => {
                const r = await pages(at, callSignal).next();
                return r.done ? undefined : r.value;
              },
              this.o.requestTimeoutMs ?? 30_000,
              `azure ${operation}`,
              signal,
            ),
          (err) => classifyAzureError(err, operation),
          {
            ...this.o.retry,
            ...(signal ? { signal } : {}),
            onRetry: (err, attempt, delayMs) => {
              this.log.debug({ op: operation, attempt, delayMs, code: err.code }, "arm call retried");
              this.o.retry?.onRetry?.(err, attempt, delayMs);
            },
          },
        );
        if (!page) break;
        out.push(...page);
        token = tokenOf(page);
        if (!token) break;
        if (seen.has(token)) throw new InventoryError(`azure ${operation}: nextLink repeats ${token}`, { code: "paging_loop", retryable: false });
        seen.add(token);
      }
      return out;
    } catch (err) {
      if (err instanceof InventoryAuthError || signal?.aborted) throw err;
      const e = err instanceof InventoryError ? err : (classifyAzureError(err, operation) as Error);
      const code = e instanceof InventoryError ? e.code : "unknown";
      issues.push({ scope: operation, code, message: e.message });
      this.log.warn({ op: operation, code, err: e.message, kept: out.length }, "arm listing failed; snapshot is partial");
      return out;
    }
  }
}

/** The compute SDK puts the nextLink on each page array. */
function computeToken(page: unknown): string | undefined {
  return (page as { continuationToken?: string }).continuationToken;
}

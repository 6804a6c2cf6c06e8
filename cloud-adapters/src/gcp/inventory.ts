/**
 * GCP inventory: one project's Compute Engine instances, VPC networks and subnetworks through the
 * `@google-cloud/compute` clients (REST transport), normalised to the inventory model.
 *
 * Every page is one call under withRetry, the only retry policy: the SDK's own retries are turned
 * off per call (`retry: null`). Instances and subnetworks are read with `aggregatedList`
 * (`returnPartialSuccess`, so an unreachable zone is reported instead of failing the whole list);
 * scopes with a warning and no results are skipped; `unreachables` become issues. A resource type
 * that keeps failing becomes an issue and the snapshot is incomplete; refused credentials throw
 * InventoryAuthError. Each page is bounded by `timeoutMs` (../timeout.ts: gax's REST transport does
 * not enforce its own timeout) and the three lists run side by side.
 */
import { InstancesClient, NetworksClient, SubnetworksClient, type protos } from "@google-cloud/compute";
import { OAuth2Client, type AuthClient } from "google-auth-library";
import { InventoryAuthError, InventoryError } from "../errors.js";
import type { Instance, InventoryAdapter, InventoryIssue, InventorySnapshot, Network } from "../model.js";
import { withRetry, type RetryOptions } from "../retry.js";
import { bounded } from "../timeout.js";
import { classifyGcpError } from "./classify.js";
import { toInstance, toNetwork } from "./normalise.js";

type IInstanceAggregatedList = protos.google.cloud.compute.v1.IInstanceAggregatedList;
type ISubnetworkAggregatedList = protos.google.cloud.compute.v1.ISubnetworkAggregatedList;
type INetworkList = protos.google.cloud.compute.v1.INetworkList;
type ISubnetwork = protos.google.cloud.compute.v1.ISubnetwork;
type INetwork = protos.google.cloud.compute.v1.INetwork;
type ClientOptions = NonNullable<ConstructorParameters<typeof InstancesClient>[0]>;
/**
 * Credentials: a google-auth-library AuthClient (OAuth2Client, GoogleAuth's clients…). The SDK's
 * gax carries its own copy of google-auth-library, whose classes TypeScript tells apart from the
 * workspace's; both are accepted and behave the same at runtime.
 */
export type GcpAuthClient = AuthClient | NonNullable<ClientOptions["authClient"]>;

/** Per-call options for the gax layer: no gax retries, one page per call. */
const CALL = { retry: null, autoPaginate: false } as const;

export interface GcpInventoryOptions {
  project: string;
  /** "http://127.0.0.1:8080" for a simulator, or a host[:port] served over HTTPS (default compute.googleapis.com). */
  apiEndpoint?: string;
  /** Credentials (e.g. a google-auth-library OAuth2Client); default: the SDK's application default credentials. */
  authClient?: GcpAuthClient;
  /** A bearer access token obtained out of band (or a simulator's), used instead of authClient. */
  accessToken?: string;
  retry?: Omit<RetryOptions, "signal">;
  /** maxResults per page (default 500, GCE's maximum). */
  pageSize?: number;
  /** Per-call (per-page) timeout, a transient failure when exceeded (default 60 s). */
  timeoutMs?: number;
}

type PageCall<Res> = (request: Record<string, unknown>, options: Record<string, unknown>) => Promise<[unknown, unknown, Res]>;

interface Clients {
  instances: InstancesClient;
  networks: NetworksClient;
  subnetworks: SubnetworksClient;
}

/** Splits "http://host:port" into the client's apiEndpoint/port/protocol options. */
export function endpointOptions(apiEndpoint: string | undefined): Pick<ClientOptions, "apiEndpoint" | "port"> & { protocol?: string } {
  if (!apiEndpoint) return {};
  if (!/^[a-z]+:\/\//i.test(apiEndpoint)) return { apiEndpoint };
  const u = new URL(apiEndpoint);
  const protocol = u.protocol.replace(":", "");
  const port = u.port ? Number(u.port) : protocol === "http" ? 80 : 443;
  return { apiEndpoint: u.hostname.replace(/^\[(.*)\]$/, "$1"), port, protocol };
}

export class GcpInventory implements InventoryAdapter {
  readonly provider = "gcp" as const;
  #tokenClient: OAuth2Client | undefined;

  /** The configured credentials: an AuthClient, or one holding the given access token. */
  private authClient(): GcpAuthClient | undefined {
    if (this.o.authClient) return this.o.authClient;
    if (this.o.accessToken === undefined) return undefined;
    if (!this.#tokenClient) {
      this.#tokenClient = new OAuth2Client();
      this.#tokenClient.setCredentials({ access_token: this.o.accessToken, expiry_date: Date.now() + 365 * 24 * 3600_000 });
    }
    return this.#tokenClient;
  }
  readonly account: string;
  private clients: Promise<Clients> | undefined;

  constructor(private readonly o: GcpInventoryOptions) {
    this.account = o.project;
  }

  private connect(): Promise<Clients> {
    this.clients ??= (async () => {
      const opts: ClientOptions & { protocol?: string } = {
        fallback: true,
        ...endpointOptions(this.o.apiEndpoint),
        ...(this.authClient() ? { authClient: this.authClient() as ClientOptions["authClient"] } : {}),
      };
      const c: Clients = { instances: new InstancesClient(opts), networks: new NetworksClient(opts), subnetworks: new SubnetworksClient(opts) };
      try {
        // Resolves the credentials (the default chain when no authClient was given).
        await Promise.all([c.instances.initialize(), c.networks.initialize(), c.subnetworks.initialize()]);
      } catch (err) {
        await Promise.allSettled([c.instances.close(), c.networks.close(), c.subnetworks.close()]);
        throw new InventoryAuthError(`gcp credentials: ${(err as Error).message}`, err);
      }
      return c;
    })();
    const p = this.clients;
    p.catch(() => {
      if (this.clients === p) this.clients = undefined;
    });
    return p;
  }

  async close(): Promise<void> {
    const c = await this.clients?.catch(() => undefined);
    this.clients = undefined;
    if (c) await Promise.allSettled([c.instances.close(), c.networks.close(), c.subnetworks.close()]);
  }

  async fetch(signal?: AbortSignal): Promise<InventorySnapshot> {
    signal?.throwIfAborted();
    const c = await this.connect();
    const issues: InventoryIssue[] = [];
    let complete = true;
    const instances: Instance[] = [];
    const networks: INetwork[] = [];
    const subnetworks: ISubnetwork[] = [];
    const fail = (scope: string, err: unknown) => {
      if (err instanceof InventoryAuthError) throw err;
      const e = err instanceof InventoryError ? err : classifyGcpError(err, scope);
      issues.push({ scope, code: e.code, message: e.message });
      complete = false;
    };
    const unreachable = (resource: string, scopes: string[] | null | undefined) => {
      for (const s of scopes ?? []) {
        issues.push({ scope: `${resource} ${s}`, code: "unreachable", message: `gce ${resource}.aggregatedList: ${s} unreachable` });
        complete = false;
      }
    };

    // The three lists run side by side: a server that does not answer costs one page's retries, not three.
    await Promise.all([
      (async () => {
        try {
          await this.pages("instances.aggregatedList", (req, o) => (c.instances.innerApiCalls.aggregatedList as PageCall<IInstanceAggregatedList>)({ ...req, returnPartialSuccess: true }, o), signal, (page) => {
            unreachable("instances", page.unreachables);
            for (const [scope, list] of Object.entries(page.items ?? {})) {
              if (list.warning?.code === "UNREACHABLE") unreachable("instances", [scope]);
              for (const i of list.instances ?? []) instances.push(toInstance(this.o.project, scope, i));
            }
          });
        } catch (err) {
          fail("instances", err);
        }
      })(),
      (async () => {
        try {
          await this.pages("networks.list", (req, o) => c.networks.list(req, o) as unknown as Promise<[unknown, unknown, INetworkList]>, signal, (page) => {
            networks.push(...(page.items ?? []));
          });
        } catch (err) {
          fail("networks", err);
        }
      })(),
      (async () => {
        try {
          await this.pages("subnetworks.aggregatedList", (req, o) => (c.subnetworks.innerApiCalls.aggregatedList as PageCall<ISubnetworkAggregatedList>)({ ...req, returnPartialSuccess: true }, o), signal, (page) => {
            unreachable("subnetworks", page.unreachables);
            for (const [scope, list] of Object.entries(page.items ?? {})) {
              if (list.warning?.code === "UNREACHABLE") unreachable("subnetworks", [scope]);
              subnetworks.push(...(list.subnetworks ?? []));
            }
          });
        } catch (err) {
          fail("subnetworks", err);
        }
      })(),
    ]);

    // An aborted fetch is no snapshot at all, not an incomplete one.
    signal?.throwIfAborted();
    const nets: Network[] = networks.map((n) => toNetwork(this.o.project, n, subnetworks));
    return { provider: "gcp", account: this.o.project, fetchedAt: new Date().toISOString(), complete, instances, networks: nets, issues };
  }

  /** Reads every page of one list, each page one call under withRetry. */
  private async pages<Res extends { nextPageToken?: string | null }>(
    operation: string,
    call: PageCall<Res>,
    signal: AbortSignal | undefined,
    onPage: (page: Res) => void,
  ): Promise<void> {
    const seen = new Set<string>();
    let pageToken: string | undefined;
    const label = `gce ${operation}`;
    const timeout = this.o.timeoutMs ?? 60_000;
    const options = { ...CALL, timeout };
    do {
      if (signal?.aborted) throw new InventoryError(`${label}: aborted`, { code: "aborted", retryable: false, cause: signal.reason });
      const request: Record<string, unknown> = { project: this.o.project, maxResults: this.o.pageSize ?? 500, ...(pageToken ? { pageToken } : {}) };
      const [, , page] = await withRetry(() => bounded(() => call(request, options), timeout, label, signal), (err) => classifyGcpError(err, label), { ...this.o.retry, ...(signal ? { signal } : {}) });
      onPage(page);
      pageToken = page.nextPageToken || undefined;
      if (pageToken && seen.has(pageToken)) throw new InventoryError(`${label}: the page token repeats; stopping`, { code: "paging_loop", retryable: false });
      if (pageToken) seen.add(pageToken);
    } while (pageToken);
  }
}

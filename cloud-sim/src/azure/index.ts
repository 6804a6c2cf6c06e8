/**
 * The Azure simulator: an ARM endpoint over HTTPS (a throwaway CA; clients trust `caPem`) that
 * the unmodified ComputeManagementClient and NetworkManagementClient read, with the /_sim/ admin
 * interface on the same listener, and optionally the instance metadata service on a separate
 * plain-HTTP listener (the lab binds it to 169.254.169.254:80).
 *
 *   const sim = await startAzureSim({ host: "127.0.0.1", port: 0, subscriptionId: SUB });
 *   new ComputeManagementClient(cred, SUB, { endpoint: sim.url, tlsOptions: { ca: sim.caPem } });
 */
import { createServer as createHttpServer, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, request as httpsRequest } from "node:https";
import { SimAdmin, handleAdmin } from "../admin.js";
import { Faults } from "../faults.js";
import { SimStore } from "../store.js";
import { armError, handleArm } from "./arm.js";
import { createAzureAttestedSigner } from "./attested.js";
import { handleImds } from "./imds.js";
import { createSimTls } from "./tls.js";
import { baseUrl, closeServer as close, listen } from "../listen.js";

export interface AzureSimOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  subscriptionId: string;
  /** Resource group of every simulated resource unless an instance's extra.resourceGroup says otherwise (default "weft-sim"). */
  resourceGroup?: string;
  /** Serve the instance metadata service too (plain HTTP). */
  metadata?: { host: string; port: number };
  store?: SimStore;
  faults?: Faults;
  /** Items per list page (default 100). */
  pageSize?: number;
  /** Extra DNS names or addresses for the server certificate (127.0.0.1, ::1 and localhost are always in it). */
  sans?: string[];
}

export interface AzureSim {
  /** Base URL of ARM, e.g. https://127.0.0.1:40123 — the SDKs' `endpoint`. */
  url: string;
  /** The CA that signed the server certificate: pass as `tlsOptions.ca` (or NODE_EXTRA_CA_CERTS). */
  caPem: string;
  /** Base URL of the metadata service, when started. */
  metadataUrl: string | undefined;
  store: SimStore;
  faults: Faults;
  /** Admin client bound to this simulator (trusts caPem). */
  admin: SimAdmin;
  /** The test PKI attested documents are signed under: trust `rootPem`, chain through `intermediatePem`. */
  identity: { rootPem: string; intermediatePem: string };
  close(): Promise<void>;
}

export async function startAzureSim(o: AzureSimOptions): Promise<AzureSim> {
  const store = o.store ?? new SimStore();
  const faults = o.faults ?? new Faults();
  const scope = { subscriptionId: o.subscriptionId, resourceGroup: o.resourceGroup ?? "weft-sim" };
  const tls = await createSimTls([o.host, ...(o.sans ?? [])].filter((h) => h !== "0.0.0.0" && h !== "::"));
  let url = "";

  const api = createHttpsServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    void serve(res, async () => {
      if (await handleAdmin(req, res, store, faults)) return;
      await handleArm(req, res, { ...scope, store, faults, pageSize: o.pageSize ?? 100, fallbackBaseUrl: () => url });
    });
  });
  url = baseUrl("https", await listen(api, o.host, o.port));

  let imds: Server | undefined;
  let metadataUrl: string | undefined;
  const attested = await createAzureAttestedSigner();
  if (o.metadata) {
    imds = createHttpServer((req, res) => void serve(res, async () => handleImds(req, res, { ...scope, store, attested })));
    metadataUrl = baseUrl("http", await listen(imds, o.metadata.host, o.metadata.port));
  }

  return {
    url,
    caPem: tls.caPem,
    metadataUrl,
    store,
    faults,
    admin: new SimAdmin(url, caFetch(tls.caPem)),
    identity: { rootPem: attested.rootPem, intermediatePem: attested.intermediatePem },
    close: async () => {
      await Promise.all([api, imds].filter((s): s is Server => s !== undefined).map(close));
    },
  };
}

/** Runs a handler; an unexpected throw becomes ARM's 500 rather than a hung request. */
async function serve(res: ServerResponse, handler: () => Promise<void>): Promise<void> {
  try {
    await handler();
  } catch (err) {
    if (!res.headersSent) armError(res, 500, "InternalServerError", (err as Error).message);
    else res.destroy();
  }
}

/**
 * A fetch for HTTPS URLs signed by `caPem` (Node's global fetch cannot take a CA without undici
 * as a dependency). Enough for the admin client and tests: method, headers, string body.
 */
export function caFetch(caPem: string): typeof fetch {
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const target = new URL(input instanceof Request ? input.url : input.toString());
    const headers = Object.fromEntries(new Headers(init?.headers).entries());
    return new Promise<Response>((resolve, reject) => {
      const req = httpsRequest(target, { method: init?.method ?? "GET", headers, ca: caPem }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          const body = status === 204 || status === 304 ? null : Buffer.concat(chunks);
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(", ") : v);
          resolve(new Response(body, { status, headers: h }));
        });
      });
      req.on("error", reject);
      if (typeof init?.body === "string") req.write(init.body);
      req.end();
    });
  }) as typeof fetch;
}

export { createSimTls, type SimTls } from "./tls.js";
export { handleArm, type ArmHandlerOptions } from "./arm.js";
export { handleImds, instanceDocument, callerAddress } from "./imds.js";
export { createAzureAttestedSigner, azureTimestamp, ATTESTED_LIFETIME_MS, type AzureAttestedSigner } from "./attested.js";
export { vmResourceId, nicResourceId, publicIpResourceId, vnetResourceId, powerStateCode } from "./resources.js";

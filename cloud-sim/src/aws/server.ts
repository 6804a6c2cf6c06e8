/**
 * One AWS simulator: the EC2 Query API (and the /_sim/ admin interface) on one listener, the
 * instance metadata service on another, so the lab can bind metadata to 169.254.169.254 inside a
 * namespace while tests use 127.0.0.1 and ephemeral ports.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { handleAdmin, readBody, SimAdmin } from "../admin.js";
import { Faults } from "../faults.js";
import { SimStore } from "../store.js";
import { handleEc2 } from "./ec2.js";
import { createAwsIdentitySigner } from "./identity.js";
import { createImdsHandler } from "./imds.js";
import { baseUrl, closeServer as close, listen as listenAt } from "../listen.js";

export interface AwsSimOptions {
  /** API listener (default 127.0.0.1, port 0 = ephemeral). */
  host?: string;
  port?: number;
  /** Metadata listener (default: the API host, an ephemeral port). */
  metadata?: { host?: string; port?: number };
  /** The account id every reservation, VPC and identity document carries. */
  account: string;
  store?: SimStore;
  faults?: Faults;
  /** Page size when a call sends no MaxResults (default 1000, as EC2). */
  defaultPageSize?: number;
  /** Accept only these access key ids (default: any signed request). */
  accessKeyIds?: string[];
}

export interface AwsSim {
  /** Base URL of the EC2 API (and /_sim/): the EC2Client's `endpoint`. */
  url: string;
  /** Base URL of the metadata service. */
  metadataUrl: string;
  store: SimStore;
  faults: Faults;
  admin: SimAdmin;
  /** The certificate the identity documents are signed with: trust it in place of AWS's. */
  identity: { certificatePem: string };
  close(): Promise<void>;
}

export async function startAwsSim(o: AwsSimOptions): Promise<AwsSim> {
  const store = o.store ?? new SimStore();
  const faults = o.faults ?? new Faults();
  const ec2 = { store, faults, account: o.account, defaultPageSize: o.defaultPageSize, accessKeyIds: o.accessKeyIds };

  const api = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      if (await handleAdmin(req, res, store, faults)) return;
      await handleEc2(ec2, req, await readBody(req), res);
    })().catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(String(err));
    });
  });
  const identity = await createAwsIdentitySigner();
  const imds = createServer(createImdsHandler({ store, account: o.account, identity }));

  const host = o.host ?? "127.0.0.1";
  const url = baseUrl("http", await listenAt(api, host, o.port ?? 0));
  let metadataUrl: string;
  try {
    metadataUrl = baseUrl("http", await listenAt(imds, o.metadata?.host ?? host, o.metadata?.port ?? 0));
  } catch (err) {
    await close(api);
    throw err;
  }
  return {
    url,
    metadataUrl,
    store,
    faults,
    admin: new SimAdmin(url),
    identity: { certificatePem: identity.certificatePem },
    close: async () => {
      await Promise.all([close(api), close(imds)]);
    },
  };
}

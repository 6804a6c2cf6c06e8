/**
 * The EC2 instance metadata service, IMDSv2 only: `PUT /latest/api/token` with
 * `X-aws-ec2-metadata-token-ttl-seconds` (1–21600) returns a session token; every GET needs it in
 * `X-aws-ec2-metadata-token` (401 without, or when expired or issued to another caller). The
 * caller is the instance whose private or public address is the request's source address
 * (SimStore.byAddress); an unknown or terminated caller gets 404.
 *
 *   GET /latest/dynamic/instance-identity/document   the identity document (JSON)
 *   GET /latest/dynamic/instance-identity/rsa2048    its PKCS#7 signature, base64 (aws/identity.ts)
 *   GET /latest/meta-data/instance-id | local-ipv4 | public-ipv4 | instance-type | ami-id
 *       /latest/meta-data/placement/availability-zone | placement/region
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { SimInstance, SimStore } from "../store.js";
import { imageId } from "./ec2.js";
import type { AwsIdentitySigner } from "./identity.js";

export interface ImdsOptions {
  store: SimStore;
  account: string;
  /** Signs the identity document (`rsa2048`). */
  identity: AwsIdentitySigner;
  /** Test seam for token expiry. */
  now?: () => number;
}

const MAX_TTL_SECONDS = 21_600;

/** The identity document as IMDS serves it (field order and nulls as on EC2). */
export function awsIdentityDocument(i: SimInstance, account: string): Record<string, unknown> {
  return {
    accountId: account,
    architecture: i.extra?.architecture ?? "x86_64",
    availabilityZone: i.zone ?? `${i.region}a`,
    billingProducts: null,
    devpayProductCodes: null,
    marketplaceProductCodes: null,
    imageId: imageId(i),
    instanceId: i.id,
    instanceType: i.extra?.instanceType ?? "t3.micro",
    kernelId: null,
    pendingTime: i.launchedAt.replace(/\.\d+Z$/, "Z"),
    privateIp: i.privateIp,
    ramdiskId: null,
    region: i.region,
    version: "2017-09-30",
  };
}

/** `::ffff:127.0.0.1` → `127.0.0.1`. */
export function normaliseAddress(a: string | undefined): string {
  return (a ?? "").replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, "$1");
}

function text(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "text/plain", server: "EC2ws", ...headers }).end(body);
}

/** A request handler for the metadata listener. */
export function createImdsHandler(o: ImdsOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const now = o.now ?? Date.now;
  /** token → the address it was issued to and when it expires. */
  const tokens = new Map<string, { address: string; expiresAt: number }>();

  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://169.254.169.254");
    const address = normaliseAddress(req.socket.remoteAddress);
    if (url.pathname === "/latest/api/token") {
      if (req.method !== "PUT") return text(res, 405, "Method Not Allowed");
      // IMDS refuses tokens to requests that went through a proxy.
      if (req.headers["x-forwarded-for"] !== undefined) return text(res, 403, "Forbidden");
      const ttl = Number(req.headers["x-aws-ec2-metadata-token-ttl-seconds"]);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_SECONDS) return text(res, 400, "Bad Request");
      for (const [t, v] of tokens) if (v.expiresAt <= now()) tokens.delete(t);
      const token = randomBytes(42).toString("base64");
      tokens.set(token, { address, expiresAt: now() + ttl * 1000 });
      return text(res, 200, token, { "x-aws-ec2-metadata-token-ttl-seconds": String(ttl) });
    }
    if (req.method !== "GET" && req.method !== "HEAD") return text(res, 405, "Method Not Allowed");
    const token = req.headers["x-aws-ec2-metadata-token"];
    const session = typeof token === "string" ? tokens.get(token) : undefined;
    if (!session || session.expiresAt <= now() || session.address !== address) return text(res, 401, "Unauthorized");
    const i = o.store.byAddress(address);
    if (!i || i.state === "terminated") return text(res, 404, "Not Found");
    const document = JSON.stringify(awsIdentityDocument(i, o.account), null, 2);
    if (url.pathname === "/latest/dynamic/instance-identity/document") return text(res, 200, document);
    if (url.pathname === "/latest/dynamic/instance-identity/rsa2048") {
      o.identity.rsa2048(document, new Date(now())).then(
        (signature) => text(res, 200, signature),
        (err: unknown) => text(res, 500, `signing failed: ${(err as Error).message}`),
      );
      return;
    }
    const metaData: Record<string, string | undefined> = {
      "instance-id": i.id,
      "local-ipv4": i.privateIp,
      "public-ipv4": i.publicIp,
      "instance-type": i.extra?.instanceType ?? "t3.micro",
      "ami-id": imageId(i),
      "placement/availability-zone": i.zone ?? `${i.region}a`,
      "placement/region": i.region,
    };
    const key = url.pathname.startsWith("/latest/meta-data/") ? url.pathname.slice("/latest/meta-data/".length) : undefined;
    const value = key === undefined ? undefined : metaData[key];
    if (value === undefined) return text(res, 404, "Not Found");
    return text(res, 200, value);
  };
}

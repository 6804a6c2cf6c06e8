/**
 * The EC2 Query API over the shared fleet store: `POST /` with a form-encoded body
 * (`Action=DescribeInstances&Version=2016-11-15&MaxResults=…&NextToken=…&Filter.1.Name=…`), XML
 * answers in the 2016-11-15 namespace, every list entry an `<item>`. The region is the SigV4
 * credential scope's (`Credential=AKID/date/<region>/ec2/aws4_request`), so one listener serves
 * every region; each sees only its own instances and VPCs. Errors use EC2's shape
 * (`<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`).
 */
import { createHash, randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Faults } from "../faults.js";
import type { SimInstance, SimNetwork, SimState, SimStore } from "../store.js";
import { document, type XmlNode } from "./xml.js";

export const EC2_NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/";

/** EC2's numeric state codes (the low byte; the high byte is internal). */
export const EC2_STATE_CODES: Record<SimState | "shutting-down", number> = {
  pending: 0,
  running: 16,
  "shutting-down": 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

export interface Ec2ApiOptions {
  store: SimStore;
  faults: Faults;
  /** Owner of every reservation and VPC (the account id). */
  account: string;
  /** Page size when the caller sends no MaxResults (EC2 then returns everything; default 1000). */
  defaultPageSize?: number;
  /** When set, only these access key ids are accepted; others get 401 AuthFailure. */
  accessKeyIds?: string[];
}

/** A refusal in EC2's terms: HTTP status, error code, message. */
export class Ec2ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "Ec2ApiError";
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/ec2/aws4_request, SignedHeaders=…, Signature=…`. */
export function parseCredentialScope(authorization: string | undefined): { accessKeyId: string; region: string } | undefined {
  const m = /Credential=([^/\s,]+)\/\d{8}\/([a-z0-9-]+)\/ec2\/aws4_request/.exec(authorization ?? "");
  return m ? { accessKeyId: m[1]!, region: m[2]! } : undefined;
}

/** `Filter.N.Name` / `Filter.N.Value.M` → name → values. */
export function parseFilters(params: URLSearchParams): Map<string, string[]> {
  const byIndex = new Map<string, { name?: string; values: string[] }>();
  for (const [k, v] of params) {
    const m = /^Filter\.(\d+)\.(Name|Value\.\d+)$/.exec(k);
    if (!m) continue;
    const f = byIndex.get(m[1]!) ?? { values: [] };
    if (m[2] === "Name") f.name = v;
    else f.values.push(v);
    byIndex.set(m[1]!, f);
  }
  const out = new Map<string, string[]>();
  for (const f of byIndex.values()) if (f.name) out.set(f.name, [...(out.get(f.name) ?? []), ...f.values]);
  return out;
}

/** `InstanceId.1`, `InstanceId.2`… */
function listParam(params: URLSearchParams, prefix: string): string[] {
  return [...params].filter(([k]) => k.startsWith(`${prefix}.`)).map(([, v]) => v);
}

function matchesTags(tags: Record<string, string>, name: string, values: string[]): boolean | undefined {
  if (name.startsWith("tag:")) {
    const v = tags[name.slice(4)];
    return v !== undefined && values.includes(v);
  }
  if (name === "tag-key") return Object.keys(tags).some((k) => values.includes(k));
  return undefined;
}

function instanceFilter(name: string, values: string[], i: SimInstance): boolean {
  const tag = matchesTags(i.tags, name, values);
  if (tag !== undefined) return tag;
  const field: Record<string, string | undefined> = {
    "instance-state-name": i.state,
    "instance-id": i.id,
    "vpc-id": i.network,
    "subnet-id": i.subnet,
    "availability-zone": i.zone,
    "private-ip-address": i.privateIp,
    "ip-address": i.publicIp,
    "instance-type": instanceType(i),
  };
  if (!(name in field)) throw new Ec2ApiError(400, "InvalidParameterValue", `The filter '${name}' is invalid`);
  const v = field[name];
  return v !== undefined && values.includes(v);
}

function instanceType(i: SimInstance): string {
  return i.extra?.instanceType ?? "t3.micro";
}

function hex(seed: string, n: number): string {
  return createHash("sha256").update(seed).digest("hex").slice(0, n);
}

/** The instance's image: `extra.imageId`, else a stable made-up one. */
export function imageId(i: SimInstance): string {
  return i.extra?.imageId ?? `ami-0${hex(`image:${i.region}`, 16)}`;
}

/** EC2's DNS names: `ip-10-0-0-5.ec2.internal` in us-east-1, `ip-10-0-0-5.<region>.compute.internal` elsewhere. */
function privateDnsName(i: SimInstance): string {
  return `ip-${i.privateIp.replace(/[.:]/g, "-")}.${i.region === "us-east-1" ? "ec2.internal" : `${i.region}.compute.internal`}`;
}

function publicDnsName(i: SimInstance, ip: string): string {
  return `ec2-${ip.replace(/[.:]/g, "-")}.${i.region === "us-east-1" ? "compute-1" : `${i.region}.compute`}.amazonaws.com`;
}

const tagSet = (tags: Record<string, string>): XmlNode[] => Object.entries(tags).map(([key, value]) => ({ key, value }));

/**
 * One instance as DescribeInstances renders it. As on EC2, a terminated instance has lost its
 * VPC, subnet, addresses and interfaces, and a stopped one its (auto-assigned) public address.
 */
export function renderInstance(i: SimInstance): XmlNode {
  const gone = i.state === "terminated";
  const publicIp = gone || i.state === "stopped" || i.state === "stopping" ? undefined : i.publicIp;
  const eni = gone
    ? []
    : [
        {
          networkInterfaceId: `eni-0${hex(`eni:${i.id}`, 16)}`,
          subnetId: i.subnet,
          vpcId: i.network,
          description: "",
          status: "in-use",
          privateIpAddress: i.privateIp,
          privateDnsName: privateDnsName(i),
          association: publicIp ? { publicIp, publicDnsName: publicDnsName(i, publicIp), ipOwnerId: "amazon" } : undefined,
          attachment: { attachmentId: `eni-attach-0${hex(`att:${i.id}`, 16)}`, deviceIndex: 0, status: "attached", attachTime: i.launchedAt, deleteOnTermination: true },
          privateIpAddressesSet: [
            {
              privateIpAddress: i.privateIp,
              privateDnsName: privateDnsName(i),
              primary: true,
              association: publicIp ? { publicIp, publicDnsName: publicDnsName(i, publicIp), ipOwnerId: "amazon" } : undefined,
            },
          ],
        },
      ];
  return {
    instanceId: i.id,
    imageId: imageId(i),
    instanceState: { code: EC2_STATE_CODES[i.state], name: i.state },
    privateDnsName: gone ? "" : privateDnsName(i),
    dnsName: publicIp ? publicDnsName(i, publicIp) : "",
    reason: "",
    amiLaunchIndex: 0,
    instanceType: instanceType(i),
    launchTime: i.launchedAt,
    placement: { availabilityZone: i.zone ?? `${i.region}a`, groupName: "", tenancy: "default" },
    monitoring: { state: "disabled" },
    subnetId: gone ? undefined : i.subnet,
    vpcId: gone ? undefined : i.network,
    privateIpAddress: gone ? undefined : i.privateIp,
    ipAddress: publicIp,
    architecture: i.extra?.architecture ?? "x86_64",
    rootDeviceType: "ebs",
    rootDeviceName: "/dev/xvda",
    tagSet: Object.keys(i.tags).length ? tagSet(i.tags) : undefined,
    networkInterfaceSet: eni,
  };
}

export function renderVpc(n: SimNetwork, account: string): XmlNode {
  return {
    vpcId: n.id,
    ownerId: account,
    state: "available",
    cidrBlock: n.cidrs[0],
    cidrBlockAssociationSet: n.cidrs.map((cidr) => ({
      cidrBlock: cidr,
      associationId: `vpc-cidr-assoc-0${hex(`${n.id}:${cidr}`, 16)}`,
      cidrBlockState: { state: "associated" },
    })),
    dhcpOptionsId: "default",
    instanceTenancy: "default",
    isDefault: false,
    tagSet: n.name ? [{ key: "Name", value: n.name }] : undefined,
  };
}

export function renderSubnets(n: SimNetwork, account: string): { id: string; node: XmlNode }[] {
  return n.subnets.map((s) => ({
    id: s.id,
    node: {
      subnetId: s.id,
      subnetArn: `arn:aws:ec2:${n.region}:${account}:subnet/${s.id}`,
      state: "available",
      ownerId: account,
      vpcId: n.id,
      cidrBlock: s.cidr,
      availabilityZone: s.zone ?? `${n.region}a`,
      defaultForAz: false,
      mapPublicIpOnLaunch: false,
      tagSet: s.name ? [{ key: "Name", value: s.name }] : undefined,
    },
  }));
}

/** Opaque page tokens: the last id returned, so pages stay stable while the fleet changes. */
function encodeToken(action: string, region: string, lastId: string): string {
  return Buffer.from(JSON.stringify({ a: action, r: region, k: lastId })).toString("base64url");
}

function decodeToken(token: string, action: string, region: string): string {
  try {
    const t = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { a?: unknown; r?: unknown; k?: unknown };
    if (t.a === action && t.r === region && typeof t.k === "string") return t.k;
  } catch {
    // fall through
  }
  throw new Ec2ApiError(400, "InvalidPaginationToken", `The pagination token '${token}' is invalid or expired.`);
}

/** One page of items sorted by id, after the token's key; MaxResults 5–1000 as on EC2. */
function page<T extends { id: string }>(items: T[], params: URLSearchParams, action: string, region: string, defaultSize: number): { items: T[]; nextToken?: string } {
  const raw = params.get("MaxResults");
  let size = defaultSize;
  if (raw !== null) {
    size = Number(raw);
    if (!Number.isInteger(size) || size < 5 || size > 1000) {
      throw new Ec2ApiError(400, "InvalidParameterValue", `Value ( ${raw} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.`);
    }
  }
  const token = params.get("NextToken");
  const after = token ? decodeToken(token, action, region) : undefined;
  const rest = after === undefined ? items : items.filter((i) => i.id > after);
  const slice = rest.slice(0, size);
  const last = slice[slice.length - 1];
  return rest.length > size && last ? { items: slice, nextToken: encodeToken(action, region, last.id) } : { items: slice };
}

const byId = <T extends { id: string }>(a: T, b: T) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

function describeInstances(o: Ec2ApiOptions, params: URLSearchParams, region: string): XmlNode {
  const ids = listParam(params, "InstanceId");
  if (ids.length && params.has("MaxResults")) {
    throw new Ec2ApiError(400, "InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults");
  }
  const filters = parseFilters(params);
  let all = o.store
    .list()
    .filter((i) => i.region === region)
    .filter((i) => [...filters].every(([name, values]) => instanceFilter(name, values, i)));
  if (ids.length) {
    const missing = ids.filter((id) => !all.some((i) => i.id === id) && !o.store.instances.has(id));
    if (missing.length) throw new Ec2ApiError(400, "InvalidInstanceID.NotFound", `The instance IDs '${missing.join(", ")}' do not exist`);
    all = all.filter((i) => ids.includes(i.id));
  }
  // SimStore.list() sorts with localeCompare; paging needs the plain code-unit order the token compares with.
  all.sort(byId);
  const p = page(all, params, "DescribeInstances", region, o.defaultPageSize ?? 1000);
  return {
    reservationSet: p.items.map((i) => ({
      reservationId: `r-0${hex(`reservation:${i.id}`, 16)}`,
      ownerId: o.account,
      groupSet: [],
      instancesSet: [renderInstance(i)],
    })),
    nextToken: p.nextToken,
  };
}

function networksIn(o: Ec2ApiOptions, region: string): SimNetwork[] {
  return [...o.store.networks.values()].filter((n) => n.region === region).sort(byId);
}

function describeVpcs(o: Ec2ApiOptions, params: URLSearchParams, region: string): XmlNode {
  const ids = listParam(params, "VpcId");
  const filters = parseFilters(params);
  for (const name of filters.keys()) if (name !== "vpc-id" && name !== "tag:Name") throw new Ec2ApiError(400, "InvalidParameterValue", `The filter '${name}' is invalid`);
  const vpcs = networksIn(o, region).filter(
    (n) => (!ids.length || ids.includes(n.id)) && [...filters].every(([name, values]) => values.includes(name === "vpc-id" ? n.id : n.name)),
  );
  const p = page(vpcs, params, "DescribeVpcs", region, o.defaultPageSize ?? 1000);
  return { vpcSet: p.items.map((n) => renderVpc(n, o.account)), nextToken: p.nextToken };
}

function describeSubnets(o: Ec2ApiOptions, params: URLSearchParams, region: string): XmlNode {
  const ids = listParam(params, "SubnetId");
  const filters = parseFilters(params);
  for (const name of filters.keys()) if (name !== "vpc-id" && name !== "subnet-id") throw new Ec2ApiError(400, "InvalidParameterValue", `The filter '${name}' is invalid`);
  const subnets = networksIn(o, region)
    .flatMap((n) => renderSubnets(n, o.account).map((s) => ({ ...s, vpc: n.id })))
    .filter((s) => (!ids.length || ids.includes(s.id)) && (filters.get("vpc-id")?.includes(s.vpc) ?? true) && (filters.get("subnet-id")?.includes(s.id) ?? true))
    .sort(byId);
  const p = page(subnets, params, "DescribeSubnets", region, o.defaultPageSize ?? 1000);
  return { subnetSet: p.items.map((s) => s.node), nextToken: p.nextToken };
}

const ACTIONS: Record<string, (o: Ec2ApiOptions, params: URLSearchParams, region: string) => XmlNode> = {
  DescribeInstances: describeInstances,
  DescribeVpcs: describeVpcs,
  DescribeSubnets: describeSubnets,
};

export function errorXml(code: string, message: string, requestId: string): string {
  return document("Response", undefined, { Errors: { Error: { Code: code, Message: message } }, RequestID: requestId });
}

function send(res: ServerResponse, status: number, body: string, requestId: string): void {
  res.writeHead(status, { "content-type": "text/xml;charset=UTF-8", "x-amzn-requestid": requestId, server: "AmazonEC2" }).end(body);
}

/** The fault for this call: any for the Action, else one scoped to the region (`<region>/<Action>`). */
function takeFault(faults: Faults, action: string, region: string) {
  const f = faults.take(action);
  if (f) return f;
  const scoped = `${region}/${action}`;
  return faults.pending().some((p) => p.operation === scoped) ? faults.take(scoped) : undefined;
}

/** Handles one EC2 Query request (the body already read). */
export async function handleEc2(o: Ec2ApiOptions, req: IncomingMessage, body: string, res: ServerResponse): Promise<void> {
  const requestId = randomUUID();
  try {
    if (req.method !== "POST") throw new Ec2ApiError(400, "InvalidAction", `The HTTP method ${req.method} is not supported; use POST`);
    const params = new URLSearchParams(body);
    const action = params.get("Action") ?? "";
    const scope = parseCredentialScope(req.headers.authorization);
    if (!scope) throw new Ec2ApiError(401, "AuthFailure", "AWS was not able to validate the provided access credentials");
    const fault = takeFault(o.faults, action, scope.region);
    if (fault?.kind === "slow") await sleep(fault.delayMs ?? 1000);
    if (fault?.kind === "throttle") throw new Ec2ApiError(503, "RequestLimitExceeded", "Request limit exceeded.");
    if (fault?.kind === "server-error") throw new Ec2ApiError(500, "InternalError", "An internal error has occurred");
    if (fault?.kind === "auth") throw new Ec2ApiError(401, "AuthFailure", "AWS was not able to validate the provided access credentials");
    if (o.accessKeyIds && !o.accessKeyIds.includes(scope.accessKeyId)) {
      throw new Ec2ApiError(401, "AuthFailure", "AWS was not able to validate the provided access credentials");
    }
    const run = ACTIONS[action];
    if (!run) throw new Ec2ApiError(400, "InvalidAction", `The action ${action || "(none)"} is not valid for this web service.`);
    const result = run(o, params, scope.region);
    send(res, 200, document(`${action}Response`, EC2_NAMESPACE, { requestId, ...result }), requestId);
  } catch (err) {
    const e = err instanceof Ec2ApiError ? err : new Ec2ApiError(500, "InternalError", "An internal error has occurred");
    send(res, e.status, errorXml(e.code, e.message, requestId), requestId);
  }
}

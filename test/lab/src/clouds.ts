/**
 * The lab's clouds: every cloud host is an instance in its cloud's simulator (cloud-sim), and the
 * on-prem host is listed in a static inventory file. Each simulator runs as a process inside its
 * site's gateway: the API on the gateway's WAN address (reachable from the controller through the
 * lab's internet), the instance metadata service on 169.254.169.254 inside the gateway (the site's
 * hosts reach it through their default route, and the simulator knows the caller by its private
 * address). Tests and the demo change the fleet through each simulator's admin unix socket.
 *
 * Each simulator signs its instance documents with test keys made for the run and writes what
 * must be trusted to verify them into the clouds directory (`--trust-out`, the paths in its ready
 * line); the controller's inventory config trusts those, and only those
 * (inventory.instanceIdentity), in place of the real AWS, Microsoft and Google keys.
 */
import type { ChildProcess } from "node:child_process";
import { request } from "node:http";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { MetadataProvider } from "@weft/protocol";
import { LabError } from "./errors.js";
import { labMovePublicAddress } from "./conditions.js";
import { labExec, spawnInHost } from "./exec.js";
import { resolveLabOptions, type LabOptions } from "./options.js";
import { labDir } from "./state.js";
import { labTopology, type Host, type SiteName, type Topology } from "./topology.js";

export interface LabCloud {
  site: Exclude<SiteName, "onprem">;
  provider: MetadataProvider;
  /** AWS account id, Azure subscription id, GCP project id. */
  account: string;
  region: string;
  zone: string;
  /** VPC id, VNet name, GCE network name. */
  network: string;
  subnet: string;
}

/** Test credentials the simulators accept (they check no signatures), for the controller's SDKs. */
export const LAB_CLOUD_CREDENTIALS: Readonly<Record<string, string>> = {
  AWS_ACCESS_KEY_ID: "AKIAWEFTLAB000000000",
  AWS_SECRET_ACCESS_KEY: "weft-lab-secret",
  AWS_EC2_METADATA_DISABLED: "true",
  WEFT_INVENTORY_AZURE_TOKEN: "weft-lab-token",
  WEFT_INVENTORY_GCP_TOKEN: "weft-lab-token",
};

/** The simulators' API port on each gateway's WAN address. */
export const CLOUD_API_PORT = 8443;
export const METADATA_ADDRESS = "169.254.169.254";

export const LAB_CLOUDS: Readonly<Record<MetadataProvider, LabCloud>> = {
  aws: { site: "aws", provider: "aws", account: "111122223333", region: "us-east-1", zone: "us-east-1a", network: "vpc-0a1b2c3d4e5f60718", subnet: "subnet-0a1b2c3d4e5f60718" },
  azure: { site: "azure", provider: "azure", account: "6f1c0a9e-3b7d-4c1e-9a51-2f4e8d7c6b10", region: "westeurope", zone: "1", network: "weft-lab-vnet", subnet: "default" },
  gcp: { site: "gcp", provider: "gcp", account: "weft-lab", region: "europe-west1", zone: "europe-west1-b", network: "weft-lab-net", subnet: "weft-lab-subnet" },
};

/** The simulator's own id for a lab host: i-… on AWS, a vmId (UUID) on Azure, any stable string on GCP (it renders a numeric id). */
export function instanceIdFor(provider: MetadataProvider, host: string): string {
  const hex = createHash("sha256").update(`weft-lab:${host}`).digest("hex");
  if (provider === "aws") return `i-0${hex.slice(0, 16)}`;
  if (provider === "azure") return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  return `gce-${host}`;
}

export interface FleetFile {
  instances: {
    id: string;
    name: string;
    region: string;
    zone: string;
    network: string;
    subnet: string;
    privateIp: string;
    publicIp?: string;
    tags: Record<string, string>;
    extra?: Record<string, string>;
  }[];
  networks: { id: string; name: string; region: string; cidrs: string[]; subnets: { id: string; name: string; cidr: string; zone?: string }[] }[];
}

/**
 * Hosts whose instances carry `weft:gateway=true` in the default layout (Host.roles): gcp-1 advertises 10.30.0.0/16 to the other sites,
 * so the gcp site router `gw-gcp` (10.30.0.1, no agent) is reachable over the overlay. onprem-1 has
 * no cloud metadata to bind it to its inventory entry: its gateway role comes from its join key's
 * labels (LAB_ONPREM_KEY_LABELS), and it advertises 192.168.50.0/24 (gw-onprem at 192.168.50.1).
 */
export const LAB_GATEWAY_HOSTS: readonly string[] = ["gcp-1"];

/**
 * Labels of the on-prem host's join key: its identity, the workload identity it may host (its
 * one workload, shop/ledger), and the gateway role. The key also names its site
 * (LAB_ONPREM_KEY_SITE): a gateway key must.
 */
export const LAB_ONPREM_KEY_LABELS: Readonly<Record<string, string>> = {
  "weft:namespace": "infra",
  "weft:serviceaccount": "host",
  "weft:workload-identities": "shop/ledger",
  "weft:gateway": "true",
};
export const LAB_ONPREM_KEY_SITE = "onprem";

/**
 * Tags every lab instance carries: all become node labels; `weft:namespace` / `weft:serviceaccount`
 * set the identity, `weft:workload-identities` grants the host's workloads their service accounts
 * (on GCP in the form its labels allow: `weft_workload-identities: shop_web`); the host's roles add
 * `weft:gateway` / `weft:relay`.
 */
export function labInstanceTags(host: Host): Record<string, string> {
  const grants = host.workloads.map((w) => (host.site === "gcp" ? `${w.namespace}_${w.serviceAccount}` : `${w.namespace}/${w.serviceAccount}`));
  return {
    Name: host.name,
    env: "lab",
    site: host.site,
    "weft:namespace": "infra",
    "weft:serviceaccount": "host",
    ...(grants.length > 0 ? { [host.site === "gcp" ? "weft_workload-identities" : "weft:workload-identities"]: grants.join(",") } : {}),
    ...(host.roles.includes("gateway") ? { "weft:gateway": "true" } : {}),
    ...(host.roles.includes("relay") ? { "weft:relay": "true" } : {}),
  };
}

export function labFleet(t: Topology, cloud: LabCloud): FleetFile {
  const site = t.sites.find((s) => s.name === cloud.site);
  if (!site) throw new LabError(`no lab site ${cloud.site}`);
  return {
    networks: [{ id: cloud.network, name: cloud.network, region: cloud.region, cidrs: [site.privateCidr], subnets: [{ id: cloud.subnet, name: cloud.subnet, cidr: site.privateCidr, zone: cloud.zone }] }],
    instances: t.hosts
      .filter((h) => h.site === cloud.site)
      .map((h) => ({
        id: instanceIdFor(cloud.provider, h.name),
        name: h.name,
        region: cloud.region,
        zone: cloud.zone,
        network: cloud.network,
        subnet: cloud.subnet,
        privateIp: h.privateAddress,
        ...(h.publicAddress ? { publicIp: h.publicAddress } : {}),
        tags: labInstanceTags(h),
      })),
  };
}

/** The on-prem site's inventory file (cloud-adapters/src/onprem format). */
export function onpremInventoryYaml(t: Topology): string {
  const site = t.sites.find((s) => s.name === "onprem");
  const hosts = t.hosts.filter((h) => h.site === "onprem");
  const lines = ["site: onprem", "networks:", `  - id: onprem-lan`, `    cidrs: [${site?.privateCidr ?? ""}]`, "instances:"];
  for (const h of hosts) {
    const tags = labInstanceTags(h);
    lines.push(`  - id: ${h.name}`, `    name: ${h.name}`, "    network: onprem-lan", `    privateIps: [${h.privateAddress}]`, "    tags:");
    for (const [k, v] of Object.entries(tags)) lines.push(`      ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  }
  return `${lines.join("\n")}\n`;
}

export interface RunningClouds {
  /** Controller inventory config (YAML) for `weft controller --inventory-config`; trusts the simulators' signing keys. */
  inventoryConfigPath: string;
  /** The GCP audience the controller accepts (its URL's origin, what agents ask for by default). */
  gcpAudience: string;
  /** Admin socket of each simulator (SimAdmin with unixFetch). */
  adminSockets: Record<MetadataProvider, string>;
  onpremFile: string;
  stop(): Promise<void>;
}

export function cloudsDir(opts: LabOptions): string {
  return join(labDir(opts), "clouds");
}

/**
 * Starts the three simulators in their gateways, seeded with the lab's hosts, and writes the
 * on-prem inventory file and the controller's inventory config. `simMain` is cloud-sim/dist/main.js;
 * `controllerUrl` the URL agents enroll at (its origin is the GCP audience).
 */
export async function startLabClouds(opts: LabOptions, simMain: string, controllerUrl: string): Promise<RunningClouds> {
  if (!existsSync(simMain)) throw new LabError(`the cloud simulators are not built at ${simMain}; run \`npm run build\``);
  const t = labTopology(resolveLabOptions(opts));
  const dir = cloudsDir(opts);
  await mkdir(dir, { recursive: true });
  const children: ChildProcess[] = [];
  const adminSockets = {} as Record<MetadataProvider, string>;
  const trust: SimTrust = {};
  const stop = async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once("exit", () => resolve());
            c.kill("SIGTERM");
            setTimeout(() => c.kill("SIGKILL"), 3000).unref();
          }),
      ),
    );
  };
  try {
    for (const cloud of Object.values(LAB_CLOUDS)) {
      const gw = t.gateways.find((g) => g.site === cloud.site);
      if (!gw) throw new LabError(`no gateway for ${cloud.site}`);
      // The metadata address lives on the gateway; the site's hosts reach it through their default route.
      await labExec(opts, gw.name, ["ip", "addr", "replace", `${METADATA_ADDRESS}/32`, "dev", "lo"]);
      const fleet = join(dir, `${cloud.provider}-fleet.json`);
      await writeFile(fleet, JSON.stringify(labFleet(t, cloud), null, 2));
      adminSockets[cloud.provider] = join(dir, `${cloud.provider}-admin.sock`);
      const argv = [
        process.execPath,
        simMain,
        cloud.provider,
        "--account",
        cloud.account,
        "--host",
        gw.wanAddress,
        "--port",
        String(CLOUD_API_PORT),
        "--metadata-host",
        METADATA_ADDRESS,
        "--metadata-port",
        "80",
        "--fleet",
        fleet,
        "--admin-socket",
        adminSockets[cloud.provider],
        "--trust-out",
        dir,
        ...(cloud.provider === "azure" ? ["--ca-out", join(dir, "azure-ca.pem"), "--san", gw.wanAddress] : []),
      ];
      const child = spawnInHost(opts, gw.name, argv, { stdio: ["ignore", "pipe", "pipe"] });
      children.push(child);
      const ready = await waitReady(child, `${cloud.provider} simulator on ${gw.name}`);
      Object.assign(trust, ready.trust ?? {});
    }
    const onpremFile = join(dir, "onprem.yaml");
    await writeFile(onpremFile, onpremInventoryYaml(t));
    const inventoryConfigPath = join(dir, "inventory.yaml");
    const gcpAudience = new URL(controllerUrl).origin;
    await writeFile(inventoryConfigPath, inventoryConfigYaml(t, dir, onpremFile, trustConfig(trust, gcpAudience)));
    return { inventoryConfigPath, gcpAudience, adminSockets, onpremFile, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Paths of the simulators' trust files by role, as their ready lines name them (cloud-sim trust.ts). */
export interface SimTrust {
  aws?: string;
  azureRoots?: string;
  azureIntermediates?: string;
  gcpJwks?: string;
}

/** `inventory.instanceIdentity` trusting the simulators' keys and nothing else. */
export function trustConfig(trust: SimTrust, gcpAudience: string): string[] {
  const need = (role: keyof SimTrust) => {
    const path = trust[role];
    if (path === undefined) throw new LabError(`a cloud simulator did not write its ${role} trust file (--trust-out)`);
    return JSON.stringify(path);
  };
  return [
    "instanceIdentity:",
    `  aws: { certificates: { "*": ${need("aws")} } }`,
    `  azure: { rootsFile: ${need("azureRoots")}, intermediatesFile: ${need("azureIntermediates")} }`,
    `  gcp: { audience: ${JSON.stringify(gcpAudience)}, jwksFile: ${need("gcpJwks")} }`,
  ];
}

/**
 * The controller's inventory config for the lab: one account per simulator plus the on-prem file,
 * `identity` (trustConfig: the simulators' signing keys as the only instance identity trust), and
 * `sites`: each cloud's network (and the on-prem LAN) is the lab site of that name, so a node's
 * site is vouched for by its instance's network.
 */
export function inventoryConfigYaml(t: Topology, dir: string, onpremFile: string, identity: string[]): string {
  const wan = (site: string) => t.gateways.find((g) => g.site === site)?.wanAddress ?? "";
  const { aws, azure, gcp } = LAB_CLOUDS;
  return [
    "sites:",
    `  - { name: aws, networks: [{ provider: aws, account: "${aws.account}", network: ${aws.network} }] }`,
    `  - { name: azure, networks: [{ provider: azure, account: "${azure.account}", network: ${azure.network} }] }`,
    `  - { name: gcp, networks: [{ provider: gcp, account: ${gcp.account}, network: ${gcp.network} }] }`,
    `  - { name: onprem, networks: [{ provider: onprem, account: onprem, network: onprem-lan }] }`,
    // Syncs in the lab are asked for (weft inventory sync) so tests see one cycle at a time; the periodic one is a backstop.
    "intervalSeconds: 600",
    "maxRemovalShare: 0.5",
    "accounts:",
    `  - { provider: aws, account: "${aws.account}", regions: [${aws.region}], endpoint: "http://${wan("aws")}:${CLOUD_API_PORT}" }`,
    `  - { provider: azure, subscriptionId: "${azure.account}", endpoint: "https://${wan("azure")}:${CLOUD_API_PORT}", caFile: "${join(dir, "azure-ca.pem")}" }`,
    `  - { provider: gcp, project: "${gcp.account}", apiEndpoint: "http://${wan("gcp")}:${CLOUD_API_PORT}" }`,
    `  - { provider: onprem, file: "${onpremFile}" }`,
    ...identity,
    "",
  ].join("\n");
}

/** Waits for the simulator's ready line and returns it. */
function waitReady(child: ChildProcess, what: string, timeoutMs = 15_000): Promise<{ trust?: SimTrust }> {
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new LabError(`${what} not ready after ${timeoutMs} ms: ${err.trim()}`)), timeoutMs);
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      const line = out.split("\n").find((l) => l.includes('"ready":true'));
      if (line !== undefined && out.includes("\n")) {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(line) as { trust?: SimTrust });
        } catch (e) {
          reject(new LabError(`${what}: unreadable ready line ${line}: ${(e as Error).message}`));
        }
      }
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (err += d));
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new LabError(`${what} exited with ${code}: ${err.trim()}`));
    });
  });
}

/**
 * One admin call to a lab simulator over its unix socket (the machine's namespace cannot route to
 * the gateways): e.g. labCloudAdmin(clouds, "gcp", "POST", `/instances/${id}/terminate`).
 */
export function labCloudAdmin(clouds: RunningClouds, provider: MetadataProvider, method: string, path: string, body?: unknown): Promise<unknown> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath: clouds.adminSockets[provider], path: `/_sim${path}`, method, headers: { "content-type": "application/json", ...(text ? { "content-length": Buffer.byteLength(text) } : {}) } },
      (res) => {
        let out = "";
        res.setEncoding("utf8").on("data", (d: string) => (out += d));
        res.on("end", () => {
          if ((res.statusCode ?? 500) >= 400) reject(new LabError(`${provider} simulator ${method} /_sim${path}: ${res.statusCode} ${out}`));
          else resolve(out ? (JSON.parse(out) as unknown) : undefined);
        });
      },
    );
    req.on("error", (err) => reject(new LabError(`${provider} simulator admin socket: ${err.message}`, { cause: err })));
    if (text) req.write(text);
    req.end();
  });
}

/** Terminates a lab host's instance in its cloud's simulator. */
export function terminateLabInstance(clouds: RunningClouds, host: Host): Promise<unknown> {
  const provider = host.site as MetadataProvider;
  return labCloudAdmin(clouds, provider, "POST", `/instances/${encodeURIComponent(instanceIdFor(provider, host.name))}/terminate`);
}

/**
 * A cloud host's public address changes, as after a stop and start: its simulator (so the
 * instance's metadata and the cloud API say the new address) and its gateway's 1:1 NAT (so the
 * change is real on the wire; conntrack flushed). `to` must be in the site's public block.
 */
export async function moveLabInstanceAddress(opts: LabOptions, clouds: RunningClouds, host: Host, from: string, to: string): Promise<void> {
  const provider = host.site as MetadataProvider;
  if (!Object.hasOwn(LAB_CLOUDS, provider)) throw new LabError(`${host.name} is not a cloud host`);
  await labCloudAdmin(clouds, provider, "PUT", `/instances/${encodeURIComponent(instanceIdFor(provider, host.name))}/public-ip`, { publicIp: to });
  await labMovePublicAddress(opts, host.name, from, to);
}

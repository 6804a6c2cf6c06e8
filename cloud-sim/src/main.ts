#!/usr/bin/env node
/**
 * Runs one simulator as a process (the lab starts one per cloud inside that cloud's gateway):
 *
 *   node cloud-sim/dist/main.js aws|azure|gcp --account <id> [--host 0.0.0.0] [--port 8443]
 *        [--metadata-host 169.254.169.254 --metadata-port 80] [--fleet fleet.json]
 *        [--admin-socket /path/admin.sock] [--ca-out ca.pem] [--san 198.19.2.2] [--page-size 100]
 *        [--trust-out <dir>]
 *
 * `--fleet` seeds instances and networks ({"instances": SimInstance[], "networks": SimNetwork[]});
 * the admin interface is served on the API port under /_sim/ and, with --admin-socket, on a unix
 * socket. `--trust-out` writes what a controller must trust to verify this run's signed instance
 * documents (trust.ts SIM_TRUST_FILES). Prints one JSON line {"ready": true, "url", "metadataUrl", "trust"?: {role: path}} once listening; SIGTERM stops it.
 */
import { readFile, writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { startAwsSim } from "./aws/index.js";
import { startAzureSim } from "./azure/index.js";
import { Faults } from "./faults.js";
import { startGcpSim } from "./gcp/index.js";
import { SimStore, type SimInstance, type SimNetwork } from "./store.js";
import { writeSimTrust, type SimIdentity } from "./trust.js";
import { serveAdminSocket } from "./unix-admin.js";

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      account: { type: "string" },
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "0" },
      "metadata-host": { type: "string" },
      "metadata-port": { type: "string", default: "80" },
      fleet: { type: "string" },
      "admin-socket": { type: "string" },
      "ca-out": { type: "string" },
      san: { type: "string", multiple: true, default: [] },
      "page-size": { type: "string" },
      "trust-out": { type: "string" },
    },
  });
  const cloud = positionals[0];
  if (cloud !== "aws" && cloud !== "azure" && cloud !== "gcp") throw new Error(`usage: main.js aws|azure|gcp --account <id> …; got ${cloud ?? "nothing"}`);
  if (!values.account) throw new Error("--account is required (AWS account id, Azure subscription id or GCP project id)");
  const store = new SimStore();
  const faults = new Faults();
  if (values.fleet) {
    const fleet = JSON.parse(await readFile(values.fleet, "utf8")) as { instances?: SimInstance[]; networks?: SimNetwork[] };
    for (const n of fleet.networks ?? []) store.addNetwork(n);
    for (const i of fleet.instances ?? []) store.addInstance(i);
  }
  const port = Number(values.port);
  const metadata = values["metadata-host"] ? { host: values["metadata-host"], port: Number(values["metadata-port"]) } : undefined;
  const pageSize = values["page-size"] ? Number(values["page-size"]) : undefined;
  const common = { host: values.host, port, store, faults, ...(metadata ? { metadata } : {}) };
  let sim: { url: string; metadataUrl?: string | undefined; identity: SimIdentity; close(): Promise<void> };
  if (cloud === "aws") sim = await startAwsSim({ ...common, account: values.account, ...(pageSize ? { defaultPageSize: pageSize } : {}) });
  else if (cloud === "azure") {
    const azure = await startAzureSim({ ...common, subscriptionId: values.account, sans: values.san, ...(pageSize ? { pageSize } : {}) });
    if (values["ca-out"]) await writeFile(values["ca-out"], azure.caPem);
    sim = azure;
  } else sim = await startGcpSim({ ...common, project: values.account, ...(pageSize ? { pageSize } : {}) });
  const trust = values["trust-out"] ? await writeSimTrust(values["trust-out"], sim.identity) : undefined;
  const admin = values["admin-socket"] ? await serveAdminSocket(values["admin-socket"], store, faults) : undefined;
  process.stdout.write(`${JSON.stringify({ ready: true, cloud, url: sim.url, metadataUrl: sim.metadataUrl, ...(trust ? { trust } : {}) })}\n`);
  const stop = () => {
    admin?.close();
    void sim.close().finally(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`cloud-sim: ${(err as Error).message}\n`);
  process.exit(1);
});

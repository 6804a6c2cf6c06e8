/**
 * The NATS side of a highly available lab control plane (`controllers: 3`): one nats-server per
 * controller host `ctl-1..3`, clustered with the other two (JetStream, every bucket R3), each
 * trusting the controllers' shared operator (`weft nats-config`) and serving TLS with a
 * certificate for its own address from a lab CA (made with openssl; the controllers are told to
 * trust it with `nats.caFile` and hand it to agents). Rendering is pure; `ensureNatsTls` and
 * `natsServerBinary` touch the filesystem.
 */
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { LabError } from "./errors.js";
import { run } from "./run.js";
import type { Controller } from "./topology.js";

export const NATS_CLIENT_PORT = 4222;
export const NATS_CLUSTER_PORT = 6222;

/** The tls:// client URL of each controller host's nats-server, in host order. */
export function natsUrls(controllers: readonly Controller[]): string[] {
  return controllers.map((c) => `tls://${c.address}:${NATS_CLIENT_PORT}`);
}

/** Where one controller host's nats-server keeps its config, certificate and JetStream data. */
export interface NatsNodeFiles {
  dir: string;
  conf: string;
  cert: string;
  key: string;
  storeDir: string;
}

export function natsNodeFiles(hostDirectory: string): NatsNodeFiles {
  const dir = join(hostDirectory, "nats");
  return { dir, conf: join(dir, "nats.conf"), cert: join(dir, "nats.crt"), key: join(dir, "nats.key"), storeDir: join(dir, "js") };
}

/**
 * nats-server.conf of controller host `self`: client port on its address (TLS), a cluster route to
 * every controller host (the server skips its own), JetStream, and the operator's fragment.
 */
export function renderNatsConf(self: Controller, all: readonly Controller[], files: NatsNodeFiles, fragment: string): string {
  const routes = all.map((c) => `"nats-route://${c.address}:${NATS_CLUSTER_PORT}"`).join(", ");
  return [
    `server_name: ${self.name}`,
    `host: ${self.address}`,
    `port: ${NATS_CLIENT_PORT}`,
    `jetstream { store_dir: "${files.storeDir}", max_file_store: 4GB }`,
    `tls { cert_file: "${files.cert}", key_file: "${files.key}" }`,
    `cluster { name: weft-lab, listen: "${self.address}:${NATS_CLUSTER_PORT}", routes: [${routes}] }`,
    fragment,
  ].join("\n");
}

/**
 * The lab's NATS CA (`<caDir>/ca.crt`, made once) and a server certificate for each controller
 * host's address. Returns the CA certificate's path (what `nats.caFile` names).
 */
export async function ensureNatsTls(caDir: string, nodes: readonly { controller: Controller; files: NatsNodeFiles }[]): Promise<string> {
  await mkdir(caDir, { recursive: true, mode: 0o700 });
  const caCert = join(caDir, "ca.crt");
  const caKey = join(caDir, "ca.key");
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  if (!existsSync(caCert) || !existsSync(caKey)) {
    await run(["openssl", "req", "-x509", ...ec, "-keyout", caKey, "-out", caCert, "-days", "30", "-subj", "/CN=weft lab NATS CA",
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  }
  for (const { controller, files } of nodes) {
    if (existsSync(files.cert) && existsSync(files.key)) continue;
    await mkdir(files.dir, { recursive: true, mode: 0o700 });
    const csr = join(files.dir, "nats.csr");
    const ext = join(files.dir, "nats.ext");
    // DNS:localhost as in the controller's own certificates: nats.js gives Node no TLS name for an
    // IP URL, and Node then checks the certificate against "localhost".
    await writeFile(ext, `subjectAltName=IP:${controller.address},DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n`);
    await run(["openssl", "req", ...ec, "-keyout", files.key, "-out", csr, "-subj", `/CN=${controller.name}`]);
    await run(["openssl", "x509", "-req", "-in", csr, "-CA", caCert, "-CAkey", caKey, "-CAcreateserial", "-days", "30", "-out", files.cert, "-extfile", ext]);
  }
  return caCert;
}

/** nats-server 2.11+ for the cluster: $WEFT_NATS_SERVER, else `<repo>/.tools/bin/nats-server` (scripts/setup.sh). */
export function natsServerBinary(repo: string): string {
  const path = process.env.WEFT_NATS_SERVER || join(repo, ".tools", "bin", "nats-server");
  if (!existsSync(path)) throw new LabError(`no nats-server at ${path}: run scripts/setup.sh (it installs nats-server 2.15 there) or set WEFT_NATS_SERVER`);
  return path;
}

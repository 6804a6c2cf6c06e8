/**
 * What the trust e2e suite (../trust.test.ts) does from inside the lab's namespaces, as a node
 * script run with `ip netns exec`:
 *
 *   forge-peer <controllerStateDir> <nodeId> <routes JSON>
 *       writes the node's peer record back with these site routes, as a controller that screened
 *       nothing would (so agents' own refusal is what is tested); prints the revision.
 *   workloads <apiUrl> <caFile> <joinKey> <name> <mode> [count]
 *       enrolls a node of its own (fresh WireGuard and NATS keys), connects to NATS as that node
 *       and sends workloads requests: mode `ungranted` one request for shop/evil; mode `flood`
 *       `count` requests, each a workload with a new service account. Prints one JSON line.
 *
 * Only lab addresses are reached. Imports the built controller (controller/dist) for the
 * controller's credentials.
 */
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { request } from "node:https";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { createUser } from "@nats-io/nkeys";
import { connect, jwtAuthenticator } from "@nats-io/transport-node";

const [cmd, ...args] = process.argv.slice(2);

function post(apiUrl, ca, path, body) {
  const url = new URL(path, apiUrl);
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: "POST", ca, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data) } }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode, text }));
    });
    req.on("error", reject);
    req.end(data);
  });
}

if (cmd === "forge-peer") {
  const [stateDir, nodeId, routes] = args;
  const { loadOrCreateAuthority, connectController } = await import("../../../controller/dist/nats/index.js");
  const authority = await loadOrCreateAuthority(join(stateDir, "authority"));
  // NATS is TLS with the controller's CA (<stateDir>/tls/ca.crt).
  const caPem = await readFile(join(stateDir, "tls", "ca.crt"), "utf8");
  const nc = await connectController({ servers: ["tls://198.19.0.2:4222"], authority, caPem, name: "e2e-forger" });
  const kv = await new Kvm(nc).open("weft-peers");
  const rec = (await kv.get(nodeId)).json();
  delete rec.explicitSiteRoutes;
  const revision = await kv.put(nodeId, JSON.stringify({ ...rec, siteRoutes: JSON.parse(routes), updatedAt: new Date().toISOString() }));
  console.log(JSON.stringify({ revision }));
  await nc.close();
} else if (cmd === "workloads") {
  const [apiUrl, caFile, joinKey, name, mode, count = "1"] = args;
  const ca = await readFile(caFile, "utf8");
  const user = createUser();
  const enrolled = await post(apiUrl, ca, "/v1/enroll", {
    version: 1,
    joinKey,
    name,
    wireguardPublicKey: randomBytes(32).toString("base64"),
    natsPublicKey: user.getPublicKey(),
    listenPort: 51820,
    endpoints: {},
  });
  if (enrolled.status !== 201) throw new Error(`enroll ${name}: ${enrolled.status} ${enrolled.text}`);
  const res = JSON.parse(enrolled.text);
  // NATS is TLS with the controller's CA, handed over at enrollment (as the agent connects).
  const nc = await connect({ servers: res.nats.servers, tls: { ca: res.nats.caPem }, authenticator: jwtAuthenticator(res.nats.userJwt, user.getSeed()), inboxPrefix: `_INBOX_${res.nodeId}` });
  const ask = async (workloads) => (await nc.request(`weft.v1.node.${res.nodeId}.workloads`, JSON.stringify({ version: 1, workloads }), { timeout: 10_000 })).json();
  if (mode === "ungranted") {
    const reply = await ask([{ name: "evil", namespace: "shop", serviceAccount: "evil" }]);
    console.log(JSON.stringify({ nodeId: res.nodeId, reply }));
  } else {
    const codes = {};
    const t0 = Date.now();
    for (let i = 0; i < Number(count); i++) {
      const reply = await ask([{ name: `w${i}`, namespace: "shop", serviceAccount: `flood-${i}` }]);
      const code = reply.ok ? "ok" : reply.error.code;
      codes[code] = (codes[code] ?? 0) + 1;
    }
    console.log(JSON.stringify({ nodeId: res.nodeId, codes, ms: Date.now() - t0 }));
  }
  await nc.close();
} else {
  throw new Error(`usage: trust-probe.mjs forge-peer|workloads …`);
}

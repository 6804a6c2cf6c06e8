import { LabCluster, labUp, labDown } from "@weft/lab";
import { writeFileSync } from "node:fs";
const opts = { prefix: "wtn", layout: { natSites: true, overlap: true, mtu: { branch: 1280, cgnat: 1380, gcp: 1460 } } };
const cmd = process.argv[2];
if (cmd === "down") { await labDown(opts); process.exit(0); }
await labDown(opts);
await labUp(opts);
const cluster = new LabCluster({ ...opts, clouds: true });
const clouds = await cluster.startClouds();
await cluster.startController(["--inventory-config", clouds.inventoryConfigPath]);
const client = await cluster.client();
await client.syncInventory();
const key = await client.createJoinKey({ reusable: true, ttlSeconds: 3600, description: "dbg", labels: { "weft:workload-namespaces": "shop" } });
writeFileSync("/tmp/natdbg/key", key.key);
const hosts = cluster.topology.hosts.map((h) => h.name);
await Promise.all(hosts.map((h) => cluster.startAgent(h, key.key)));
console.log("started", hosts.join(" "));
process.on("SIGTERM", async () => { await cluster.stopAll(); process.exit(0); });
setInterval(() => {}, 1000);

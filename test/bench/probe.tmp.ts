import { setTimeout as sleep } from "node:timers/promises";
import { LabCluster, labDown, labExec, labUp } from "@weft/lab";
import { setUpHandTunnel, tearDownHandTunnel } from "./src/handwg.js";
import { measureThroughput, startIperfServer, stopIperfServer } from "./src/measure.js";
const opts = { prefix: "wtx" };
const hand = { a: { host: "aws-1", iface: "wgx-aws-1", address: "10.200.0.1", publicAddress: "198.18.1.11" }, b: { host: "azure-1", iface: "wgx-azure-1", address: "10.200.0.2", publicAddress: "198.18.2.11" }, port: 51900, mtu: 1420 };
const c = new LabCluster(opts);
const sh = async (h: string, argv: string[]) => console.log(`$ ${h}: ${argv.join(" ")}\n${(await labExec(opts, h, argv)).stdout}`);
try {
  await labDown(opts); await labUp(opts); await c.startController();
  const key = await (await c.client()).createJoinKey({ reusable: true, ttlSeconds: 600 });
  await Promise.all(c.topology.hosts.map((h) => c.startAgent(h.name, key.key)));
  await c.waitForFullMesh(60_000);
  await setUpHandTunnel(opts, hand);
  const ov = (await (await c.client()).getNode("azure-1")).overlayAddress;
  for (const i of ["wtx-aws-1", "wgx-aws-1"]) { await sh("aws-1", ["wg", "show", i]); await sh("aws-1", ["ip", "-d", "link", "show", i]); }
  await sh("aws-1", ["ip", "route"]);
  const s1 = await startIperfServer(opts, "azure-1", ov, 5202);
  const s2 = await startIperfServer(opts, "azure-1", "10.200.0.2", 5203);
  await labExec(opts, "aws-1", ["ping", "-c", "2", "10.200.0.2"]);
  const run = async (label: string) => {
    const out: string[] = [];
    for (let r = 0; r < 3; r++) {
      const w = await measureThroughput(opts, "aws-1", ov, 5202, 4);
      const h = await measureThroughput(opts, "aws-1", "10.200.0.2", 5203, 4);
      out.push(`weft ${Math.round(w.receivedBitsPerSecond / 1e6)} hand ${Math.round(h.receivedBitsPerSecond / 1e6)}`);
    }
    console.log(label, out.join(" | "));
  };
  await run("agents running:");
  const pids = ["aws-1", "azure-1"].map((h) => c.agents.get(h)?.process?.pid as number);
  for (const p of pids) process.kill(p, "SIGSTOP");
  await run("agents SIGSTOPped:");
  for (const p of pids) process.kill(p, "SIGCONT");
  await run("agents running again:");
  await stopIperfServer(s1); await stopIperfServer(s2);
} finally {
  await tearDownHandTunnel(opts, hand).catch(() => undefined);
  await c.stopAll(); await labDown(opts);
}

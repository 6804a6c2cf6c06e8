/**
 * End-to-end test of WireGuard key rotation on the lab: `weft agent rotate-key` on azure-1 while
 * pings every 10 ms run to it (from aws-1) and from it (to gcp-1, and onprem-1 behind NAT pings
 * it too). The new public key reaches every peer through the controller, the old one is gone from
 * every peer, the controller's node record and the `wgkey` claim follow, and each ping stream
 * loses at most one packet. A capture on the underlay (the internet router) during the rotation
 * holds NATS traffic but no plaintext of it (TLS).
 *
 * One lab (prefix `wrk`, override with WEFT_E2E_ROTATION_PREFIX), four agents. Needs root
 * (namespaces, WireGuard); skipped otherwise. About 40 s, most of it bringing the lab up.
 */
import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import type { ControllerClient } from "@weft/protocol";
import { CONTROLLER_NATS_PORT, LabCluster, startPingStream, type LabOptions } from "@weft/lab";

import { readAgentState, sleep, waitUntil, wgDump } from "./mesh.js";
import { capture, occurrences } from "./traffic.js";
import { labSuite } from "./lab-suite.js";

const PREFIX = process.env.WEFT_E2E_ROTATION_PREFIX ?? "wrk";
const opts: LabOptions = { prefix: PREFIX };
const HOSTS = ["aws-1", "azure-1", "gcp-1", "onprem-1"];
const ROTATING = "azure-1";
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("e2e rotation: skipped: needs root (network namespaces, WireGuard)");
const suite = labSuite("rotation", opts);

describe.skipIf(!isRoot)("e2e rotation", () => {
  let cluster: LabCluster;
  let client: ControllerClient;
  const addresses = new Map<string, string>();

  suite.hooks({
    setup: async (c) => {
      cluster = c;
      await cluster.startController();
      client = await cluster.client();
      const key = await client.createJoinKey({ reusable: true, ttlSeconds: 3600, description: "e2e rotation", labels: { "weft:workload-namespaces": "shop" } });
      await Promise.all(HOSTS.map((h) => cluster.startAgent(h, key.key)));
      await cluster.waitForFullMesh(150_000);
      for (const h of HOSTS) addresses.set(h, (await readAgentState(cluster.agents.get(h)!.stateDir))!.overlayAddress);
    },
    setupTimeoutMs: 300_000,
  });

  it("e2e rotation - weft agent rotate-key: every peer takes the new key, drops the old, and 10 ms pings across the switch lose at most one packet", async () => {
    const before = (await wgDump(opts, ROTATING))!.publicKey;
    const nodeId = (await readAgentState(cluster.agents.get(ROTATING)!.stateDir))!.nodeId;
    const to = addresses.get(ROTATING)!;
    const streams = [
      { what: `aws-1 → ${ROTATING}`, ping: startPingStream(opts, "aws-1", to, 0.01) },
      { what: `onprem-1 (behind NAT) → ${ROTATING}`, ping: startPingStream(opts, "onprem-1", to, 0.01) },
      { what: `${ROTATING} → gcp-1`, ping: startPingStream(opts, ROTATING, addresses.get("gcp-1")!, 0.01) },
    ];
    // The underlay as an on-path observer sees it: every NATS byte through the internet router.
    const underlay = await capture(opts, "inet", "any", ["tcp", "port", String(CONTROLLER_NATS_PORT)]);
    await sleep(1000);
    const t0 = Date.now();
    const cli = spawn(process.execPath, [cluster.cli, "agent", "rotate-key", "--state-dir", cluster.agents.get(ROTATING)!.stateDir, "--json"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    cli.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    cli.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    const code = await new Promise<number | null>((r) => cli.on("close", r));
    const rotateMs = Date.now() - t0;
    // Pings keep going until every peer has the new key and two more seconds have passed.
    const after = code === 0 ? (JSON.parse(out) as { publicKey: string }).publicKey : "";
    const peersMs = await waitUntil("every peer to have the new key", 20_000, async () => {
      for (const h of HOSTS.filter((x) => x !== ROTATING)) if (!(await wgDump(opts, h))?.peers.some((p) => p.publicKey === after)) return false;
      return true;
    }).catch(() => -1);
    await sleep(2000);
    const results = await Promise.all(streams.map(async (s) => ({ what: s.what, ...(await s.ping.stop()) })));
    const { raw } = await underlay.stop();
    expect(code, `weft agent rotate-key: ${err}`).toBe(0);
    expect(after, "a new key").not.toBe(before);
    suite.note(`rotate-key (CLI included) took ${rotateMs} ms, every peer had the new key ${peersMs} ms later; ${results.map((r) => `${r.what}: ${r.replies} replies, lost ${JSON.stringify(r.lost)}`).join("; ")}`);
    for (const r of results) {
      expect(r.replies, `${r.what}: replies across the rotation`).toBeGreaterThan((rotateMs + 2000) / 10 / 2);
      expect(r.lost.length, `${r.what}: pings lost (icmp_seq ${r.lost.join(",")})`).toBeLessThanOrEqual(1);
    }

    // The rotation fanned the new peer record out to every agent over NATS: none of it in clear.
    expect(raw.length, "NATS bytes captured on the underlay during the rotation").toBeGreaterThan(2000);
    for (const clear of ["weft-peers", "wireguardPublicKey", after, "$KV.", "weft.v1.", "CONNECT {"]) {
      expect(occurrences(raw, Buffer.from(clear)), `"${clear}" in clear on the underlay`).toBe(0);
    }
    suite.note(`${raw.length} bytes of NATS captured on the underlay (inet), 0 plaintext markers`);

    expect((await wgDump(opts, ROTATING))!.publicKey, "the interface's key").toBe(after);
    for (const h of HOSTS.filter((x) => x !== ROTATING)) {
      const keys = (await wgDump(opts, h))!.peers.map((p) => p.publicKey);
      expect(keys.includes(after) && !keys.includes(before), `${h} has the new key and not the old one: ${keys.join(", ")}`).toBe(true);
    }
    expect((await client.getNode(nodeId)).wireguardPublicKey, "the controller's node record").toBe(after);
    const state = await readAgentState(cluster.agents.get(ROTATING)!.stateDir);
    expect(state?.nodeId, "still the same node").toBe(nodeId);
    await waitUntil("every agent's cached peer set to carry the new key", 10_000, async () => {
      for (const h of HOSTS) {
        const peers = (await readAgentState(cluster.agents.get(h)!.stateDir))?.applied?.peers ?? [];
        if (peers.find((p) => p.nodeId === nodeId)?.wireguardPublicKey !== after) return false;
      }
      return true;
    });
  });
});

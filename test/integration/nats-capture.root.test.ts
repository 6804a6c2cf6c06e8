/**
 * What an on-path observer sees of NATS (root: tcpdump on the loopback interface, for the
 * controller's NATS port only): an agent reading peer records and its policy while they change
 * sends and receives only TLS — no peer record, policy or subject in the clear.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { Buckets, Subjects, generateKeyPair } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PeerWatch } from "../../agent/src/control/peer-watch.js";
import { NodePolicyWatch } from "../../agent/src/control/policy-watch.js";
import { enrollAgent, startTestController, type TestController } from "../../controller/src/testing.js";

const root = process.getuid?.() === 0;
let t: TestController;
let dir: string;

beforeAll(async () => {
  if (!root) return;
  t = await startTestController();
  dir = await mkdtemp(join(tmpdir(), "weft-capture-"));
});
afterAll(async () => {
  await t?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!root)("NATS on the wire", () => {
  it("nats tls - a capture of an agent's NATS traffic during peer and policy changes holds no plaintext payload", async () => {
    const port = new URL(t.running.natsUrl).port;
    const pcap = join(dir, "nats.pcap");
    const tcpdump = spawn("tcpdump", ["-i", "lo", "-U", "-Z", "root", "-s", "0", "-w", pcap, "tcp", "port", port], { stdio: ["ignore", "ignore", "pipe"] });
    try {
      await new Promise<void>((resolve, reject) => {
        tcpdump.stderr.on("data", (d: Buffer) => d.toString().includes("listening on") && resolve());
        tcpdump.once("exit", (code) => reject(new Error(`tcpdump exited ${code}`)));
      });
      const key = (await t.client.createJoinKey({ reusable: true })).key;
      const agent = await enrollAgent(t, key, generateKeyPair().publicKey);
      const log = pino({ level: "silent" });
      const sets: number[] = [];
      const policies: number[] = [];
      const peers = new PeerWatch(agent.nc, Subjects.inboxPrefix(agent.enrolled.nodeId), (s) => sets.push(s.peers.size), log);
      const policy = new NodePolicyWatch(agent.nc, agent.enrolled.nodeId, (_r, rev) => policies.push(rev), log);
      await peers.start();
      await policy.start();
      await t.client.applyPolicy({ name: "capture-test", rules: [{ action: "allow", from: [{ labels: {} }], to: [{ labels: {} }] }] }).catch(() => undefined);
      const kv = await new Kvm(t.running.nc).open(Buckets.peers);
      const marker = "plaintext-marker-0123456789";
      await kv.put(agent.enrolled.nodeId.replace(/.$/, "f"), JSON.stringify({ marker }));
      await new Promise((r) => setTimeout(r, 500));
      peers.stop();
      policy.stop();
      await agent.nc.close();
      expect(sets.length, "the agent saw peer sets").toBeGreaterThan(0);
    } finally {
      await new Promise((r) => setTimeout(r, 300));
      tcpdump.kill("SIGINT");
      await new Promise((r) => tcpdump.once("exit", r));
    }
    const bytes = await readFile(pcap);
    expect(bytes.length, "bytes captured").toBeGreaterThan(2000);
    const text = bytes.toString("latin1");
    for (const clear of ["weft-peers", "wireguardPublicKey", "plaintext-marker-0123456789", "$KV.", "weft.v1.", "CONNECT {", "_INBOX_"]) {
      expect(text.includes(clear), `"${clear}" in the capture`).toBe(false);
    }
  });
});

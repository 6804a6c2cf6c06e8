/**
 * No secret where others can read it: a real `weft controller` process (the built CLI, its log to
 * a file), the CLI creating a join key and listing with `--json`, and an agent identity enrolling
 * and heartbeating over NATS; then the controller's log, every `--json` output of the read
 * commands, the printed agent command and every process's /proc/<pid>/cmdline are searched for the
 * join key, the admin token, the authority's seeds, the agent's NATS seed and its WireGuard private
 * key: 0 hits. (The agent process itself needs root and WireGuard; the lab runs it with its key in
 * a file, test/lab/src/cluster.ts.)
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { connect, jwtAuthenticator } from "@nats-io/transport-node";
import { ControllerClient, EnrollResponse, Subjects, generateKeyPair } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentIdentity, eventually } from "../../../controller/src/testing.js";

const exec = promisify(execFile);
const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "main.js");
let dir: string;
let controller: ChildProcess | undefined;
let logText = "";

async function weft(args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string }> {
  return exec(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 60_000 });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "weft-secrets-"));
  controller = spawn(process.execPath, [CLI, "controller", "--state-dir", join(dir, "ctl"), "--nats-host", "127.0.0.1", "--nats-port", "0", "--api-host", "127.0.0.1", "--api-port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  controller.stdout!.on("data", (d: Buffer) => (logText += d.toString()));
  controller.stderr!.on("data", (d: Buffer) => (logText += d.toString()));
  const ready = await eventually(() => (/controller ready/.test(logText) ? true : undefined), 60_000, 100);
  if (!ready) throw new Error(`controller did not start:\n${logText}`);
}, 90_000);
afterAll(async () => {
  controller?.kill("SIGTERM");
  await new Promise((r) => (controller?.exitCode !== null ? r(undefined) : controller.once("exit", r)));
  await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!existsSync(CLI))("secrets", () => {
  it("secrets - logs, --json outputs, printed commands and every process's command line hold no secret", { timeout: 120_000 }, async () => {
    const stateDir = join(dir, "ctl");
    const created = await weft(["keys", "create", "--reusable", "--controller-state-dir", stateDir]);
    const joinKey = created.stdout.trim();
    expect(joinKey, "the key, on stdout once").toMatch(/^weft_/);
    const ready = JSON.parse(logText.split("\n").find((l) => l.includes("controller ready")) ?? "{}") as { api?: string; caHash?: string };
    const ca = await readFile(join(stateDir, "tls", "ca.crt"), "utf8");
    const adminToken = (await readFile(join(stateDir, "admin-token"), "utf8")).trim();
    const client = new ControllerClient({ url: ready.api!, adminToken, caPem: ca });

    const wg = generateKeyPair();
    const agent = agentIdentity(joinKey, wg.publicKey);
    const raw = await client.raw("POST", "/v1/enroll", JSON.stringify(agent.body));
    expect(raw.status, raw.text).toBe(201);
    const res = EnrollResponse.parse(raw.body);
    const nc = await connect({ servers: res.nats.servers, tls: { ca: res.nats.caPem! }, authenticator: jwtAuthenticator(res.nats.userJwt, agent.natsSeed), inboxPrefix: Subjects.inboxPrefix(res.nodeId) });
    nc.publish(Subjects.heartbeat(res.nodeId), JSON.stringify({ version: 1, nodeId: res.nodeId, sentAt: new Date().toISOString(), appliedRevision: 0, peers: [] }));
    await nc.request(Subjects.credentials(res.nodeId), JSON.stringify({ version: 1 }), { timeout: 5000 });
    await nc.close();

    const outputs: [string, string][] = [["keys create (stderr: the agent command)", created.stderr]];
    for (const cmd of [["nodes", "list", "--json"], ["keys", "list", "--json"], ["identities", "list", "--json"], ["inventory", "list", "--json"], ["policy", "get", "--json"]]) {
      const out = await weft([...cmd, "--controller-state-dir", stateDir]);
      outputs.push([`weft ${cmd.join(" ")}`, out.stdout + out.stderr]);
    }
    const cmdlines: [string, string][] = [];
    for (const pid of (await readdir("/proc")).filter((p) => /^\d+$/.test(p))) {
      const text = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
      if (text) cmdlines.push([`/proc/${pid}/cmdline`, text.split("\0").join(" ")]);
    }
    await new Promise((r) => setTimeout(r, 200));
    const authority = JSON.parse(await readFile(join(stateDir, "authority", "authority.json"), "utf8")) as Record<string, string>;
    const secrets: [string, string][] = [
      ["join key", joinKey],
      ["join key secret", joinKey.split("_").at(-1)!],
      ["admin token", adminToken],
      ["agent NATS seed", new TextDecoder().decode(agent.natsSeed)],
      ["agent WireGuard private key", wg.privateKey.toBase64()],
      ...["operatorSeed", "systemAccountSeed", "accountSeed", "accountSigningKeySeed"].map((f): [string, string] => [`authority ${f}`, authority[f]!]),
    ];
    const places: [string, string][] = [["controller log", logText], ...outputs, ...cmdlines];
    const hits = places.flatMap(([where, text]) => secrets.filter(([, s]) => text.includes(s)).map(([what]) => `${what} in ${where}`));
    expect(hits, `secrets found (searched ${places.length} places, ${logText.length} bytes of log)`).toEqual([]);
  });
});

/**
 * The lab demo's mesh view against a real controller (the built CLI, `weft controller` on
 * loopback with its embedded nats-server) that is frozen with SIGSTOP: the view says the control
 * plane is unreachable within its timeout and keeps showing the hosts' own view, the refresh loop
 * keeps going, and it says so when the controller is thawed and answers again.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ControllerClient, ControllerFiles } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { meshView, watchMesh, type MeshSources } from "./lab-mesh-view.js";

const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "main.js");
const HOSTS = [
  { name: "aws-1", site: "aws" },
  { name: "onprem-1", site: "onprem" },
];

/** A failure `until` does not retry. */
class Fatal extends Error {}

async function until(what: string, ms: number, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ok = await Promise.resolve()
      .then(check)
      .catch((err: unknown) => {
        if (err instanceof Fatal) throw err;
        return false;
      });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

describe("lab demo view - a frozen controller", () => {
  let dir: string;
  let controller: ChildProcess | undefined;
  let output = "";
  let sources: MeshSources;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "weft-demo-view-"));
    const stateDir = join(dir, "controller");
    controller = spawn(process.execPath, [CLI, "controller", "--state-dir", stateDir, "--api-host", "127.0.0.1", "--api-port", "0", "--nats-host", "127.0.0.1", "--nats-port", "0"], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, WEFT_LOG_LEVEL: "warn" },
    });
    controller.stdout!.setEncoding("utf8").on("data", (d: string) => (output += d));
    controller.stderr!.setEncoding("utf8").on("data", (d: string) => (output += d));
    const socket = join(stateDir, ControllerFiles.apiSocket);
    await until(`the controller's API socket (${output.slice(-300)})`, 45_000, () => {
      if (controller!.exitCode !== null) throw new Fatal(`controller exited with ${controller!.exitCode}: ${output.slice(-500)}`);
      return existsSync(socket);
    });
    const token = (await readFile(join(stateDir, ControllerFiles.adminToken), "utf8")).trim();
    // The client's own timeout is longer than the view's: the view must not wait for it.
    const client = new ControllerClient({ socketPath: socket, adminToken: token, timeoutMs: 30_000 });
    await until("the controller's health check", 30_000, async () => (await client.raw("GET", "/healthz")).status === 200);
    const now = Math.floor(Date.now() / 1000);
    sources = {
      hosts: HOSTS,
      nodes: () => client.listNodes(),
      // The hosts' side: what `wg show` and the agents' status files would say during the outage.
      handshakes: async (host) => new Map([[`${host}-peer`, now - 20]]),
      local: async (host) => ({ overlayAddress: host === "aws-1" ? "100.64.0.1" : "100.64.0.2", nats: "disconnected", stale: true, appliedRevision: 7 }),
    };
  }, 90_000);

  afterAll(async () => {
    if (controller && controller.exitCode === null) {
      controller.kill("SIGCONT");
      const exited = new Promise((r) => controller!.once("exit", r));
      controller.kill("SIGTERM");
      const timer = setTimeout(() => controller!.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  });

  it("lab demo view - frozen (SIGSTOP): unreachable within the view's timeout, the hosts' view shown; thawed: the controller's list again", async () => {
    const before = await meshView(sources);
    expect(before.controller, `before the freeze: ${before.error}`).toBe("reachable");
    // No node enrolled: the controller lists none of the hosts.
    expect(before.text, "before the freeze, the controller's node list decides membership").toContain("not a member");

    controller!.kill("SIGSTOP");
    try {
      const t0 = Date.now();
      const frozen = await meshView(sources, Date.now(), 1500);
      const ms = Date.now() - t0;
      expect(frozen.controller, "frozen").toBe("unreachable");
      expect(ms, `a view of a frozen controller took ${ms} ms, want under 3000 (the view's 1500 ms limit, not the client's 30 s)`).toBeLessThan(3000);
      expect(frozen.text, "says the control plane is unreachable").toMatch(/^control plane unreachable \(no answer within 1500 ms\)/);
      for (const [host, address] of [["aws-1", "100.64.0.1"], ["onprem-1", "100.64.0.2"]] as const) {
        const row = frozen.text.split("\n").find((l) => l.startsWith(host)) ?? "";
        expect(row, `${host}'s row from its own files`).toContain(address);
        expect(row, `${host}'s row: handshakes and the agent's status`).toMatch(/1\/1 .*unknown +disconnected, stale config \(rev 7\)/);
      }
    } finally {
      controller!.kill("SIGCONT");
    }
    await until("the thawed controller answers the view", 15_000, async () => (await meshView(sources)).controller === "reachable");
  }, 60_000);

  it("lab demo view - the refresh loop keeps going through a freeze and says when the controller answers again", async () => {
    const writes: string[] = [];
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const loop = watchMesh({ sources, intervalMs: 200, stopped, write: (t) => void writes.push(t) });
    try {
      await until("a first refresh", 10_000, () => writes.length > 0);
      controller!.kill("SIGSTOP");
      try {
        await until("a refresh that shows the control plane unreachable", 20_000, () => writes.some((w) => w.includes("control plane unreachable (")));
        const n = writes.length;
        await until("refreshes continuing while frozen", 20_000, () => writes.length >= n + 2);
      } finally {
        controller!.kill("SIGCONT");
      }
      await until("a refresh saying the control plane is reachable again", 20_000, () => writes.some((w) => /control plane reachable again after \d+ s/.test(w)));
    } finally {
      stop();
      await loop;
    }
    const last = writes[writes.length - 1] ?? "";
    expect(last, "the last refresh shows the controller's list again").not.toContain("control plane unreachable");
  }, 90_000);
});

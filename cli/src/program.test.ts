/**
 * What each command loads, seen from outside: the built CLI (cli/dist/main.js, made by
 * `npx tsc -b`) runs with a module resolve hook that records every module it resolves.
 * `weft --help` loads commander and the CLI's entry; `weft status` the agent's state readers and
 * nothing of the agent's control loops, the controller, fastify, a cloud SDK or the lab; `weft agent`
 * the agent, never the controller, fastify, a cloud SDK or the lab; `weft up` and `weft service` the
 * agent's config schema and state readers, not the agent. A build installed without the
 * optional lab (@weft/lab made unresolvable by the hook) runs every command but `weft lab`, which
 * exits 2 saying why.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOCAL_API_SOCKET, STATUS_FILE, loadState, statusView } from "@weft/agent/local";
import { writeAgentStateDir } from "../../test/bench/cli.js";

const CLI = join(dirname(fileURLToPath(import.meta.url)), "..", "dist", "main.js");
const built = existsSync(CLI);
if (!built) console.warn(`program.test: skipped: ${CLI} is missing; run \`npx tsc -b\``);

// Off-thread resolve hook (node:module register): appends each resolved URL to a file, and makes
// the specifiers in `hide` unresolvable the way a missing package is (ERR_MODULE_NOT_FOUND).
const HOOKS = `
import { appendFileSync } from "node:fs";
let file, hide = [];
export function initialize(data) { file = data.file; hide = data.hide; }
export async function resolve(specifier, context, next) {
  if (hide.includes(specifier)) {
    const err = new Error("Cannot find package '" + specifier + "' imported from " + context.parentURL);
    err.code = "ERR_MODULE_NOT_FOUND";
    throw err;
  }
  const r = await next(specifier, context);
  appendFileSync(file, r.url + "\\n");
  return r;
}
`;
const REGISTER = `
import { register } from "node:module";
register(new URL("./hooks.mjs", import.meta.url), { data: { file: process.env.WEFT_TEST_TRACE, hide: (process.env.WEFT_TEST_HIDE ?? "").split(",").filter(Boolean) } });
`;

/** Modules no command but `weft controller`, `nats-config` and the admin commands' server may load. */
const CONTROL_PLANE: [string, RegExp][] = [
  ["the controller", /\/controller\/dist\//],
  ["the cloud adapters", /\/cloud-adapters\/dist\//],
  ["fastify", /\/node_modules\/(fastify|@fastify)\//],
  ["a cloud SDK", /\/node_modules\/(@aws-sdk|@azure|@google-cloud|google-auth-library)\//],
  ["the lab", /\/test\/dist\//],
];
/** What `weft status` must not load on top: the agent's control loops and the datapath. */
const AGENT_RUNTIME: [string, RegExp][] = [
  ["the agent's full entry", /\/agent\/dist\/index\.js$/],
  ["NATS", /\/node_modules\/@nats-io\//],
  // The agent's config reads the flow table's range from @weft/bpf/flow-table-limits (three numbers, no imports).
  ["libbpf-ts", /\/bpf\/dist\/(?!flow-table-limits\.js$)/],
  ["prom-client", /\/node_modules\/prom-client\//],
];

let dir: string;
let stateDir: string;
let n = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "weft-cli-modules-"));
  await writeFile(join(dir, "hooks.mjs"), HOOKS);
  await writeFile(join(dir, "register.mjs"), REGISTER);
  stateDir = join(dir, "state");
  await writeAgentStateDir(stateDir);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Every module URL resolved, in order. */
  modules: string[];
}

/**
 * Runs the built CLI with the hook. With `until`, the process is killed once its stderr matches
 * (for a command that does not end by itself); otherwise it must end within the timeout.
 */
async function weft(args: string[], opts: { until?: RegExp; hide?: string[]; env?: Record<string, string>; signal?: NodeJS.Signals } = {}): Promise<Run> {
  const trace = join(dir, `trace-${++n}.txt`);
  await writeFile(trace, "");
  const child = spawn(process.execPath, ["--import", join(dir, "register.mjs"), CLI, ...args], {
    env: { ...process.env, ...opts.env, WEFT_TEST_TRACE: trace, WEFT_TEST_HIDE: (opts.hide ?? []).join(",") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  let signalled = false;
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`weft ${args.join(" ")}: ${opts.until ? `no ${String(opts.until)} on stderr` : "did not end"} within 60 s; stderr: ${stderr.slice(0, 1000)}`));
    }, 60_000);
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      // Once: a second SIGTERM makes a stopping controller exit at once, leaving its nats-server behind.
      if (!signalled && opts.until?.test(stderr)) {
        signalled = true;
        child.kill(opts.signal ?? "SIGKILL");
      }
    });
    child.on("exit", (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  const modules = (await readFile(trace, "utf8")).split("\n").filter(Boolean);
  return { code, stdout, stderr, modules };
}

function loaded(modules: string[], banned: [string, RegExp][]): string[] {
  return banned.flatMap(([what, re]) => {
    const hits = modules.filter((m) => re.test(m));
    return hits.length > 0 ? [`${what}: ${hits.slice(0, 3).join(", ")}${hits.length > 3 ? ` and ${hits.length - 3} more` : ""}`] : [];
  });
}

/** A loopback TCP port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const addr = srv.address();
  await new Promise((r) => srv.close(r));
  if (addr === null || typeof addr === "string") throw new Error("no loopback port");
  return addr.port;
}

describe.skipIf(!built)("weft loads only what it runs", () => {
  it("cli - weft --help loads commander and the CLI's entry, no workspace package", async () => {
    const r = await weft(["--help"]);
    expect(r.code, `exit code; stderr: ${r.stderr}`).toBe(0);
    expect(r.stdout, "help lists the commands").toMatch(/status[\s\S]*agent[\s\S]*lab/);
    expect(r.modules.some((m) => m.includes("/node_modules/commander/")), "commander was loaded (the trace works)").toBe(true);
    const packages = r.modules.filter((m) => /\/(protocol|agent|controller|bpf|util|cloud-adapters|test)\/dist\//.test(m) || /\/node_modules\/(zod|yaml|pino)\//.test(m));
    expect(packages, "modules --help loaded beyond commander and cli/dist").toEqual([]);
  });

  it("cli - weft status --json prints the node and loads no controller, fastify, cloud SDK, lab, NATS or eBPF", async () => {
    const r = await weft(["status", "--json", "--state-dir", stateDir]);
    expect(r.code, `exit code; stderr: ${r.stderr}`).toBe(0);
    const out = JSON.parse(r.stdout) as { nodeId: string; peers: unknown[] };
    expect(out.nodeId, "nodeId from state.json").toBe("n-00000000000000b1");
    expect(out.peers.length, "peers from state.json").toBe(2);
    expect(r.modules.some((m) => m.endsWith("/agent/dist/local.js")), "the agent's local entry was loaded (the trace works)").toBe(true);
    expect(loaded(r.modules, [...CONTROL_PLANE, ...AGENT_RUNTIME]), "modules weft status must not load").toEqual([]);
  });

  it("cli - weft status answered by the running agent loads the socket's client and no commander, zod, protocol schemas or state readers", async () => {
    // The agent's answer to GET /v1/status/view: its own view of the state directory written above.
    const state = await loadState(stateDir);
    if (!state) throw new Error(`no agent state in ${stateDir}`);
    const view = statusView(state, JSON.parse(await readFile(join(stateDir, STATUS_FILE), "utf8")) as Parameters<typeof statusView>[1], []);
    const socket = join(stateDir, LOCAL_API_SOCKET);
    const agent = createHttpServer((req, res) => {
      res.writeHead(req.method === "GET" && req.url === "/v1/status/view" ? 200 : 404, { "content-type": "application/json" });
      res.end(JSON.stringify(req.url === "/v1/status/view" ? { ...view, name: "from-the-agent" } : { error: "not_found" }));
    });
    await new Promise<void>((r) => agent.listen(socket, r));
    try {
      const r = await weft(["status", "--state-dir", stateDir]);
      expect(r.code, `exit code; stderr: ${r.stderr}`).toBe(0);
      expect(r.stdout, "the agent's answer was printed").toMatch(/^node from-the-agent \(n-00000000000000b1\)/);
      expect(r.stdout, "its peers").toMatch(/peer-1[\s\S]*peer-2/);
      const heavy = loaded(r.modules, [...CONTROL_PLANE, ...AGENT_RUNTIME, ["zod", /\/node_modules\/zod\//], ["the protocol's schemas", /\/protocol\/dist\/index\.js$/], ["the state readers", /\/agent\/dist\/local\.js$/], ["commander (a plain status needs no program)", /\/node_modules\/commander\//]]);
      expect(heavy, "modules weft status loaded with an agent answering").toEqual([]);
      const files = [...new Set(r.modules.filter((m) => m.startsWith("file:")))];
      expect(files.length, `modules loaded (want a handful: the CLI's entry, the view and its client): ${files.join(" ")}`).toBeLessThan(15);
      const help = await weft(["status", "--help"]);
      expect(help.stdout, "weft status --help, from the full program").toMatch(/--state-dir <dir>[\s\S]*--json/);
    } finally {
      await new Promise((r) => agent.close(r));
      await rm(socket, { force: true });
    }
  });

  it("cli - weft agent loads the agent and no controller, fastify, cloud SDK or lab", async () => {
    const r = await weft(["agent", "--state-dir", join(dir, "agent"), "--controller", `http://127.0.0.1:${await closedPort()}`, "--no-datapath", "--metrics-listen", ""], {
      until: /enrollment failed; retrying/,
      env: { WEFT_JOIN_KEY: "weft_test_not_a_key", WEFT_LOG_LEVEL: "warn" },
    });
    expect(r.stderr, "the agent started and reached its enrollment retry").toMatch(/enrollment failed; retrying/);
    expect(r.modules.some((m) => m.endsWith("/agent/dist/index.js")), "the agent was loaded").toBe(true);
    expect(loaded(r.modules, CONTROL_PLANE), "modules weft agent must not load").toEqual([]);
  });

  it("cli - weft controller without inventory accounts loads no cloud SDK or cloud adapter", async () => {
    // The SDKs are ~150 MB of the controller's memory; they load with the first sync of an account.
    const r = await weft(["controller", "--state-dir", join(dir, "controller"), "--api-host", "127.0.0.1", "--api-port", String(await closedPort()), "--nats-host", "127.0.0.1", "--nats-port", String(await closedPort())], {
      until: /controller ready/,
      // SIGTERM: the controller stops its embedded nats-server on the way out.
      signal: "SIGTERM",
      env: { WEFT_LOG_LEVEL: "info" },
    });
    expect(r.stderr + r.stdout, "the controller started").toMatch(/controller ready/);
    expect(r.modules.some((m) => m.endsWith("/controller/dist/index.js")), "the controller was loaded (the trace works)").toBe(true);
    const sdks: [string, RegExp][] = [...CONTROL_PLANE.filter(([what]) => what === "a cloud SDK"), ["a cloud adapter (their shared model aside)", /\/cloud-adapters\/dist\/(?!model\.js$)/]];
    expect(loaded(r.modules, sdks), "modules a controller without accounts must not load").toEqual([]);
  });

  it("cli - a SIGTERM while the controller starts stops it once started, its embedded nats-server included", async () => {
    const state = join(dir, "controller-early-stop");
    const r = await weft(["controller", "--state-dir", state, "--api-host", "127.0.0.1", "--api-port", String(await closedPort()), "--nats-host", "127.0.0.1", "--nats-port", String(await closedPort())], {
      until: /nats-server started/,
      signal: "SIGTERM",
      env: { WEFT_LOG_LEVEL: "info" },
    });
    const left = spawnSync("pgrep", ["-f", state], { encoding: "utf8" }).stdout.trim();
    if (left !== "") spawnSync("pkill", ["-KILL", "-f", state]); // a failing run leaves nothing behind
    expect(left, "processes left running with the controller's state dir in their command line (its nats-server)").toBe("");
    expect(r.code, `exit code (0: stopped, not killed by the signal); stderr: ${r.stderr.slice(-1000)}`).toBe(0);
    expect(r.stderr + r.stdout, "it finished starting, then stopped").toMatch(/controller ready[\s\S]*shutting down/);
  });

  it("cli - weft controller with an on-prem account loads its adapter and no cloud SDK or other provider's adapter", async () => {
    const site = join(dir, "site.yaml");
    await writeFile(site, "site: lab\nnetworks: [{id: lan, cidrs: [10.20.0.0/16]}]\ninstances:\n  - {id: a, network: lan, privateIps: [10.20.0.1]}\n");
    const config = join(dir, "controller-onprem.yaml");
    await writeFile(config, `inventory:\n  accounts:\n    - provider: onprem\n      file: ${site}\n`);
    const r = await weft(["controller", "--config", config, "--state-dir", join(dir, "controller-onprem"), "--api-host", "127.0.0.1", "--api-port", String(await closedPort()), "--nats-host", "127.0.0.1", "--nats-port", String(await closedPort())], {
      until: /inventory synced/,
      signal: "SIGTERM",
      env: { WEFT_LOG_LEVEL: "info" },
    });
    expect(r.stderr + r.stdout, "the account was synced").toMatch(/"instances":1.*inventory synced/);
    expect(r.modules.some((m) => m.endsWith("/cloud-adapters/dist/onprem/index.js")), "the on-prem adapter was loaded").toBe(true);
    const others: [string, RegExp][] = [...CONTROL_PLANE.filter(([what]) => what === "a cloud SDK"), ["another provider's adapter", /\/cloud-adapters\/dist\/(aws|azure|gcp|index\.js)/]];
    expect(loaded(r.modules, others), "modules a controller with an on-prem account only must not load").toEqual([]);
  });

  it("cli - weft up and weft service load the agent's config and state readers, not the agent, the controller, a cloud SDK or the lab", async () => {
    // A bad --timeout is refused (exit 2) once up.js and all it imports are loaded, before anything is touched.
    const up = await weft(["up", "--timeout", "soon"]);
    expect(up.code, `weft up exit code; stderr: ${up.stderr}`).toBe(2);
    expect(up.stderr, "weft up's refusal").toMatch(/run it as root|--timeout soon: want a number of seconds/);
    expect(up.modules.some((m) => m.endsWith("/agent/dist/host.js")), "the agent's host entry was loaded (the trace works)").toBe(true);
    expect(loaded(up.modules, [...CONTROL_PLANE, ...AGENT_RUNTIME]), "modules weft up must not load").toEqual([]);
    const service = await weft(["service", "status"]);
    expect([0, 3], `weft service status exit code (0 running, 3 stopped); stderr: ${service.stderr}`).toContain(service.code);
    expect(service.stdout, "weft service status").toMatch(/^(running|stopped) \(/);
    expect(loaded(service.modules, [...CONTROL_PLANE, ...AGENT_RUNTIME]), "modules weft service must not load").toEqual([]);
  });

  it("cli - without the optional lab, weft status and weft lab --help work and weft lab status exits 2 saying why", async () => {
    const status = await weft(["status", "--json", "--state-dir", stateDir], { hide: ["@weft/lab"] });
    expect(status.code, `weft status exit code; stderr: ${status.stderr}`).toBe(0);
    const help = await weft(["lab", "--help"], { hide: ["@weft/lab"] });
    expect(help.code, `weft lab --help exit code; stderr: ${help.stderr}`).toBe(0);
    expect(help.stdout, "lab help lists its commands").toMatch(/up[\s\S]*down[\s\S]*demo/);
    const lab = await weft(["lab", "status"], { hide: ["@weft/lab"] });
    expect(lab.code, `weft lab status exit code; stderr: ${lab.stderr}`).toBe(2);
    expect(lab.stderr, "weft lab status without the lab").toMatch(/the lab \(@weft\/lab, an optional dependency\) is not installed/);
  });
});

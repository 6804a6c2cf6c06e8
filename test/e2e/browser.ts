/**
 * A real browser on the lab: Debian's Chromium (/usr/bin/chromium) driven headless by
 * playwright-core, reaching the controller's HTTPS API inside the lab's `ctl` namespace through a
 * relay (a TCP listener on 127.0.0.1 in this process, piping each connection to a unix socket
 * where a small Node process inside the namespace connects it to the controller). TLS stays
 * end-to-end between Chromium and the controller; Chromium trusts the controller's CA by its pin
 * (`--ignore-certificate-errors-spki-list` with the CA's SPKI hash, which is what `ca.hash` holds),
 * as agents pin it with `--ca-hash`. Also: axe-core injected into a page for an accessibility check.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { spawnInHost, stopProcess, type LabOptions } from "@weft/lab";

export const CHROMIUM = "/usr/bin/chromium";

/** The flags this machine's Chromium needs (no network beyond the lab; no background services). */
export const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// Runs inside the namespace: accept on a unix socket, connect each to host:port, pipe both ways.
const RELAY = `
const net = require("node:net");
const [sock, host, port] = process.argv.slice(1);
net.createServer((c) => {
  const u = net.connect(Number(port), host);
  c.pipe(u).pipe(c);
  const end = () => { c.destroy(); u.destroy(); };
  c.on("error", end); u.on("error", end); c.on("close", end); u.on("close", end);
}).listen(sock, () => process.stdout.write("ready\\n"));
`;

export interface LabRelay {
  /** https://127.0.0.1:<port>: the controller as the browser sees it. */
  url: string;
  stop(): Promise<void>;
}

/** Relays 127.0.0.1:<free port> to `target` (host:port) inside a lab host's namespace. */
export async function startLabRelay(opts: LabOptions, host: string, targetHost: string, targetPort: number, socketPath: string): Promise<LabRelay> {
  await rm(socketPath, { force: true });
  const child = spawnInHost(opts, host, [process.execPath, "-e", RELAY, socketPath, targetHost, String(targetPort)], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay in ${host} did not start`)), 10_000);
    child.stdout?.once("data", () => {
      clearTimeout(timer);
      resolve();
    });
    child.once("exit", (code) => reject(new Error(`relay in ${host} exited with ${code}`)));
  });
  const open = new Set<Socket>();
  const server: Server = createServer((c) => {
    open.add(c);
    c.once("close", () => open.delete(c));
    const u = connect(socketPath);
    c.pipe(u).pipe(c);
    const end = () => {
      c.destroy();
      u.destroy();
    };
    c.on("error", end);
    u.on("error", end);
    c.on("close", end);
    u.on("close", end);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `https://127.0.0.1:${port}`,
    stop: async () => {
      for (const c of open) c.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await stopProcess(child, "SIGTERM");
      await rm(socketPath, { force: true });
    },
  };
}

/** `sha256:<hex>` (the CA pin) as Chromium's SPKI list wants it: base64 of the same digest. */
export function spkiListEntry(caHash: string): string {
  return Buffer.from(caHash.replace(/^sha256:/, ""), "hex").toString("base64");
}

/** Chromium headless, trusting only the controller's CA pin besides the system's. */
export async function launchChromium(caHash: string): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (scripts/setup.sh does)`);
  // playwright-core gives every launch a new empty --user-data-dir of its own.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_FLAGS, `--ignore-certificate-errors-spki-list=${spkiListEntry(caHash)}`] });
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

const axeSource: string = (() => {
  const require = createRequire(import.meta.url);
  return (require("axe-core") as { source: string }).source;
})();

/** Runs axe-core in the page (evaluated through the devtools protocol, so the page's CSP stays as served). */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const g = globalThis as unknown as { document: unknown; axe: { run(ctx: unknown, o: object): Promise<{ violations: AxeViolation[] }> } };
    const result = await g.axe.run(g.document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) }));
  });
}

export const ARTIFACTS = join(import.meta.dirname, "artifacts");

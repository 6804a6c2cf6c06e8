/**
 * The TCP API over HTTPS, against a real controller: the certificate chains to
 * the CA stored in the state dir and covers 127.0.0.1, a restart keeps the CA
 * (and so the pin), plain HTTP to the TLS port gets nothing, the admin client
 * trusts the controller by pin and refuses a wrong one, a new join key carries
 * the pin, and TLS can be turned off (with a warning).
 */
import { Writable } from "node:stream";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect, type PeerCertificate } from "node:tls";
import { ApiRequestError, ControllerClient, spkiHash } from "@weft/protocol";
import { pino, type Logger } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startController } from "../controller.js";
import { startTestController, type TestController } from "../testing.js";

let t: TestController;
let port: number;

beforeAll(async () => {
  t = await startTestController();
  port = Number(new URL(t.running.apiUrl).port);
});
afterAll(async () => {
  await t?.stop();
});

/** A logger that keeps every line, for asserting on what the controller logged. */
function capturingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString("utf8").split("\n")) if (l.trim() !== "") lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: "info" }, sink), lines };
}

function handshake(opts: { ca: string }): Promise<{ authorized: boolean; error: Error | null; peer: PeerCertificate }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, ca: opts.ca, rejectUnauthorized: false });
    socket.once("error", reject);
    socket.once("secureConnect", () => {
      resolve({ authorized: socket.authorized, error: socket.authorizationError, peer: socket.getPeerCertificate() });
      socket.destroy();
    });
  });
}

describe("api tls", () => {
  it("api tls - the API answers over TLS with a certificate that chains to the stored CA and covers 127.0.0.1", async () => {
    expect(t.running.apiUrl, "apiUrl").toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const caPem = await readFile(join(t.stateDir, "tls", "ca.crt"), "utf8");
    expect(t.running.caPem, "RunningController.caPem").toBe(caPem);
    expect(t.running.caHash, "RunningController.caHash").toBe(spkiHash(caPem));
    const hs = await handshake({ ca: caPem });
    expect(hs.error, "verification error with the stored CA as the only trust anchor").toBeNull();
    expect(hs.authorized, "verified with the stored CA").toBe(true);
    expect(hs.peer.subjectaltname, "server certificate SANs").toContain("IP Address:127.0.0.1");
    const health = await t.client.raw("GET", "/healthz");
    expect(health.status, "GET /healthz over https").toBe(200);
  });

  it("api tls - plain HTTP to the TLS port gets no HTTP answer", async () => {
    const plain = new ControllerClient({ url: t.running.apiUrl.replace(/^https:/, "http:"), timeoutMs: 5000 });
    const err = await plain.raw("GET", "/healthz").then(
      (res) => new Error(`got HTTP ${res.status} ${res.text.slice(0, 80)}`),
      (e: unknown) => e,
    );
    expect(err, "plain HTTP request to the TLS port").toBeInstanceOf(ApiRequestError);
    expect((err as ApiRequestError).code, "error code").toBe("unreachable");

    // On the wire: the server closes the connection without a byte of HTTP.
    const answer = await new Promise<string>((resolve, reject) => {
      const s = netConnect({ host: "127.0.0.1", port }, () => s.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
      let got = "";
      s.on("data", (d: Buffer) => (got += d.toString("latin1")));
      s.on("close", () => resolve(got));
      s.on("error", () => resolve(got));
      s.setTimeout(5000, () => reject(new Error("the server kept a plain HTTP connection open for 5 s")));
    });
    expect(answer, "what a plain HTTP request got back").not.toMatch(/^HTTP\//);
  });

  it("api tls - the admin client trusts the controller by pin; a wrong pin fails as ca_mismatch, not retryable", async () => {
    const pinned = new ControllerClient({ url: t.running.apiUrl, adminToken: t.running.adminToken, caHash: t.running.caHash! });
    expect((await pinned.raw("GET", "/healthz")).status, "GET /healthz with the right pin").toBe(200);
    await pinned.listJoinKeys();

    const wrongPin = `sha256:${"0".repeat(64)}`;
    const wrong = new ControllerClient({ url: t.running.apiUrl, adminToken: t.running.adminToken, caHash: wrongPin });
    const err = await wrong.listJoinKeys().then(
      () => new Error("got a key list, want a ca_mismatch error"),
      (e: unknown) => e,
    );
    expect(err, "error with a wrong pin").toBeInstanceOf(ApiRequestError);
    expect({ code: (err as ApiRequestError).code, retryable: (err as ApiRequestError).retryable }, "error kind").toEqual({ code: "ca_mismatch", retryable: false });
    expect((err as Error).message, "message").toContain(`controller certificate does not match --ca-hash (got ${t.running.caHash}); check the hash from \`weft keys create\``);

    const noCa = new ControllerClient({ url: t.running.apiUrl, adminToken: t.running.adminToken });
    const unverified = await noCa.raw("GET", "/healthz").then(
      () => new Error("got an answer without trusting the controller's CA"),
      (e: unknown) => e,
    );
    expect({ code: (unverified as ApiRequestError).code, retryable: (unverified as ApiRequestError).retryable }, "error without a CA").toEqual({ code: "tls_verification", retryable: false });
    expect((unverified as Error).message, "message without a CA").toMatch(/--ca-hash/);
  });

  it("api tls - a new join key carries the CA pin and the https URLs the certificate covers, over TCP and the unix socket", async () => {
    const viaTcp = await t.client.createJoinKey({});
    expect(viaTcp.controller, "controller info over TCP").toEqual({ caHash: t.running.caHash, urls: [`https://127.0.0.1:${port}`] });
    const viaSocket = await new ControllerClient({ socketPath: t.running.apiSocket!, adminToken: t.running.adminToken }).createJoinKey({});
    expect(viaSocket.controller, "controller info over the unix socket").toEqual({ caHash: t.running.caHash, urls: [`https://127.0.0.1:${port}`] });
  });
});

describe("api tls lifecycle", () => {
  let stateDir: string;
  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), "weft-ctl-tls-"));
  });
  afterAll(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  it("api tls - a controller restarted on the same state dir keeps its CA hash and says it when ready", async () => {
    const first = await startTestController({}, { stateDir });
    const hash = first.running.caHash;
    const caPem = first.running.caPem!;
    await first.stop();
    const { log, lines } = capturingLogger();
    const second = await startController({ stateDir, nats: { listenHost: "127.0.0.1", port: 0 }, api: { listenHost: "127.0.0.1", port: 0 } }, log);
    try {
      expect(second.caHash, "CA hash after a restart").toBe(hash);
      const old = new ControllerClient({ url: second.apiUrl, caPem });
      expect((await old.raw("GET", "/healthz")).status, "GET /healthz trusting the CA from before the restart").toBe(200);
      const ready = lines.find((l) => l["msg"] === "controller ready");
      expect(ready?.["caHash"], "caHash in the controller ready line").toBe(hash);
      expect(lines.filter((l) => l["msg"] === "created the controller CA"), "CA creations on restart").toEqual([]);
    } finally {
      await second.stop();
    }
  });

  it("api tls - with api.tls.enabled false the API serves plain HTTP, warns, and join keys carry no pin", async () => {
    const { log, lines } = capturingLogger();
    const plainDir = join(stateDir, "plain");
    const running = await startController({ stateDir: plainDir, nats: { listenHost: "127.0.0.1", port: 0 }, api: { listenHost: "127.0.0.1", port: 0, tls: { enabled: false } } }, log);
    try {
      expect(running.apiUrl, "apiUrl").toMatch(/^http:\/\//);
      expect(running.caHash, "caHash").toBeUndefined();
      const key = await new ControllerClient({ url: running.apiUrl, adminToken: running.adminToken }).createJoinKey({});
      expect(key.controller, "controller info of a join key").toBeUndefined();
      const warning = lines.find((l) => l["level"] === 40 && /plain HTTP/.test(String(l["msg"])));
      expect(warning?.["msg"], "warning at start").toMatch(/join keys cross the network in clear text/);
    } finally {
      await running.stop();
    }
  });
});

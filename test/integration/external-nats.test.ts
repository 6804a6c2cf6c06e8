/**
 * A controller pointed at an external nats-server (`nats.url`), configured with
 * the fragment `weft nats-config` prints and TLS with a certificate from the
 * controller's CA: the controller starts no server of its own, agents get
 * credentials (and the CA) that work against the external server over TLS, and
 * deleting a node revokes them there too.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, jwtAuthenticator } from "@nats-io/transport-node";
import { ControllerClient, Subjects, generateKeyPair, type PeerRecord } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PeerWatch } from "../../agent/src/control/peer-watch.js";
import { startController, type RunningController } from "../../controller/src/controller.js";
import { natsServerConfigFragment } from "../../controller/src/nats-config.js";
import { findNatsServer, loadOrCreateAuthority } from "../../controller/src/nats/index.js";
import { agentIdentity, eventually } from "../../controller/src/testing.js";
import { ApiTls, TLS_DIR } from "../../controller/src/tls/index.js";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

describe("controller with an external NATS", () => {
  let dir: string;
  let server: ChildProcess | undefined;
  let running: RunningController | undefined;
  let url: string;
  let caPem: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "weft-ext-"));
    const stateDir = join(dir, "controller");
    // The operator's keys exist before the server starts, as they would after `weft nats-config`.
    await loadOrCreateAuthority(join(stateDir, "authority"));
    // Its certificate comes from the controller's CA (made here the way the controller makes it).
    const tls = await ApiTls.open({ dir: join(stateDir, TLS_DIR), sans: ["127.0.0.1", "localhost"], log: pino({ level: "silent" }) });
    caPem = tls.caPem;
    await writeFile(join(dir, "nats.crt"), tls.serverOptions().cert);
    await writeFile(join(dir, "nats.key"), tls.serverOptions().key, { mode: 0o600 });
    const port = await freePort();
    url = `tls://127.0.0.1:${port}`;
    const conf = join(dir, "nats.conf");
    await writeFile(
      conf,
      `host: 127.0.0.1\nport: ${port}\njetstream { store_dir: "${join(dir, "js")}" }\ntls { cert_file: "${join(dir, "nats.crt")}", key_file: "${join(dir, "nats.key")}" }\n${await natsServerConfigFragment(stateDir)}`,
    );
    server = spawn(await findNatsServer(), ["-c", conf], { stdio: "ignore" });
    const probe = async () => {
      const nc = await connect({ servers: url, tls: { ca: caPem }, timeout: 500, maxReconnectAttempts: 0 }).catch((err: unknown) => err);
      // Anonymous connections are refused: an authorization error means the server is up.
      return nc instanceof Error && /authoriz/i.test(nc.message) ? true : undefined;
    };
    expect(await eventually(probe, 10_000, 100), "external nats-server did not come up").toBe(true);
    running = await startController({ stateDir, nats: { url }, api: { listenHost: "127.0.0.1", port: 0, socket: "" } }, pino({ level: "silent" }));
  });

  afterAll(async () => {
    await running?.stop();
    // Remove its store only once the server has exited (it writes until then: ENOTEMPTY).
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((resolve) => server!.once("exit", resolve));
      server.kill("SIGTERM");
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  it("external nats - the controller uses the given URL and starts no server of its own", () => {
    expect(running?.natsUrl, "natsUrl").toBe(url);
    expect(existsSync(join(dir, "controller", "nats")), "embedded server data dir exists").toBe(false);
  });

  it("external nats - an enrolled agent's credentials work there, and stop working once the node is deleted", async () => {
    const client = new ControllerClient({ url: running!.apiUrl, adminToken: running!.adminToken, caPem: running!.caPem });
    const key = await client.createJoinKey({ reusable: false });
    const agent = agentIdentity(key.key, generateKeyPair().publicKey);
    const res = await client.raw("POST", "/v1/enroll", JSON.stringify(agent.body));
    expect(res.status, res.text).toBe(201);
    const enrolled = res.body as { nodeId: string; nats: { servers: string[]; userJwt: string; caPem?: string } };
    expect(enrolled.nats.servers, "NATS servers handed to the agent").toEqual([url]);
    expect(enrolled.nats.caPem, "CA handed to the agent: the controller's").toBe(caPem);
    const plain = await connect({ servers: url.replace("tls://", "nats://"), tls: null, authenticator: jwtAuthenticator(enrolled.nats.userJwt, agent.natsSeed), maxReconnectAttempts: 0, reconnect: false }).catch((err: unknown) => err);
    expect(plain, "a plaintext connection to the external server: want refused").toBeInstanceOf(Error);

    const nc = await connect({
      servers: enrolled.nats.servers,
      tls: { ca: enrolled.nats.caPem! },
      authenticator: jwtAuthenticator(enrolled.nats.userJwt, agent.natsSeed),
      inboxPrefix: Subjects.inboxPrefix(enrolled.nodeId),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 100,
    });
    const ownPeer = new Promise<PeerRecord>((resolve) => {
      const watch = new PeerWatch(nc, Subjects.inboxPrefix(enrolled.nodeId), (set) => {
        const own = set.peers.get(enrolled.nodeId);
        if (own) {
          watch.stop();
          resolve(own);
        }
      }, pino({ level: "silent" }));
      void watch.start();
    });
    expect((await ownPeer).nodeId, "own peer record read from the external server").toBe(enrolled.nodeId);

    await client.deleteNode(enrolled.nodeId);
    const closed = await Promise.race([nc.closed().then(() => "closed"), new Promise((r) => setTimeout(() => r("still open"), 5000))]);
    expect(closed, "agent connection after its node was deleted").toBe("closed");
  });
});

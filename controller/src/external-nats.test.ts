/**
 * A controller pointed at an external nats-server (`nats.url`), configured with
 * the fragment `weft nats-config` prints: the controller starts no server of
 * its own, agents get credentials that work against the external server, and
 * deleting a node revokes them there too.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { connect, jwtAuthenticator } from "@nats-io/transport-node";
import { Buckets, ControllerClient, PeerRecord, Subjects, generateKeyPair } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startController, type RunningController } from "./controller.js";
import { natsServerConfigFragment } from "./nats-config.js";
import { findNatsServer, loadOrCreateAuthority } from "./nats/index.js";
import { agentIdentity, eventually } from "./testing.js";

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

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "weft-ext-"));
    const stateDir = join(dir, "controller");
    // The operator's keys exist before the server starts, as they would after `weft nats-config`.
    await loadOrCreateAuthority(join(stateDir, "authority"));
    const port = await freePort();
    url = `nats://127.0.0.1:${port}`;
    const conf = join(dir, "nats.conf");
    await writeFile(conf, `host: 127.0.0.1\nport: ${port}\njetstream { store_dir: "${join(dir, "js")}" }\n${await natsServerConfigFragment(stateDir)}`);
    server = spawn(await findNatsServer(), ["-c", conf], { stdio: "ignore" });
    const probe = async () => {
      const nc = await connect({ servers: url, timeout: 500, maxReconnectAttempts: 0 }).catch((err: unknown) => err);
      // Anonymous connections are refused: an authorization error means the server is up.
      return nc instanceof Error && /authoriz/i.test(nc.message) ? true : undefined;
    };
    expect(await eventually(probe, 10_000, 100), "external nats-server did not come up").toBe(true);
    running = await startController({ stateDir, nats: { url }, api: { listenHost: "127.0.0.1", port: 0, socket: "" } }, pino({ level: "silent" }));
  });

  afterAll(async () => {
    await running?.stop();
    server?.kill("SIGTERM");
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
    const enrolled = res.body as { nodeId: string; nats: { servers: string[]; userJwt: string } };
    expect(enrolled.nats.servers, "NATS servers handed to the agent").toEqual([url]);

    const nc = await connect({
      servers: enrolled.nats.servers,
      authenticator: jwtAuthenticator(enrolled.nats.userJwt, agent.natsSeed),
      inboxPrefix: Subjects.inboxPrefix(enrolled.nodeId),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 100,
    });
    const kv = await new Kvm(nc).open(Buckets.peers);
    const own = await kv.get(enrolled.nodeId);
    expect(PeerRecord.parse(own?.json()).nodeId, "own peer record read from the external server").toBe(enrolled.nodeId);

    await client.deleteNode(enrolled.nodeId);
    const closed = await Promise.race([nc.closed().then(() => "closed"), new Promise((r) => setTimeout(() => r("still open"), 5000))]);
    expect(closed, "agent connection after its node was deleted").toBe("closed");
  });
});

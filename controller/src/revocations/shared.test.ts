/**
 * Revocations shared through the store, with two controllers on one real nats-server: they share
 * the authority and CA (copied, as an operator does) but each has its own state directory and so
 * its own revocation file. A node deleted through one controller stays revoked when the other
 * later pushes its account JWT (after deleting another node), and the other controller's
 * authority holds the revocation.
 */
import { copyFile, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decode } from "@nats-io/jwt";
import { connect, jwtAuthenticator } from "@nats-io/transport-node";
import { ControllerClient, Subjects, generateKeyPair, type EnrollResponse } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startController, type RunningController } from "../controller.js";
import { startNatsServers, type NatsServers } from "../testing-nats.js";
import { agentIdentity, eventually } from "../testing.js";

const silent = pino({ level: process.env.WEFT_TEST_LOG ?? "silent" });

describe("revocations - shared by two controllers through the store", () => {
  let dir: string;
  let servers: NatsServers;
  const ctl: RunningController[] = [];
  const client = (i: number) => new ControllerClient({ url: ctl[i]!.apiUrl, adminToken: ctl[i]!.adminToken, caPem: ctl[i]!.caPem });
  const agents = new Map<string, { enrolled: EnrollResponse; seed: Uint8Array }>();

  /** Whether the agent's credentials are accepted by the NATS server now. */
  const admitted = async (name: string) => {
    const a = agents.get(name)!;
    const nc = await connect({
      servers: servers.urls[0]!,
      tls: { ca: servers.caPem },
      authenticator: jwtAuthenticator(a.enrolled.nats.userJwt, a.seed),
      inboxPrefix: Subjects.inboxPrefix(a.enrolled.nodeId),
      maxReconnectAttempts: 0,
      timeout: 3000,
    }).catch(() => undefined);
    if (!nc) return false;
    await nc.close();
    return true;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "weft-revocations-"));
    const [a, b] = [join(dir, "a"), join(dir, "b")];
    servers = await startNatsServers(dir, a, 1);
    // The operator copies the authority's seeds and the CA; each controller keeps its own files otherwise.
    for (const sub of ["authority", "tls"]) {
      await mkdir(join(b, sub), { recursive: true, mode: 0o700 });
      for (const f of await readdir(join(a, sub))) if (f === "authority.json" || sub === "tls") await copyFile(join(a, sub, f), join(b, sub, f));
    }
    for (const stateDir of [a, b]) {
      ctl.push(await startController({ stateDir, nats: { url: servers.urls[0]! }, api: { listenHost: "127.0.0.1", port: 0, socket: "" }, leader: { leaseSeconds: 3 } }, silent));
    }
    const key = await client(0).createJoinKey({ reusable: true });
    for (const name of ["x", "y"]) {
      const agent = agentIdentity(key.key, generateKeyPair().publicKey, { name });
      const res = await client(0).raw("POST", "/v1/enroll", JSON.stringify(agent.body));
      if (res.status !== 201) throw new Error(`enroll ${name}: got ${res.status} ${res.text}, want 201`);
      agents.set(name, { enrolled: res.body as EnrollResponse, seed: agent.natsSeed });
    }
  }, 90_000);

  afterAll(async () => {
    for (const c of ctl.reverse()) await c.stop().catch(() => {});
    await servers?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("revocations - a node deleted through one controller stays revoked when the other pushes its account JWT", async () => {
    expect(await admitted("x"), "x admitted before any delete").toBe(true);
    await client(0).deleteNode(agents.get("x")!.enrolled.nodeId);
    expect(await eventually(async () => ((await admitted("x")) ? undefined : true), 5000), "x refused after its delete through controller 0").toBe(true);

    const xKey = decode(agents.get("x")!.enrolled.nats.userJwt).sub;
    const adopted = await eventually(() => (ctl[1]!.authority.revocations().has(xKey) ? true : undefined), 5000);
    expect(adopted, "controller 1's authority took in x's revocation from the store").toBe(true);

    // Controller 1 revokes y and pushes its own account JWT: it must still carry x's revocation.
    await client(1).deleteNode(agents.get("y")!.enrolled.nodeId);
    expect(await eventually(async () => ((await admitted("y")) ? undefined : true), 5000), "y refused after its delete through controller 1").toBe(true);
    expect(await admitted("x"), "x still refused after controller 1 pushed its account JWT").toBe(false);
    // Controller 0 takes y's revocation in from the store through its watch, on its own time.
    expect(await eventually(() => (ctl[0]!.authority.revocations().size === 2 ? true : undefined), 5000), "controller 0 holds both revocations").toBe(true);
    expect(ctl[1]!.authority.revocations().size, "controller 1 holds both revocations").toBe(2);
  }, 60_000);
});

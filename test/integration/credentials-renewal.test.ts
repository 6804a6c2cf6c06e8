/**
 * NATS credential renewal against a real controller: the agent connects over TLS with the CA it
 * was given (a plaintext URL is refused), renews its JWT on its own subject, stores it and
 * reconnects on it; a deleted node's renewal is refused.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { startTestController, type TestController } from "../../controller/src/testing.js";
import { EnrollResponse, Subjects, generateKeyPair } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadOrCreateNatsIdentity } from "../../agent/src/state/nkey.js";
import { StateHolder } from "../../agent/src/state/holder.js";
import { ensureStateDir } from "../../agent/src/state/store.js";
import { CredentialRenewer, jwtTimes, renewAt } from "../../agent/src/session/credentials.js";
import { connectNats, natsTransport } from "../../agent/src/session/nats.js";

const log = pino({ level: "silent" });
let t: TestController;
let dir: string;
const open: NatsConnection[] = [];

beforeAll(async () => {
  t = await startTestController();
  dir = await mkdtemp(join(tmpdir(), "weft-creds-"));
});
afterAll(async () => {
  for (const c of open) await c.close().catch(() => undefined);
  await t?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function enrolledAgent(name: string) {
  const stateDir = join(dir, name);
  await ensureStateDir(stateDir);
  const identity = await loadOrCreateNatsIdentity(stateDir);
  const key = (await t.client.createJoinKey({ reusable: false })).key;
  const body = { version: 1, joinKey: key, name, site: "site-a", wireguardPublicKey: generateKeyPair().publicKey, natsPublicKey: identity.publicKey, listenPort: 51820, endpoints: { private: "10.0.0.7:51820" } };
  const raw = await t.client.raw("POST", "/v1/enroll", JSON.stringify(body));
  expect(raw.status, raw.text).toBe(201);
  const res = EnrollResponse.parse(raw.body);
  const state = await StateHolder.create(stateDir, {
    version: 1,
    nodeId: res.nodeId,
    name,
    site: "site-a",
    overlayAddress: res.overlayAddress,
    overlayCidr: res.overlayCidr,
    controllerUrl: t.running.apiUrl,
    nats: res.nats,
    heartbeatSeconds: res.heartbeatSeconds,
    enrolledAt: new Date().toISOString(),
  });
  return { stateDir, identity, state, res };
}

describe("NATS credentials", () => {
  it("credentials - renewAt is half-way through the JWT's life; a JWT without expiry renews now", () => {
    const jwt = (claims: object) => `e30.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.sig`;
    expect(renewAt(jwt({ iat: 1000, exp: 1000 + 86_400 }), 0), "24 h JWT").toBe((1000 + 43_200) * 1000);
    expect(renewAt(jwt({ iat: 1000 }), 5), "no expiry").toBe(5);
    expect(jwtTimes("garbage"), "not a JWT").toBeUndefined();
  });

  it("credentials - the agent refuses a plaintext NATS URL and connects over TLS with the CA it was given", async () => {
    const a = await enrolledAgent("creds-tls");
    expect(a.res.nats.servers.every((u) => u.startsWith("tls://")), `servers handed out: ${a.res.nats.servers.join(", ")}`).toBe(true);
    const plain = { ...a.state.current, nats: { ...a.state.current.nats, servers: a.res.nats.servers.map((u) => u.replace("tls://", "nats://")) } };
    await expect(natsTransport(plain, a.stateDir), "a nats:// URL").rejects.toThrow(/plaintext NATS URL/);
    const transport = await natsTransport(a.state.current, a.stateDir);
    const nc = await connectNats(a.state.current, a.identity, transport, () => a.state.current.nats.userJwt, log);
    open.push(nc);
    expect(nc.info?.tls_required, "server requires TLS").toBe(true);
  });

  it("credentials - renewal gives a fresh JWT for the same key, stored, and the connection runs on it; a deleted node is refused", async () => {
    const a = await enrolledAgent("creds-renew");
    const first = a.state.current.nats.userJwt;
    let current = first;
    const nc = await connectNats(a.state.current, a.identity, await natsTransport(a.state.current, a.stateDir), () => current, log);
    open.push(nc);
    await new Promise((r) => setTimeout(r, 1100)); // a new iat
    const renewer = new CredentialRenewer({ nc, state: a.state, log, onRenewed: (jwt) => (current = jwt) });
    const renewed = await renewer.renew();
    expect(renewed, "a new JWT").not.toBe(first);
    const decode = (jwt: string) => JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString("utf8")) as { sub: string; iat: number; exp: number };
    expect(decode(renewed).sub, "for the same nkey").toBe(a.identity.publicKey);
    expect(decode(renewed).iat, "issued later").toBeGreaterThan(decode(first).iat);
    expect((await StateHolder.load(a.stateDir))?.current.nats.userJwt, "stored in state.json").toBe(renewed);
    // The connection is back (on the new JWT) and the controller still answers the node.
    const reply = await nc.request(Subjects.credentials(a.res.nodeId), JSON.stringify({ version: 1 }), { timeout: 5000 });
    expect((reply.json() as { ok: boolean }).ok, "a request after the reconnect").toBe(true);

    const garbage = await nc.request(Subjects.credentials(a.res.nodeId), "{nope", { timeout: 5000 });
    expect((garbage.json() as { ok: boolean; error?: { code: string } }).error?.code, "a malformed request").toBe("invalid_request");

    await t.client.deleteNode(a.res.nodeId);
    await expect(renewer.renew(), "renewal after the node was deleted").rejects.toThrow();
  });
});

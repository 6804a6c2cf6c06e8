/**
 * Revoking an agent's credential against a real nats-server (127.0.0.1, random
 * port, temp state dir, `full` resolver): the server closes the live connection,
 * refuses the JWT afterwards, leaves other agents alone, and keeps the revocation
 * across an authority reload and a server restart.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decode, type Account } from "@nats-io/jwt";
import { Kvm } from "@nats-io/kv";
import { createUser } from "@nats-io/nkeys";
import { connect, jwtAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { Buckets, Subjects } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NatsAccess, pushAccountClaims } from "./access.js";
import { Authority } from "./authority.js";
import { loadAuthority, loadOrCreateAuthority } from "./authority-file.js";
import { claimsUpdateSubject, SYSTEM_USER_INBOX_PREFIX } from "./jwts.js";
import { connectController, ensureBuckets } from "./connect.js";
import { startEmbeddedNats, type EmbeddedNats } from "./embedded.js";
import { ClaimsUpdateRejectedError, ClaimsUpdateUnavailableError } from "./errors.js";
import { until } from "../testing.js";

const revokedId = "n-00000000000000a1";
const otherId = "n-00000000000000b2";
const foreverId = "n-00000000000000c3";
const reenrollId = "n-00000000000000d4";

let stateDir: string;
let authDir: string;
let authority: Authority;
let srv: EmbeddedNats;
let nc: NatsConnection;
let access: NatsAccess;
const open: NatsConnection[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

interface Agent {
  nc: NatsConnection;
  key: string;
  jwt: string;
  seed: Uint8Array;
  /** Status events, errors with their message. */
  statuses: string[];
  /** Resolves when the client's connection is closed for good, with the time and the error. */
  closed: Promise<{ at: number; err: Error | void }>;
}

interface AgentOptions {
  /** Reconnect forever, like the real agent; default: no reconnect. */
  forever?: boolean;
  creds?: { key: string; jwt: string; seed: Uint8Array };
  url?: string;
  issuer?: Authority;
}

async function connectAgent(id: string, opts: AgentOptions = {}): Promise<Agent> {
  let creds = opts.creds;
  if (creds === undefined) {
    const kp = createUser(); // generated "on the agent's host"
    const jwt = await (opts.issuer ?? authority).issueAgentUser({ nodeId: id, userPublicKey: kp.getPublicKey() });
    creds = { key: kp.getPublicKey(), jwt, seed: kp.getSeed() };
  }
  const anc = await connect({
    servers: opts.url ?? srv.url,
    authenticator: jwtAuthenticator(creds.jwt, creds.seed),
    inboxPrefix: Subjects.inboxPrefix(id),
    ...(opts.forever ? { maxReconnectAttempts: -1, reconnectTimeWait: 200 } : { reconnect: false }),
  });
  open.push(anc);
  const statuses: string[] = [];
  void (async () => {
    for await (const s of anc.status()) statuses.push(s.type === "error" ? `error: ${s.error.message}` : s.type);
  })();
  const closed = anc.closed().then((err) => ({ at: Date.now(), err }));
  return { nc: anc, key: creds.key, jwt: creds.jwt, seed: creds.seed, statuses, closed };
}

/** A fresh connect with the same credentials; resolves with the error, or "connected". */
async function reconnectError(a: { jwt: string; seed: Uint8Array }, id: string, url = srv.url): Promise<unknown> {
  try {
    const c = await connect({ servers: url, authenticator: jwtAuthenticator(a.jwt, a.seed), inboxPrefix: Subjects.inboxPrefix(id), reconnect: false });
    await c.close();
    return "connected";
  } catch (err) {
    return err;
  }
}

interface Seen {
  key: string;
  string(): string;
}

/** Follows weft-peers the way agents do: the republish subject, then a batched direct get of the stream; returns what it saw so far. */
async function watchPeers(conn: NatsConnection, id: string): Promise<Seen[]> {
  const seen: Seen[] = [];
  const keyOf = (subject: string) => subject.split(".").at(-1) ?? "";
  conn.subscribe(Subjects.allPeerUpdates, {
    callback: (_e, m) => {
      seen.push({ key: keyOf(m.subject), string: () => m.string() });
    },
  });
  await conn.flush();
  const inbox = `${Subjects.inboxPrefix(id)}.snapshot`;
  const sub = conn.subscribe(inbox, {
    callback: (_e, m) => {
      if (m.headers && m.headers.code >= 204) sub.unsubscribe();
      else seen.push({ key: keyOf(m.headers?.get("Nats-Subject") ?? ""), string: () => m.string() });
    },
  });
  conn.publish(`$JS.API.DIRECT.GET.KV_${Buckets.peers}`, JSON.stringify({ seq: 1, batch: 100 }), { reply: inbox });
  return seen;
}


function within<T>(p: Promise<T>, ms: number): Promise<T | "timeout"> {
  return Promise.race([p, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), ms))]);
}

function accountRevocations(jwt: string): Record<string, number> {
  return decode<Account>(jwt).nats.revocations ?? {};
}

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "weft-nats-revoke-"));
  authDir = join(stateDir, "authority");
  authority = await loadOrCreateAuthority(authDir);
  srv = await startEmbeddedNats({ stateDir, port: 0, authority });
  nc = await connectController({ servers: srv.url, authority });
  await ensureBuckets(nc);
  access = await NatsAccess.connect({ servers: srv.url, authority, timeoutMs: 2000 });
});

afterAll(async () => {
  for (const c of open) await c.close().catch(() => {});
  for (const fn of cleanups.reverse()) await fn().catch(() => {});
  await access?.close();
  await nc?.close().catch(() => {});
  await srv?.stop();
  await rm(stateDir, { recursive: true, force: true });
});

describe("nats revocation", () => {
  let revoked: Agent;
  let other: Agent;

  it("nats revocation - the server closes a revoked agent's watching connection and refuses its JWT; another agent is unaffected", async () => {
    const peers = await new Kvm(nc).open(Buckets.peers);
    await peers.put(otherId, "v1");
    revoked = await connectAgent(revokedId);
    other = await connectAgent(otherId);
    const revokedSeen = await watchPeers(revoked.nc, revokedId);
    const otherSeen = await watchPeers(other.nc, otherId);
    const watching = await until(() => revokedSeen.length > 0 && otherSeen.length > 0, 3000);
    expect(watching, "both agents: want the weft-peers snapshot before revoking").toBe(true);

    const start = Date.now();
    const result = await access.revokeAgent(revoked.key);
    expect(result.status, `revokeAgent: got ${JSON.stringify(result)}, want applied`).toBe("applied");
    expect(result.revocation.userPublicKey, "revocation key").toBe(revoked.key);

    const closed = await within(revoked.closed, 2000);
    expect(closed, "revoked agent: connection still open 2 s after revokeAgent, want it closed by the server").not.toBe("timeout");
    const { at, err } = closed as { at: number; err: Error | void };
    expect(String(err), `revoked agent closed with ${String(err)}, want the server's revocation error`).toMatch(/Authentication Revoked/i);
    expect(at - start, `revoked agent closed after ${at - start} ms, want < 2000`).toBeLessThan(2000);

    const connz = (await (await fetch(`${srv.monitorUrl}/connz?auth=1`)).json()) as { connections: { authorized_user?: string }[] };
    const users = connz.connections.map((c) => c.authorized_user);
    expect(users.includes(revoked.key), `server connz: got users ${JSON.stringify(users)}, want no ${revoked.key}`).toBe(false);
    expect(users.includes(other.key), `server connz: want the other agent ${other.key} still connected`).toBe(true);

    const again = await reconnectError(revoked, revokedId);
    expect(String(again), `fresh connect with the revoked JWT: got ${String(again)}, want an authorization error`).toMatch(/Authorization/i);

    expect(other.nc.isClosed(), "other agent: connection closed").toBe(false);
    await peers.put(otherId, "v2");
    const updated = await until(() => otherSeen.some((e) => e.key === otherId && e.string() === "v2"), 3000);
    expect(updated, `other agent's watch: got ${JSON.stringify(otherSeen.map((e) => `${e.key}=${e.string()}`))}, want ${otherId}=v2`).toBe(true);
    expect(other.statuses.filter((s) => s.startsWith("error") || s === "disconnect"), "other agent: status errors").toEqual([]);

    // The full resolver stored the pushed JWT in <stateDir>/nats/jwt.
    const stored = await readFile(join(stateDir, "nats", "jwt", `${authority.accountPublicKey}.jwt`), "utf8");
    expect(accountRevocations(stored.trim())[revoked.key], "revocation in the resolver's stored account JWT").toBeDefined();
  });

  it("nats revocation - an agent that reconnects forever ends closed as well", async () => {
    const agent = await connectAgent(foreverId, { forever: true });
    const start = Date.now();
    const result = await access.revokeAgent(agent.key);
    expect(result.status, "revokeAgent").toBe("applied");
    const closed = await within(agent.closed, 3000);
    expect(closed, `reconnecting agent: still open 3 s after revokeAgent (statuses ${agent.statuses.join(", ")}), want closed`).not.toBe(
      "timeout",
    );
    expect(agent.statuses.some((s) => /Authentication Revoked/i.test(s)), `statuses: got ${agent.statuses.join(", ")}, want the revocation error`).toBe(
      true,
    );
    expect((closed as { at: number }).at - start, "closed within").toBeLessThan(3000);
  });

  it("nats revocation - a host that re-enrolls with its revoked key gets a JWT that works; the old one stays refused", async () => {
    const first = await connectAgent(reenrollId);
    await access.revokeAgent(first.key);
    await first.closed;
    // Same key, new JWT (what enrollment does): issued after the revocation second.
    const jwt = await authority.issueAgentUser({ nodeId: reenrollId, userPublicKey: first.key });
    const iat = decode(jwt).iat;
    const revokedAt = (authority.revokedAt(first.key)?.getTime() ?? 0) / 1000;
    expect(iat > revokedAt, `new JWT iat ${iat}, want > revocation ${revokedAt}`).toBe(true);
    const renewed = await reconnectError({ jwt, seed: first.seed }, reenrollId);
    expect(renewed, `new JWT for the revoked key: got ${String(renewed)}, want connected`).toBe("connected");
    const old = await reconnectError(first, reenrollId);
    expect(String(old), `old JWT: got ${String(old)}, want an authorization error`).toMatch(/Authorization/i);
  });

  it("nats revocation - a push through a user without permission, or answered with an error, is rejected", async () => {
    // The system user may only push this authority's account.
    const sysUser = await authority.issueSystemUser();
    const sys = await connect({ servers: srv.url, authenticator: jwtAuthenticator(sysUser.jwt, sysUser.seed()), inboxPrefix: SYSTEM_USER_INBOX_PREFIX });
    open.push(sys);
    const stranger = await Authority.generate();
    const denied = await pushAccountClaims(sys, stranger, { timeoutMs: 2000 }).then(
      () => "accepted",
      (e: unknown) => e,
    );
    expect(denied, `push of another account: got ${String(denied)}, want ClaimsUpdateRejectedError`).toBeInstanceOf(ClaimsUpdateRejectedError);
    expect(String(denied), "message names the permission").toMatch(/may not publish/);

    // A responder that answers like a server refusing the JWT (inside the WEFT account).
    const fake = nc.subscribe(claimsUpdateSubject(authority.accountPublicKey), {
      callback: (_err, m) => void m.respond(JSON.stringify({ error: { account: "x", code: 500, description: "jwt update resulted in error - test" } })),
    });
    await nc.flush();
    const refused = await pushAccountClaims(nc, authority, { timeoutMs: 2000 }).then(
      () => "accepted",
      (e: unknown) => e,
    );
    fake.unsubscribe();
    expect(refused, `error reply: got ${String(refused)}, want ClaimsUpdateRejectedError`).toBeInstanceOf(ClaimsUpdateRejectedError);
    expect((refused as ClaimsUpdateRejectedError).retryable, "retryable").toBe(false);
    expect(String(refused), "message carries the server's description").toMatch(/resulted in error - test \(code 500\)/);
  });

  it("nats revocation - revocations survive an authority reload and a server restart", async () => {
    const port = srv.port;
    await access.close();
    await nc.close();
    await other.nc.close();
    await srv.stop();

    const reloaded = await loadAuthority(authDir);
    expect(reloaded.revokedAt(revoked.key), "reloaded authority: revocation of the deleted agent").toBeDefined();
    expect(accountRevocations(reloaded.accountJwt)[revoked.key], "reloaded, re-signed account JWT carries the revocation").toBeDefined();
    authority = reloaded;

    srv = await startEmbeddedNats({ stateDir, port, authority });
    nc = await connectController({ servers: srv.url, authority });
    access = await NatsAccess.connect({ servers: srv.url, authority, timeoutMs: 2000 });

    const refused = await reconnectError(revoked, revokedId);
    expect(String(refused), `revoked JWT after restart: got ${String(refused)}, want an authorization error`).toMatch(/Authorization/i);
    const ok = await connectAgent(otherId, { creds: other });
    const seen = await watchPeers(ok.nc, otherId);
    expect(await until(() => seen.some((e) => e.key === otherId && e.string() === "v2"), 3000), "other agent reads weft-peers after restart").toBe(true);
  });

  it("nats revocation - a push no server takes is pending, then applied once the server is back", async () => {
    const dir = await mkdtemp(join(tmpdir(), "weft-nats-pending-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const controllerSide = await loadOrCreateAuthority(join(dir, "authority"));
    // The server keeps an authority loaded before the revocation: its preload lacks it,
    // so only the controller's push can apply it.
    const serverSide = await loadAuthority(join(dir, "authority"));
    let server = await startEmbeddedNats({ stateDir: dir, port: 0, authority: serverSide });
    cleanups.push(() => server.stop());
    const acc = await NatsAccess.connect({ servers: server.url, authority: controllerSide, timeoutMs: 1000 });
    cleanups.push(() => acc.close());
    const agent = await connectAgent(revokedId, { forever: true, url: server.url, issuer: controllerSide });

    const port = server.port;
    await server.stop();
    const result = await acc.revokeAgent(agent.key);
    expect(result.status, `revokeAgent with the server down: got ${JSON.stringify(result.status)}, want pending`).toBe("pending");
    if (result.status === "pending") {
      expect(result.error, "pending error").toBeInstanceOf(ClaimsUpdateUnavailableError);
      expect(result.error.retryable, "retryable").toBe(true);
    }
    expect(controllerSide.revokedAt(agent.key), "recorded although not pushed").toBeDefined();

    server = await startEmbeddedNats({ stateDir: dir, port, authority: serverSide });
    const closed = await within(agent.closed, 10_000);
    expect(closed, `agent: still open 10 s after the server came back (statuses ${agent.statuses.join(", ")}), want closed`).not.toBe("timeout");
    expect(
      agent.statuses.some((st) => /Authentication Revoked|Authorization Violation/i.test(st)),
      `agent statuses: got ${agent.statuses.join(", ")}, want a revocation or authorization error`,
    ).toBe(true);
    const refused = await reconnectError(agent, revokedId, server.url);
    expect(String(refused), `revoked JWT: got ${String(refused)}, want an authorization error`).toMatch(/Authorization/i);
  });
});

/**
 * Against a real nats-server (127.0.0.1, random port, temp state dir): JWT auth,
 * the agent permission template, and restarts.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { createUser } from "@nats-io/nkeys";
import {
  connect,
  jwtAuthenticator,
  PermissionViolationError,
  type Msg,
  type NatsConnection,
} from "@nats-io/transport-node";
import { Buckets, Subjects } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Authority } from "./authority.js";
import { AGENT_LIMITS } from "./jwts.js";
import { loadAuthority, loadOrCreateAuthority } from "./authority-file.js";
import { connectController, ensureBuckets } from "./connect.js";
import { startEmbeddedNats, type EmbeddedNats, type NatsServerExit } from "./embedded.js";
import { findNatsServer } from "./binary.js";
import { NatsServerNotFoundError, NatsServerVersionError } from "./errors.js";
import { until } from "../testing.js";

const nodeId = "n-0123456789abcdef";
const otherId = "n-fedcba9876543210";
const enc = new TextEncoder();

let stateDir: string;
let authDir: string;
let authority: Authority;
let srv: EmbeddedNats;
let nc: NatsConnection;
const open: NatsConnection[] = [];

interface Agent {
  nc: NatsConnection;
  jwt: string;
  seed: Uint8Array;
  /** Errors the server reported on this connection (permission violations). */
  errors: Error[];
}

async function connectAgent(id: string, creds?: { jwt: string; seed: Uint8Array }): Promise<Agent> {
  let jwt = creds?.jwt;
  let seed = creds?.seed;
  if (jwt === undefined || seed === undefined) {
    const kp = createUser(); // generated "on the agent's host": only the public key reaches the controller
    jwt = await authority.issueAgentUser({ nodeId: id, userPublicKey: kp.getPublicKey() });
    seed = kp.getSeed();
  }
  const anc = await connect({
    servers: srv.url,
    authenticator: jwtAuthenticator(jwt, seed),
    inboxPrefix: Subjects.inboxPrefix(id),
    maxReconnectAttempts: 0,
  });
  open.push(anc);
  const errors: Error[] = [];
  void (async () => {
    for await (const s of anc.status()) if (s.type === "error") errors.push(s.error);
  })();
  return { nc: anc, jwt, seed, errors };
}

/** Resolves with the first n messages on subject, or what arrived by the deadline. */
function collect(conn: NatsConnection, subject: string): { msgs: Msg[]; stop: () => void } {
  const msgs: Msg[] = [];
  const sub = conn.subscribe(subject, {
    callback: (_err, m) => {
      msgs.push(m);
    },
  });
  return { msgs, stop: () => sub.unsubscribe() };
}


/** One batched direct get of the peers stream from `seq`, replies on the agent's inbox, until the end-of-batch status. */
async function directBatch(conn: NatsConnection, id: string, seq: number): Promise<Msg[]> {
  const inbox = `${Subjects.inboxPrefix(id)}.batch`;
  const msgs: Msg[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no end of batch")), 3000);
    const sub = conn.subscribe(inbox, {
      callback: (_err, m) => {
        if (m.headers && m.headers.code >= 204) {
          clearTimeout(timer);
          sub.unsubscribe();
          resolve();
        } else msgs.push(m);
      },
    });
    conn.publish(`$JS.API.DIRECT.GET.KV_${Buckets.peers}`, JSON.stringify({ seq, batch: 100 }), { reply: inbox });
  });
  return msgs;
}

/** Consumers on every stream of the account. */
async function consumerCount(jsm: JetStreamManager): Promise<number> {
  let n = 0;
  for await (const si of jsm.streams.list()) n += si.state.consumer_count;
  return n;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

/** Requests wrap the server's violation in a RequestError; find it in the cause chain. */
function permissionViolation(err: unknown): PermissionViolationError | undefined {
  for (let e = err; e instanceof Error; e = e.cause) if (e instanceof PermissionViolationError) return e;
  return undefined;
}

function expectPermissionError(err: unknown, what: string, subjectPart: string): void {
  const pv = permissionViolation(err);
  expect(pv, `${what}: got ${String(err)}, want a PermissionViolationError`).toBeInstanceOf(PermissionViolationError);
  const subject = pv?.subject ?? "";
  expect(subject.includes(subjectPart), `${what}: violation on ${subject}, want one on …${subjectPart}…`).toBe(true);
}

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "weft-nats-"));
  authDir = join(stateDir, "authority");
  authority = await loadOrCreateAuthority(authDir);
  srv = await startEmbeddedNats({ stateDir, port: 0, authority });
  nc = await connectController({ servers: srv.url, authority });
  await ensureBuckets(nc);
});

afterAll(async () => {
  for (const c of open) await c.close().catch(() => {});
  await nc?.close().catch(() => {});
  await srv?.stop();
  await rm(stateDir, { recursive: true, force: true });
});

describe("nats server", () => {
  it("nats - anonymous connection is refused", async () => {
    const err = await rejection(connect({ servers: srv.url, maxReconnectAttempts: 0, reconnect: false }));
    expect(String(err), `anonymous connect: got ${String(err)}, want an authorization error`).toMatch(/Authorization/i);
  });

  it("nats - a user signed by another authority is refused", async () => {
    const stranger = await Authority.generate();
    const user = await stranger.issueControllerUser();
    const err = await rejection(
      connect({ servers: srv.url, authenticator: jwtAuthenticator(user.jwt, user.seed()), maxReconnectAttempts: 0, reconnect: false }),
    );
    expect(String(err), `foreign user: got ${String(err)}, want an authorization error`).toMatch(/Authorization/i);
  });

  it("nats - controller creates buckets idempotently and writes weft-peers", async () => {
    const created = await ensureBuckets(nc);
    expect(created, `second ensureBuckets: got ${JSON.stringify(created)}, want nothing created`).toEqual([]);
    const peers = await new Kvm(nc).open(Buckets.peers);
    const rev = await peers.put(nodeId, '{"v":1}');
    const got = await peers.get(nodeId);
    expect(got?.string(), `weft-peers ${nodeId}: got ${got?.string()}, want {"v":1}`).toBe('{"v":1}');
    expect(got?.revision, "revision").toBe(rev);
  });

  it("nats - the buckets agents read one key of republish each write with its revision; an existing bucket without (an earlier release's) gets it", async () => {
    const jsm = await jetstreamManager(nc);
    const stream = `KV_${Buckets.nodePaths}`;
    const { republish: _had, ...without } = (await jsm.streams.info(stream)).config;
    // nats.js merges an update into the current config, so the raw request is what drops a field.
    const answer = await nc.request(`$JS.API.STREAM.UPDATE.${stream}`, JSON.stringify(without));
    expect(answer.json<{ error?: unknown }>().error, "stream update answered").toBeUndefined();
    expect((await jsm.streams.info(stream)).config.republish, "republish removed, as a bucket an earlier release created").toBeUndefined();
    expect(await ensureBuckets(nc), "nothing created").toEqual([]);
    for (const bucket of [Buckets.nodePolicies, Buckets.nodeServices, Buckets.nodePaths, Buckets.trustBundle]) {
      const config = (await jsm.streams.info(`KV_${bucket}`)).config;
      expect(config.republish, `${bucket}'s republish`).toMatchObject({ src: `$KV.${bucket}.>`, dest: Subjects.allKeyUpdates(bucket) });
    }
    const live = collect(nc, Subjects.keyUpdates(Buckets.nodePaths, nodeId));
    await nc.flush();
    const rev = await (await new Kvm(nc).open(Buckets.nodePaths)).put(nodeId, "plan");
    expect(await until(() => live.msgs.length > 0, 3000), "republished write").toBe(true);
    live.stop();
    expect(Number(live.msgs[0]?.headers?.get("Nats-Sequence")), "with its revision").toBe(rev);
    expect(live.msgs[0]?.string(), "and its value").toBe("plan");
  });

  it("nats - agent heartbeat reaches the controller's wildcard subscriber", async () => {
    const hb = collect(nc, Subjects.allHeartbeats);
    await nc.flush();
    const agent = await connectAgent(nodeId);
    agent.nc.publish(Subjects.heartbeat(nodeId), enc.encode('{"nodeId":"' + nodeId + '"}'));
    await agent.nc.flush();
    const ok = await until(() => hb.msgs.length > 0, 2000);
    hb.stop();
    expect(ok, "controller: got no heartbeat, want one").toBe(true);
    expect(hb.msgs[0]?.subject, "heartbeat subject").toBe(Subjects.heartbeat(nodeId));
    expect(agent.errors, `agent errors: got ${agent.errors.map(String).join("; ")}, want none`).toEqual([]);
  });

  it("nats - agent reads weft-peers with a batched direct get and follows the republish subject, with no consumer", async () => {
    const peers = await new Kvm(nc).open(Buckets.peers);
    await peers.put(otherId, "other-v1");
    const agent = await connectAgent(nodeId);
    const live = collect(agent.nc, Subjects.allPeerUpdates);
    await agent.nc.flush();
    const page = await directBatch(agent.nc, nodeId, 1);
    expect(page.some((m) => m.headers?.get("Nats-Subject") === `$KV.${Buckets.peers}.${otherId}`), "snapshot holds the record").toBe(true);
    const rev = await peers.put(otherId, "other-v2");
    expect(await until(() => live.msgs.length > 0, 3000), "republished write reaches the agent").toBe(true);
    live.stop();
    expect(live.msgs[0]?.subject, "republish subject").toBe(Subjects.peerUpdates(otherId));
    expect(Number(live.msgs[0]?.headers?.get("Nats-Sequence")), "republished with the stream sequence").toBe(rev);
    expect(live.msgs[0]?.string(), "republished value").toBe("other-v2");
    expect(agent.errors.map(String), "agent errors").toEqual([]);
  });

  it("nats - an agent credential creates no consumer: durable, ephemeral, or pushing into another agent's inbox", async () => {
    const jsm = await jetstreamManager(nc);
    const before = await consumerCount(jsm);
    const agent = await connectAgent(nodeId);
    const victim = await connectAgent(otherId);
    const stolen = collect(victim.nc, `${Subjects.inboxPrefix(otherId)}.>`);
    await victim.nc.flush();
    const stream = `KV_${Buckets.peers}`;
    const attempts: [string, string, object][] = [
      ["durable", `$JS.API.CONSUMER.CREATE.${stream}.evil.$KV.${Buckets.peers}.>`, { stream_name: stream, config: { durable_name: "evil", name: "evil", ack_policy: "none" } }],
      ["legacy durable", `$JS.API.CONSUMER.DURABLE.CREATE.${stream}.evil2`, { stream_name: stream, config: { durable_name: "evil2", ack_policy: "none" } }],
      ["ephemeral", `$JS.API.CONSUMER.CREATE.${stream}`, { stream_name: stream, config: { ack_policy: "none", inactive_threshold: 5e9 } }],
      ["push into another inbox", `$JS.API.CONSUMER.CREATE.${stream}`, { stream_name: stream, config: { ack_policy: "none", deliver_subject: `${Subjects.inboxPrefix(otherId)}.steal` } }],
      ["another bucket", `$JS.API.CONSUMER.CREATE.KV_${Buckets.nodes}`, { stream_name: `KV_${Buckets.nodes}`, config: { ack_policy: "none" } }],
    ];
    for (const [what, subject, body] of attempts) {
      const err = await rejection(agent.nc.request(subject, JSON.stringify(body), { timeout: 2000 }));
      expectPermissionError(err, `agent creates a ${what} consumer`, "$JS.API.CONSUMER");
    }
    for (let i = 0; i < 300; i++) agent.nc.publish(`$JS.API.CONSUMER.CREATE.${stream}.d${i}.$KV.${Buckets.peers}.>`, JSON.stringify({ stream_name: stream, config: { durable_name: `d${i}`, ack_policy: "none" } }));
    await agent.nc.flush().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    stolen.stop();
    expect(await consumerCount(jsm), "consumers after 305 attempts by an agent").toBe(before);
    expect(stolen.msgs.length, "messages pushed into the other agent's inbox").toBe(0);
  });

  it("nats - agent JWTs carry limits and an expiry; past the subscription limit the server refuses", async () => {
    const kp = createUser();
    const jwt = await authority.issueAgentUser({ nodeId, userPublicKey: kp.getPublicKey() });
    const claims = JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString("utf8")) as { exp?: number; iat: number; nats: { subs: number; payload: number; data: number } };
    expect({ subs: claims.nats.subs, payload: claims.nats.payload, data: claims.nats.data }, "limits in the JWT").toEqual({ ...AGENT_LIMITS });
    expect((claims.exp ?? 0) - claims.iat, "lifetime in seconds").toBe(authority.agentCredentialLifetimeSeconds);
    const agent = await connectAgent(nodeId, { jwt, seed: kp.getSeed() });
    const subs = Array.from({ length: AGENT_LIMITS.subs + 5 }, (_, i) => agent.nc.subscribe(`${Subjects.inboxPrefix(nodeId)}.s${i}`));
    await agent.nc.flush().catch(() => undefined);
    await until(() => agent.errors.length > 0, 2000);
    expect(agent.errors.map(String).join("; "), "server refused subscriptions past the limit").toMatch(/maximum subscriptions/i);
    for (const s of subs) s.unsubscribe();
  });

  it("nats - a payload over the agent limit is refused", async () => {
    const agent = await connectAgent(nodeId);
    const hb = collect(nc, Subjects.allHeartbeats);
    await nc.flush();
    const err = await rejection((async () => {
      agent.nc.publish(Subjects.heartbeat(nodeId), new Uint8Array(AGENT_LIMITS.payload + 1));
      await agent.nc.flush();
    })());
    await new Promise((r) => setTimeout(r, 300));
    hb.stop();
    expect(hb.msgs.length, `oversized heartbeats delivered (publish error: ${String(err)})`).toBe(0);
  });

  it("nats - an expired agent credential is disconnected and cannot connect again", async () => {
    const kp = createUser();
    const jwt = await authority.issueAgentUser({ nodeId, userPublicKey: kp.getPublicKey(), expiresAt: new Date(Date.now() + 2500) });
    const anc = await connect({ servers: srv.url, authenticator: jwtAuthenticator(jwt, kp.getSeed()), inboxPrefix: Subjects.inboxPrefix(nodeId), maxReconnectAttempts: 2, reconnectTimeWait: 200 });
    open.push(anc);
    const seen: string[] = [];
    void (async () => {
      for await (const st of anc.status()) if (st.type === "error" || st.type === "disconnect") seen.push(String((st as { error?: unknown }).error ?? st.type));
    })();
    const closed = await Promise.race([anc.closed().then((e) => e ?? new Error("closed")), new Promise((r) => setTimeout(() => r("still open"), 8000))]);
    // The server's expiry error comes first; the reconnects that follow may end on another error.
    expect([String(closed), ...seen].join(" | "), "connection after expiry").toMatch(/expired|authori/i);
    expect(String(closed), "the connection closed").not.toBe("still open");
    // The server compares exp in whole seconds: a connect within the second of exp could pass.
    await new Promise((r) => setTimeout(r, 1100));
    const again = await rejection(connect({ servers: srv.url, authenticator: jwtAuthenticator(jwt, kp.getSeed()), maxReconnectAttempts: 0, reconnect: false }));
    expect(String(again), "a new connection with the expired JWT").toMatch(/expired|authori/i);
  });

  it("nats - agent cannot publish on another node's subjects", async () => {
    const hb = collect(nc, Subjects.allHeartbeats);
    await nc.flush();
    const agent = await connectAgent(nodeId);
    agent.nc.publish(Subjects.heartbeat(otherId), enc.encode("spoofed"));
    // Barrier: its own heartbeat follows on the same connection, so once that arrives
    // the spoofed one would have arrived before it.
    agent.nc.publish(Subjects.heartbeat(nodeId), enc.encode("own"));
    await agent.nc.flush();
    await until(() => hb.msgs.length > 0 && agent.errors.length > 0, 2000);
    hb.stop();
    const subjects = hb.msgs.map((m) => m.subject);
    expect(subjects, `controller received: got ${JSON.stringify(subjects)}, want only the agent's own heartbeat`).toEqual([
      Subjects.heartbeat(nodeId),
    ]);
    expectPermissionError(agent.errors[0], "agent status", Subjects.heartbeat(otherId));
  });

  it("nats - agent cannot put or delete keys in weft-peers", async () => {
    const peers = await new Kvm(nc).open(Buckets.peers);
    await peers.put(otherId, "controller-value");
    const agent = await connectAgent(nodeId);
    const kv = await new Kvm(jetstream(agent.nc, { timeout: 2000 })).open(Buckets.peers);
    expectPermissionError(await rejection(kv.put(otherId, "hijacked")), "agent put", `$KV.${Buckets.peers}.${otherId}`);
    expectPermissionError(await rejection(kv.put(nodeId, "self-written")), "agent put own key", `$KV.${Buckets.peers}.${nodeId}`);
    expectPermissionError(await rejection(kv.delete(otherId)), "agent delete", `$KV.${Buckets.peers}.${otherId}`);
    const got = await peers.get(otherId);
    expect(got?.string(), `weft-peers ${otherId} after agent writes: got ${got?.string()} (${got?.operation}), want controller-value`).toBe(
      "controller-value",
    );
  });

  it("nats - agent cannot read weft-nodes or weft-keys", async () => {
    const kvm = new Kvm(nc);
    await (await kvm.open(Buckets.nodes)).put(nodeId, "node-record");
    await (await kvm.open(Buckets.keys)).put("k1", "hashed-key");
    expect((await (await kvm.open(Buckets.nodes)).get(nodeId))?.string(), "controller reads weft-nodes").toBe("node-record");

    const agent = await connectAgent(nodeId);
    const akvm = new Kvm(jetstream(agent.nc, { timeout: 2000 }));
    for (const [bucket, key] of [
      [Buckets.nodes, nodeId],
      [Buckets.keys, "k1"],
    ] as const) {
      const kv = await akvm.open(bucket); // binds without a server round trip
      expectPermissionError(await rejection(kv.get(key)), `agent get ${bucket}`, `KV_${bucket}`);
      expectPermissionError(await rejection(kv.watch()), `agent watch ${bucket}`, `KV_${bucket}`);
      expectPermissionError(await rejection(akvm.create(bucket)), `agent open-with-check ${bucket}`, "$JS.API");
      const direct = await rejection(
        agent.nc.request(`$JS.API.DIRECT.GET.KV_${bucket}.$KV.${bucket}.${key}`, undefined, { timeout: 2000 }),
      );
      expectPermissionError(direct, `agent direct get ${bucket}`, `KV_${bucket}`);
    }
  });

  it("nats - agent cannot subscribe to weft.>", async () => {
    const agent = await connectAgent(nodeId);
    const got: Msg[] = [];
    const sub = agent.nc.subscribe("weft.>", {
      callback: (err, m) => {
        if (!err) got.push(m);
      },
    });
    const closed = await Promise.race([sub.closed, new Promise((r) => setTimeout(() => r("still open"), 2000))]);
    expectPermissionError(closed, "subscription weft.> closed with", "weft.>");
    nc.publish(Subjects.heartbeat(otherId), enc.encode("not for agents"));
    await nc.flush();
    await agent.nc.flush();
    expect(got.length, `agent received ${got.length} messages on weft.>, want 0`).toBe(0);
    // And the server never registered it.
    const connz = (await (await fetch(`${srv.monitorUrl}/connz?subs=1&cid=${agent.nc.info?.client_id}`)).json()) as {
      connections: { subscriptions_list?: string[] }[];
    };
    const subs = connz.connections[0]?.subscriptions_list ?? [];
    expect(subs.includes("weft.>"), `server-side subscriptions: got ${JSON.stringify(subs)}, want no weft.>`).toBe(false);
  });

  it("nats - after a restart with the reloaded authority, old agent JWTs connect and KV data survives", async () => {
    const peers = await new Kvm(nc).open(Buckets.peers);
    await peers.put("survivor", "still-here");
    const before = await connectAgent(nodeId);
    await before.nc.close();

    const port = srv.port;
    await nc.close();
    await srv.stop();
    const reloaded = await loadAuthority(authDir);
    expect(reloaded.operatorPublicKey, "operator after reload").toBe(authority.operatorPublicKey);
    expect(reloaded.accountPublicKey, "account after reload").toBe(authority.accountPublicKey);
    authority = reloaded;
    srv = await startEmbeddedNats({ stateDir, port, authority });
    nc = await connectController({ servers: srv.url, authority });

    const again = await connectAgent(nodeId, { jwt: before.jwt, seed: before.seed });
    expect(again.nc.isClosed(), "agent with pre-restart JWT: connection closed").toBe(false);
    const got = (await directBatch(again.nc, nodeId, 1)).find((m) => m.headers?.get("Nats-Subject") === `$KV.${Buckets.peers}.survivor`);
    expect(got?.string(), `weft-peers survivor after restart: got ${got?.string()}, want still-here`).toBe("still-here");
  });

  it("nats - an unexpected server exit is reported with its code and output", async () => {
    const dir = await mkdtemp(join(tmpdir(), "weft-nats-crash-"));
    try {
      let reported: NatsServerExit | undefined;
      const crash = await startEmbeddedNats({ stateDir: dir, port: 0, authority, onUnexpectedExit: (e) => (reported = e) });
      process.kill(crash.pid, "SIGKILL");
      await crash.exited;
      await until(() => reported !== undefined, 1000);
      expect(reported?.signal, `reported exit: got ${JSON.stringify(reported)}, want signal SIGKILL`).toBe("SIGKILL");
      expect((reported?.stderrTail.length ?? 0) > 0, "reported exit: want the server's last lines").toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("nats - a server left running in the same state dir is stopped before a new start", async () => {
    const dir = await mkdtemp(join(tmpdir(), "weft-nats-stale-"));
    try {
      const stale = await startEmbeddedNats({ stateDir: dir, port: 0, authority }); // its controller "died" without stop()
      const fresh = await startEmbeddedNats({ stateDir: dir, port: 0, authority });
      const exit = await Promise.race([stale.exited, new Promise((r) => setTimeout(() => r("still running"), 2000))]);
      expect(exit, `stale server: got ${JSON.stringify(exit)}, want it stopped`).not.toBe("still running");
      const c = await connectController({ servers: fresh.url, authority });
      await c.close();
      await fresh.stop();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("nats - a missing nats-server binary gives NatsServerNotFoundError", async () => {
    const err = await rejection(startEmbeddedNats({ stateDir, port: 0, authority, binary: "/nonexistent/nats-server" }));
    expect(err, `got ${String(err)}, want NatsServerNotFoundError`).toBeInstanceOf(NatsServerNotFoundError);
    expect(String(err), "message tells what to do").toMatch(/scripts\/setup\.sh/);
  });

  it("nats - a nats-server older than 2.11 is refused with what to do", async () => {
    const dir = await mkdtemp(join(tmpdir(), "weft-old-nats-"));
    try {
      const old = join(dir, "nats-server");
      await writeFile(old, "#!/bin/sh\necho 'nats-server: v2.9.10'\n", { mode: 0o755 });
      const err = await rejection(findNatsServer(old));
      expect(err, `got ${String(err)}, want NatsServerVersionError`).toBeInstanceOf(NatsServerVersionError);
      expect(String(err), "message names the version and the fix").toMatch(/2\.9\.10.*2\.11 or newer.*scripts\/setup\.sh/);
      expect(await findNatsServer(), "the default resolution finds a current server").toMatch(/nats-server$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Against a real nats-server (127.0.0.1, random port, temp state dir): JWT auth,
 * the agent permission template, and restarts.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { Kvm, type KvWatchEntry } from "@nats-io/kv";
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
import { loadAuthority, loadOrCreateAuthority } from "./authority-file.js";
import { connectController, ensureBuckets } from "./connect.js";
import { startEmbeddedNats, type EmbeddedNats, type NatsServerExit } from "./embedded.js";
import { NatsServerNotFoundError } from "./errors.js";
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

  it("nats - agent watches weft-peers: snapshot, then a later update", async () => {
    const peers = await new Kvm(nc).open(Buckets.peers);
    await peers.put(otherId, "other-v1");
    const agent = await connectAgent(nodeId);
    const kv = await new Kvm(agent.nc).open(Buckets.peers);
    const w = await kv.watch();
    const seen: KvWatchEntry[] = [];
    void (async () => {
      for await (const e of w) seen.push(e);
    })();
    const snap = await until(() => seen.some((e) => e.key === otherId) && seen.some((e) => e.key === nodeId), 3000);
    expect(snap, `snapshot: got keys ${JSON.stringify(seen.map((e) => e.key))}, want ${nodeId} and ${otherId}`).toBe(true);
    // nats.js flags the *last* snapshot entry isUpdate=true already (i >= count after
    // incrementing); only the earlier ones are false.
    expect(seen[0]?.isUpdate, "first snapshot entry isUpdate").toBe(false);

    await peers.put(otherId, "other-v2");
    const upd = await until(() => seen.some((e) => e.key === otherId && e.string() === "other-v2"), 3000);
    expect(upd, `update: got ${JSON.stringify(seen.map((e) => `${e.key}=${e.string()}`))}, want ${otherId}=other-v2`).toBe(true);
    expect(seen.at(-1)?.isUpdate, "last entry isUpdate").toBe(true);

    const got = await kv.get(otherId);
    expect(got?.string(), `agent kv.get(${otherId}): got ${got?.string()}, want other-v2`).toBe("other-v2");
    w.stop();
    expect(agent.errors, `agent errors: got ${agent.errors.map(String).join("; ")}, want none`).toEqual([]);
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
    const kv = await new Kvm(again.nc).open(Buckets.peers);
    const got = await kv.get("survivor");
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
    expect(String(err), "message tells what to do").toMatch(/apt-get install nats-server/);
  });
});

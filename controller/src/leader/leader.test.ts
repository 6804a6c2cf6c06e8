/**
 * Leader election with real controllers on a real nats-server: two controllers share one store
 * (each reaches NATS through a TCP proxy the test can cut). Exactly one leads and runs the
 * singleton work (an inventory sync asked of the follower is forwarded to it); a stopping leader hands over at once; a leader cut off from the store (a
 * partition: nothing forwarded, connection left open) stops acting within its lease, and only then
 * does the other take over, within 10 s; never two leaders at once.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm, KvWatchInclude } from "@nats-io/kv";
import { Buckets, ControllerClient, generateKeyPair } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startController, type RunningController } from "../controller.js";
import { startNatsServers, startTcpProxy, type NatsServers, type TcpProxy } from "../testing-nats.js";
import { agentIdentity } from "../testing.js";
import { FORWARDED_BY_HEADER } from "./forward.js";
import { followerTick } from "./lease.js";

const silent = pino({ level: "silent" });

describe("leader - lease decisions (pure)", () => {
  const held = (revision: number, released = false) => ({ kind: "held" as const, record: { holder: "a", term: 3, renewedAt: "", ...(released ? { released } : {}) }, revision });
  it("leader - an absent or released lease is taken at once, a held one only after a whole lease unchanged", () => {
    expect(followerTick({ kind: "absent" }, undefined, 0, 6000), "absent").toEqual({ action: "take", term: 1, revision: undefined });
    expect(followerTick(held(7, true), undefined, 0, 6000), "released").toEqual({ action: "take", term: 4, revision: 7 });
    const first = followerTick(held(7), undefined, 1000, 6000);
    expect(first, "first sight of a held lease").toEqual({ action: "wait", observation: { revision: 7, since: 1000 } });
    expect(followerTick(held(7), { revision: 7, since: 1000 }, 6999, 6000).action, "5.999 s unchanged").toBe("wait");
    expect(followerTick(held(7), { revision: 7, since: 1000 }, 7000, 6000), "6 s unchanged").toEqual({ action: "take", term: 4, revision: 7 });
    expect(followerTick(held(8), { revision: 7, since: 1000 }, 9000, 6000), "renewed meanwhile").toEqual({ action: "wait", observation: { revision: 8, since: 9000 } });
  });
  it("leader - a controller whose own write is still the lease's last takes it back at once; another's write since makes it wait", () => {
    expect(followerTick(held(7), undefined, 0, 6000, "a"), "own write").toEqual({ action: "take", term: 4, revision: 7 });
    // A renewal that timed out here but was stored: a revision this controller never learnt, still its own.
    expect(followerTick(held(9), { revision: 9, since: 0 }, 100, 6000, "a"), "own write of a revision not seen acknowledged").toEqual({ action: "take", term: 4, revision: 9 });
    expect(followerTick(held(8), undefined, 0, 6000, "b"), "written by another").toEqual({ action: "wait", observation: { revision: 8, since: 0 } });
  });
});

describe("leader - two controllers on one store", () => {
  let dir: string;
  let servers: NatsServers;
  const proxies: TcpProxy[] = [];
  const controllers: (RunningController | undefined)[] = [];
  /** Samples of how many controllers act as leader, every 20 ms for the whole suite. */
  let maxLeaders = 0;
  let sampler: NodeJS.Timeout | undefined;

  const startOne = async (i: number) => {
    const proxy = await startTcpProxy(Number(new URL(servers.urls[0]!).port));
    proxies[i] = proxy;
    controllers[i] = await startController(
      {
        stateDir: join(dir, "controller"),
        nats: { url: `tls://127.0.0.1:${proxy.port}` },
        api: { listenHost: "127.0.0.1", port: 0, socket: "" },
        leader: { leaseSeconds: 3 },
        heartbeatSeconds: 1,
        offlineAfterSeconds: 3,
      },
      silent.child({ controller: i }),
    );
  };
  const leaders = () => controllers.filter((c) => c?.election.isLeader());
  const waitFor = async (cond: () => boolean, ms: number) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) return false;
      await new Promise((r) => setTimeout(r, 20));
    }
    return true;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "weft-leader-"));
    servers = await startNatsServers(dir, join(dir, "controller"), 1);
    await startOne(0);
    await startOne(1);
    sampler = setInterval(() => {
      maxLeaders = Math.max(maxLeaders, leaders().length);
    }, 20);
  }, 60_000);

  afterAll(async () => {
    clearInterval(sampler);
    for (const c of controllers) await c?.stop().catch(() => {});
    for (const p of proxies) await p?.close();
    await servers?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("leader - exactly one of two controllers leads, and both serve the API (a sync asked of the follower is run by the leader)", async () => {
    expect(await waitFor(() => leaders().length === 1, 10_000), "one leader within 10 s").toBe(true);
    await new Promise((r) => setTimeout(r, 2000));
    expect(leaders().length, "leaders after 2 s more").toBe(1);
    const leader = leaders()[0]!;
    const follower = controllers.find((c) => c !== leader)!;
    expect(follower.election.leader()?.holder, "the follower knows who leads").toBe(leader.election.id);
    for (const c of controllers) {
      const client = new ControllerClient({ url: c!.apiUrl, adminToken: c!.adminToken, caPem: c!.caPem });
      expect((await client.raw("GET", "/v1/nodes")).status, `GET /v1/nodes on ${c!.election.id}`).toBe(200);
    }
    expect(follower.election.leader()?.api, "the lease names the leader's API as others reach it").toBe(leader.apiUrl);
    const runs = { [leader.election.id]: 0, [follower.election.id]: 0 };
    for (const c of [leader, follower]) {
      const sync = c.inventory.sync.bind(c.inventory);
      c.inventory.sync = () => {
        runs[c.election.id]!++;
        return sync();
      };
    }
    const onFollower = new ControllerClient({ url: follower.apiUrl, adminToken: follower.adminToken, caPem: follower.caPem });
    const sync = await onFollower.raw("POST", "/v1/inventory/sync", "{}");
    expect(sync.status, `inventory sync asked of the follower: ${sync.text}`).toBe(200);
    expect(runs, "run by the leader (the follower tried and was refused)").toEqual({ [leader.election.id]: 1, [follower.election.id]: 1 });
    // A request another controller forwarded is never forwarded again: the follower's own refusal.
    const forwarded = await onFollower.raw("POST", "/v1/inventory/sync", "{}", { [FORWARDED_BY_HEADER]: "another-controller" });
    expect(forwarded.status, `a forwarded sync asked of the follower: ${forwarded.text}`).toBe(503);
    expect((forwarded.body as { error: string }).error, "error code").toBe("not_leader");
    expect((forwarded.body as { message: string }).message, "names the leader and its API").toContain(`${leader.election.id} (${leader.apiUrl})`);
    expect(runs[leader.election.id], "not run by the leader").toBe(1);
  });

  it("leader - only the leader writes weft-node-services (no record written twice)", async () => {
    const leader = leaders()[0]!;
    const follower = controllers.find((c) => c !== leader)!;
    const onFollower = new ControllerClient({ url: follower.apiUrl, adminToken: follower.adminToken, caPem: follower.caPem });
    const kv = await new Kvm(leader.nc).open(Buckets.nodeServices);
    const puts: string[] = [];
    const watch = await kv.watch({ include: KvWatchInclude.UpdatesOnly });
    void (async () => {
      for await (const e of watch) {
        if (e.operation !== "PUT") continue;
        const { compiledAt: _at, ...rest } = e.json<Record<string, unknown>>();
        puts.push(`${e.key} ${JSON.stringify(rest)}`);
      }
    })();
    const key = await onFollower.createJoinKey({});
    const agent = agentIdentity(key.key, generateKeyPair().publicKey, { name: "services-writer" });
    const res = await onFollower.raw("POST", "/v1/enroll", JSON.stringify(agent.body));
    expect(res.status, `enroll through the follower: ${res.text}`).toBe(201);
    expect(await waitFor(() => puts.length > 0, 5000), "the node's services record written").toBe(true);
    await new Promise((r) => setTimeout(r, 1500)); // both publishers would have written by now
    watch.stop();
    const repeats = puts.filter((p, i) => i > 0 && p === puts[i - 1]);
    expect(repeats, `records written again with the same content (two writers): ${puts.length} puts`).toEqual([]);
  });

  it("leader - a leader cut off from the store stops acting within its lease, and the other leads within 10 s", async () => {
    const leaderIdx = controllers.findIndex((c) => c?.election.isLeader());
    const other = controllers[1 - leaderIdx]!;
    const cutAt = Date.now();
    proxies[leaderIdx]!.cut();
    expect(await waitFor(() => !controllers[leaderIdx]!.election.isLeader(), 4000), "the cut-off leader stepped down within its 3 s lease").toBe(true);
    const steppedDownMs = Date.now() - cutAt;
    expect(await waitFor(() => other.election.isLeader(), 10_000), "the other controller leads within 10 s").toBe(true);
    const failoverMs = Date.now() - cutAt;
    console.log(`leader failover: old leader stopped acting after ${steppedDownMs} ms, new leader after ${failoverMs} ms (lease 3 s)`);
    expect(failoverMs, "failover time").toBeLessThan(10_000);
    expect(maxLeaders, "most controllers acting as leader at one instant").toBe(1);
    proxies[leaderIdx]!.heal();
    await new Promise((r) => setTimeout(r, 4000));
    expect(leaders().map((c) => c!.election.id), "after the partition heals the new leader keeps leading").toEqual([other.election.id]);
  });

  it("leader - a stopping leader hands over at once, and a sync asked of the other meanwhile is answered, not refused", async () => {
    const leaderIdx = controllers.findIndex((c) => c?.election.isLeader());
    const other = controllers[1 - leaderIdx]!;
    const started = Date.now();
    await controllers[leaderIdx]!.stop();
    controllers[leaderIdx] = undefined;
    // Asked before the other's next tick has taken the released lease: it waits to lead and syncs.
    const onOther = new ControllerClient({ url: other.apiUrl, adminToken: other.adminToken, caPem: other.caPem });
    const leadingBefore = other.election.isLeader();
    const sync = await onOther.raw("POST", "/v1/inventory/sync", "{}");
    expect(sync.status, `inventory sync asked of the other as the leader stopped (leading when asked: ${leadingBefore}): ${sync.text}`).toBe(200);
    expect(await waitFor(() => other.election.isLeader(), 3000), "the other leads within 3 s of a graceful stop").toBe(true);
    console.log(`leader handover on stop: ${Date.now() - started} ms (sync asked at once: ${leadingBefore ? "already leading" : "answered once it led"})`);
    expect(maxLeaders, "most controllers acting as leader at one instant").toBe(1);
  });
});

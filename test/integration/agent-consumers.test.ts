/**
 * An agent's NATS session leaves nothing in JetStream: a real agent credential running the agent's
 * peers, policy and path-plan watches against a real controller creates no consumer, and once its node is
 * deleted (connection closed by the revocation) no consumer delivers to it.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { Buckets, Subjects, generateKeyPair } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PeerWatch } from "../../agent/src/control/peer-watch.js";
import { NodePathsWatch } from "../../agent/src/control/paths-watch.js";
import { NodePolicyWatch } from "../../agent/src/control/policy-watch.js";
import { enrollAgent, eventually, startTestController, type TestController } from "../../controller/src/testing.js";

let t: TestController;
beforeAll(async () => {
  t = await startTestController();
});
afterAll(async () => {
  await t?.stop();
});

describe("agent consumers", () => {
  it("nodes - an agent session (peers, policy and path-plan watches) creates no consumer; its deletion leaves 0 consumers", async () => {
    const jsm = await jetstreamManager(t.running.nc);
    const count = async () => {
      let n = 0;
      for await (const si of jsm.streams.list()) n += si.state.consumer_count;
      return n;
    };
    const before = await count();
    const key = (await t.client.createJoinKey({ reusable: false })).key;
    const { enrolled, nc } = await enrollAgent(t, key, generateKeyPair().publicKey);
    const silent = pino({ level: "silent" });
    const sets: number[] = [];
    const peers = new PeerWatch(nc, Subjects.inboxPrefix(enrolled.nodeId), (set) => sets.push(set.peers.size), silent);
    const policy = new NodePolicyWatch(nc, enrolled.nodeId, () => undefined, silent);
    const paths = new NodePathsWatch(nc, enrolled.nodeId, () => undefined, silent);
    await peers.start();
    await policy.start();
    await paths.start();
    expect(sets.length, "peer sets seen").toBeGreaterThan(0);
    for (const bucket of [Buckets.peers, Buckets.nodePolicies, Buckets.nodePaths]) {
      for await (const ci of jsm.consumers.list(`KV_${bucket}`)) {
        expect(ci.config.deliver_subject?.startsWith(Subjects.inboxPrefix(enrolled.nodeId)) ?? false, `consumer ${ci.name} on KV_${bucket} delivers to the agent`).toBe(false);
      }
    }
    await t.client.deleteNode(enrolled.nodeId);
    expect(await eventually(() => (nc.isClosed() ? true : undefined), 3000), "agent connection closed by the deletion").toBe(true);
    peers.stop();
    policy.stop();
    paths.stop();
    for (const bucket of [Buckets.peers, Buckets.nodePolicies, Buckets.nodePaths]) {
      for await (const ci of jsm.consumers.list(`KV_${bucket}`)) {
        expect(ci.config.deliver_subject?.startsWith(Subjects.inboxPrefix(enrolled.nodeId)) ?? false, `consumer ${ci.name} on KV_${bucket} delivers to the deleted node`).toBe(false);
      }
    }
    expect(await eventually(async () => ((await count()) <= before ? true : undefined), 10_000, 200), `consumers after the deletion: want at most the ${before} from before`).toBe(true);
  });
});

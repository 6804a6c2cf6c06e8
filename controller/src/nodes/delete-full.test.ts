/**
 * Deleting a node when its buckets are full: the one operation that must always work. With a
 * small `weft-peers` and `weft-nodes` limit filled to the brim (writes refused), `DELETE /v1/nodes/<id>` still
 * succeeds, the agent's credential is revoked (its connection closes) and its peer record is gone.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { connect, jwtAuthenticator } from "@nats-io/transport-node";
import { Buckets, ControllerClient, EnrollResponse, Subjects, generateKeyPair } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startController, type RunningController } from "../controller.js";
import { agentIdentity, eventually } from "../testing.js";

let stateDir: string;
let running: RunningController | undefined;

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "weft-full-bucket-"));
  running = await startController(
    { stateDir, nats: { listenHost: "127.0.0.1", port: 0, buckets: { [Buckets.peers]: { maxBytes: 64 * 1024 }, [Buckets.nodes]: { maxBytes: 64 * 1024 } } }, api: { listenHost: "127.0.0.1", port: 0, socket: "" } },
    pino({ level: "silent" }),
  );
});
afterAll(async () => {
  await running?.stop();
  await rm(stateDir, { recursive: true, force: true });
});

describe("node delete with a full store", () => {
  it("nodes - delete succeeds and cuts the node off when weft-peers and weft-nodes are at their byte limits", async () => {
    const client = new ControllerClient({ url: running!.apiUrl, adminToken: running!.adminToken, caPem: running!.caPem });
    const key = (await client.createJoinKey({ reusable: true })).key;
    const agent = agentIdentity(key, generateKeyPair().publicKey);
    const raw = await client.raw("POST", "/v1/enroll", JSON.stringify(agent.body));
    expect(raw.status, raw.text).toBe(201);
    const res = EnrollResponse.parse(raw.body);
    const nc = await connect({ servers: running!.natsUrl, tls: { ca: running!.natsCaPem }, authenticator: jwtAuthenticator(res.nats.userJwt, agent.natsSeed), inboxPrefix: Subjects.inboxPrefix(res.nodeId), maxReconnectAttempts: 0 });

    const peers = await new Kvm(running!.nc).open(Buckets.peers);
    for (const bucket of [Buckets.peers, Buckets.nodes]) {
      const kv = await new Kvm(running!.nc).open(bucket);
      // Filled to the last byte: values ever smaller, under keys as long as a node id, down to
      // empty ones; then even a delete marker (an empty value with a header) does not fit.
      let i = 0;
      let refused: unknown;
      for (const size of [4000, 1000, 200, 50, 10, 1, 0]) {
        refused = undefined;
        while (refused === undefined) await kv.put(`n-f${(i++).toString(16).padStart(15, "0")}`, "x".repeat(size)).catch((e: unknown) => (refused = e));
      }
      expect(String(refused), `${bucket} refuses even an empty value`).toMatch(/maximum bytes/i);
    }

    const deleted = await client.raw("DELETE", `/v1/nodes/${res.nodeId}`);
    expect(deleted.status, `DELETE with a full bucket: ${deleted.text}`).toBe(200);
    expect(await eventually(() => (nc.isClosed() ? true : undefined), 5000), "the agent's connection is closed by the revocation").toBe(true);
    const entry = await peers.get(res.nodeId);
    expect(entry?.operation ?? "none", "peer record after the delete").not.toBe("PUT");
    expect((await client.listNodes()).map((n) => n.nodeId), "nodes after the delete").not.toContain(res.nodeId);
  });
});

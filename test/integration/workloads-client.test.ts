/**
 * requestWorkloads against a real controller with the agent's own credentials:
 * the recorded workloads come back; a refusal throws WorkloadsRefusedError with
 * the controller's code and message; no answer throws WorkloadsUnavailableError.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { generateKeyPair } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requestWorkloads, WorkloadsRefusedError, WorkloadsUnavailableError } from "../../agent/src/control/workloads-client.js";
import { enrollAgent, startTestController, type EnrolledAgent, type TestController } from "../../controller/src/testing.js";

let t: TestController;
let agent: EnrolledAgent;

beforeAll(async () => {
  t = await startTestController();
  const key = await t.client.createJoinKey({ labels: { "weft:namespace": "payments", "weft:workload-identities": "payments/api" } });
  agent = await enrollAgent(t, key.key, generateKeyPair().publicKey);
});
afterAll(async () => {
  await agent?.nc.close().catch(() => {});
  await t?.stop();
});

describe("requestWorkloads", () => {
  it("workloads-client - returns the prefix and the recorded workloads", async () => {
    const got = await requestWorkloads(agent.nc, agent.enrolled.nodeId, [{ name: "api-1", namespace: "payments", serviceAccount: "api" }]);
    expect(got.workloadPrefix, "prefix").toBe(agent.enrolled.workloadPrefix);
    expect(got.workloads.map((w) => [w.name, w.address, w.identity.spiffeId]), "workloads").toEqual([
      ["api-1", `${agent.enrolled.workloadPrefix!.split("/")[0]!.replace(/\.0$/, ".1")}`, "spiffe://weft.internal/ns/payments/sa/api"],
    ]);
  });

  it("workloads-client - a refusal throws WorkloadsRefusedError with the controller's code and message, not retryable", async () => {
    const err = await requestWorkloads(agent.nc, agent.enrolled.nodeId, [{ name: "x", namespace: "billing", serviceAccount: "api" }]).catch((e: unknown) => e);
    expect(err, "error type").toBeInstanceOf(WorkloadsRefusedError);
    const refused = err as WorkloadsRefusedError;
    expect({ code: refused.code, retryable: refused.retryable }, "code").toEqual({ code: "forbidden", retryable: false });
    expect(refused.message, "message").toContain("was not granted identity billing/api");
  });

  it("workloads-client - no answer throws WorkloadsUnavailableError, retryable", async () => {
    const silent = { request: async () => Promise.reject(new Error("no responders")) } as unknown as NatsConnection;
    const err = await requestWorkloads(silent, agent.enrolled.nodeId, [], 100).catch((e: unknown) => e);
    expect(err, "error type").toBeInstanceOf(WorkloadsUnavailableError);
    expect((err as WorkloadsUnavailableError).retryable, "retryable").toBe(true);
  });
});

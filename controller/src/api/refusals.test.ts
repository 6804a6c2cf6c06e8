/**
 * What strangers are told: refusals on the enrollment routes carry a stable code and a generic
 * message with a reference — never a node id, address, account or policy name; the detail is in
 * the controller's log under that reference and counted by reason (GET /v1/counters). A site the
 * key does not vouch for is 403 with nothing stored. Enrollment and nonce requests are limited
 * per source address: 429 with Retry-After, counted.
 */
import { request } from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateKeyPair } from "@weft/protocol";
import { z } from "zod";
import { agentIdentity, assertNothingStored, refusalDetail, startTestController, storedState, type TestController } from "../testing.js";

let t: TestController;

beforeAll(async () => {
  t = await startTestController({}, { rateLimit: { max: 6, windowSeconds: 60 } });
});
afterAll(async () => {
  await t?.stop();
});

/** POST over HTTPS with the controller's CA, answering status, headers and text. */
function post(path: string, body: unknown): Promise<{ status: number; text: string; headers: Record<string, string | string[] | undefined> }> {
  const url = new URL(path, t.running.apiUrl);
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: "POST", ca: t.running.caPem, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data) } }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
    });
    req.on("error", reject);
    req.end(data);
  });
}

/** GET over HTTPS with a bearer token, answering status and text. */
function get(path: string, token: string): Promise<{ status: number; text: string }> {
  const url = new URL(path, t.running.apiUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, method: "GET", ca: t.running.caPem, headers: { authorization: `Bearer ${token}` } }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (d: string) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", reject);
    req.end();
  });
}

const counter = async (endpoint: string, reason: string) => {
  const Snapshot = z.array(z.object({ name: z.string(), samples: z.array(z.object({ labels: z.record(z.string(), z.string()), value: z.number() })) }));
  const refusals = (await t.client.call("GET", "/v1/counters", Snapshot)).find((c) => c.name === "weft_controller_refusals_total");
  return refusals?.samples.find((s) => s.labels["endpoint"] === endpoint && s.labels["reason"] === reason)?.value ?? 0;
};

describe("refusals to strangers", () => {
  it("refusals - a site the join key does not vouch for is 403 site_rejected, nothing stored; the body names no site, the log does", async () => {
    const key = await t.client.createJoinKey({ site: "aws", labels: { "weft:gateway": "true" } });
    const before = await storedState(t);
    const res = await post("/v1/enroll", agentIdentity(key.key, generateKeyPair().publicKey, { site: "gcp" }).body);
    expect(res.status, res.text).toBe(403);
    const got = refusalDetail(t, res, "site mismatch");
    expect([got.code, got.reason], "code and logged reason").toEqual(["site_rejected", "site_mismatch"]);
    expect(got.message, "logged detail").toMatch(/names site gcp, but join key [0-9a-f]{12} says aws/);
    expect(res.text, "body").not.toMatch(/gcp|aws|join key [0-9a-f]/);
    await assertNothingStored(t, before, "site mismatch");
    const ok = await post("/v1/enroll", { ...agentIdentity(key.key, generateKeyPair().publicKey).body, site: undefined });
    expect([ok.status, (JSON.parse(ok.text) as { site?: string }).site], "no site asked: the vouched one").toEqual([201, "aws"]);
    expect((await t.client.listNodes()).find((n) => n.site === "aws")?.siteSource, "recorded as vouched by the key").toBe("join-key");
    const gw = await t.client.raw("POST", "/v1/keys", JSON.stringify({ labels: { "weft:gateway": "true" } }));
    expect([gw.status, gw.text.includes("site")], "a gateway key needs a site").toEqual([400, true]);
  });

  it("refusals - a name taken is 409 without the owner's id; a bad key is 403 with a reference; both counted by reason", async () => {
    const key = await t.client.createJoinKey({ reusable: true });
    const first = agentIdentity(key.key, generateKeyPair().publicKey);
    expect((await post("/v1/enroll", first.body)).status, "first").toBe(201);
    const taken = await post("/v1/enroll", agentIdentity(key.key, generateKeyPair().publicKey, { name: first.body["name"] }).body);
    expect(taken.status, taken.text).toBe(409);
    expect(refusalDetail(t, taken, "name taken").message, "logged with the owner").toMatch(/already enrolled as node n-[0-9a-f]{16}/);
    const bad = await post("/v1/enroll", agentIdentity("weft_000000000000_notasecret", generateKeyPair().publicKey).body);
    expect(JSON.parse(bad.text), "bad key body").toEqual({ error: "join_key_rejected", message: expect.stringMatching(/^enrollment refused: the join key does not admit this enrollment \(reference ref-[0-9a-f]{10}\)$/) });
    expect([await counter("enroll", "join_key_invalid"), await counter("enroll", "site_mismatch")], "counters").toEqual([1, 1]);
  });

  it("refusals - past the per-address limit, enrollment and nonce requests are 429 with Retry-After, and counted", async () => {
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<typeof post>> | undefined;
    for (let i = 0; i < 8; i++) {
      const r = await post("/v1/enroll", agentIdentity("weft_000000000000_notasecret", generateKeyPair().publicKey).body);
      statuses.push(r.status);
      if (r.status === 429) limited = r;
    }
    expect(statuses.filter((s) => s === 429).length, `statuses ${statuses.join(",")}`).toBeGreaterThan(0);
    expect(Number(limited?.headers["retry-after"]), "Retry-After seconds").toBeGreaterThan(0);
    expect(JSON.parse(limited!.text).error, "code").toBe("rate_limited");
    expect(await counter("enroll", "rate_limited"), "counted").toBeGreaterThan(0);
    // The nonce route has its own budget.
    const nonces: number[] = [];
    for (let i = 0; i < 8; i++) nonces.push((await post("/v1/enroll/nonce", {})).status);
    expect(nonces.slice(0, 6).every((s) => s === 201 || s === 503), `first nonces ${nonces.join(",")}`).toBe(true);
    expect(nonces.slice(6), "past the limit").toEqual([429, 429]);
    // The same counters on /metrics, for Prometheus.
    const metrics = await get("/metrics", t.running.adminToken);
    expect(metrics.status, metrics.text.slice(0, 200)).toBe(200);
    expect(metrics.text, "/metrics").toContain(`weft_controller_refusals_total{endpoint="enroll",reason="rate_limited"} ${await counter("enroll", "rate_limited")}`);
    expect(metrics.text, "/metrics").toContain(`weft_controller_refusals_total{endpoint="nonce",reason="rate_limited"} 2`);
  });
});

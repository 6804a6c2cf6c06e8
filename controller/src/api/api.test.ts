/**
 * The REST API as a client sees it, against a real controller: admin routes
 * refuse missing and wrong tokens without leaking data, unknown routes and ids
 * answer 404 in the API's JSON error shape, the unix socket serves the same API,
 * and GET /openapi.json describes exactly the routes the server serves.
 */
import { ApiError, ControllerClient, generateKeyPair } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentIdentity, assertNothingStored, startTestController, storedState, type TestController } from "../testing.js";

let t: TestController;
let nodeId: string;
let nodeName: string;
let keyId: string;

/** Every route the controller serves, as `METHOD /path` with OpenAPI-style parameters. */
const KNOWN_ROUTES = [
  "GET /healthz",
  "GET /openapi.json",
  "POST /v1/enroll",
  "POST /v1/enroll/nonce",
  "POST /v1/keys",
  "GET /v1/keys",
  "DELETE /v1/keys/{id}",
  "GET /v1/identities",
  "GET /v1/nodes",
  "GET /v1/nodes/{id}",
  "DELETE /v1/nodes/{id}",
  "GET /v1/nodes/{id}/policy",
  "GET /v1/nodes/{id}/services",
  "PUT /v1/policies/{name}",
  "GET /v1/policies",
  "GET /v1/policies/{name}",
  "DELETE /v1/policies/{name}",
  "PUT /v1/services/{namespace}/{name}",
  "GET /v1/services",
  "GET /v1/services/{namespace}/{name}",
  "DELETE /v1/services/{namespace}/{name}",
  "PUT /v1/enrollment-policies/{name}",
  "GET /v1/enrollment-policies",
  "GET /v1/enrollment-policies/{name}",
  "DELETE /v1/enrollment-policies/{name}",
  "GET /v1/inventory",
  "POST /v1/inventory/sync",
  "GET /v1/counters",
  "POST /console/login",
  "GET /console/session",
  "POST /console/logout",
  "GET /v1/events",
  "GET /v1/policy-matrix",
  "GET /v1/flows",
  "GET /metrics",
];
const ADMIN_ROUTES = KNOWN_ROUTES.filter((r) => /\/v1\/(keys|nodes|identities|policies|enrollment-policies|inventory|counters|events|policy-matrix|flows|services)/.test(r));
/** Routes that need a credential: the admin routes and /metrics (metrics or admin token). */
const SECURED_ROUTES = [...ADMIN_ROUTES, "GET /metrics"];

beforeAll(async () => {
  t = await startTestController();
  const key = await t.client.createJoinKey({ reusable: true, labels: { secret: "label-value" } });
  keyId = key.id;
  const agent = agentIdentity(key.key, generateKeyPair().publicKey);
  const res = await t.client.raw("POST", "/v1/enroll", JSON.stringify(agent.body));
  if (res.status !== 201) throw new Error(`setup enroll: got ${res.status} ${res.text}`);
  nodeId = (res.body as { nodeId: string }).nodeId;
  nodeName = String(agent.body["name"]);
  const put = await t.client.raw("PUT", `/v1/policies/${POLICY_NAME}`, JSON.stringify(POLICY));
  if (put.status !== 200) throw new Error(`setup policy: got ${put.status} ${put.text}`);
});
afterAll(async () => {
  await t?.stop();
});

/** Real ids in the path, so a leak would have something to leak. */
function concrete(route: string): { method: string; path: string } {
  const [method = "", path = ""] = route.split(" ");
  return { method, path: path.replace("{id}", path.startsWith("/v1/keys") ? keyId : nodeId).replace("{namespace}", "shop").replace("{name}", POLICY_NAME) };
}

const POLICY_NAME = "api-test-policy";
const POLICY = { name: POLICY_NAME, rules: [{ action: "allow", from: [{ namespace: "a" }], to: [{ namespace: "b" }] }] };

function bodyFor(method: string): string | undefined {
  if (method === "PUT") return JSON.stringify(POLICY);
  return method === "POST" ? JSON.stringify({ reusable: true }) : undefined;
}

describe("api auth", () => {
  it("api - every admin route without a token, with a wrong token or another scheme is 401 with only an error in the body", async () => {
    const before = await storedState(t);
    const attempts: [string, Record<string, string>][] = [
      ["no token", { authorization: "" }],
      ["wrong token", { authorization: "Bearer wrong-token-0123456789abcdef" }],
      ["right token, Basic scheme", { authorization: `Basic ${t.running.adminToken}` }],
      ["right token, no scheme", { authorization: t.running.adminToken }],
      ["token with a suffix", { authorization: `Bearer ${t.running.adminToken}x` }],
    ];
    for (const route of ADMIN_ROUTES) {
      const { method, path } = concrete(route);
      for (const [what, headers] of attempts) {
        const res = await t.client.raw(method, path, bodyFor(method), headers);
        expect(res.status, `${route} with ${what}: got ${res.status} ${res.text}, want 401`).toBe(401);
        const parsed = ApiError.safeParse(res.body);
        expect(parsed.success, `${route} with ${what}: body ${res.text} is not an API error`).toBe(true);
        expect(Object.keys(res.body as object).sort(), `${route} with ${what}: body fields`).toEqual(["error", "message"]);
        expect(parsed.data?.error, `${route} with ${what}: error code`).toBe("unauthorized");
        for (const leak of [nodeId, nodeName, keyId, "label-value", POLICY_NAME, t.running.adminToken]) {
          expect(res.text.includes(leak), `${route} with ${what}: body ${res.text} contains ${leak}`).toBe(false);
        }
      }
    }
    await assertNothingStored(t, before, "admin routes without a valid token");
  });

  it("api - without a token, a garbage or oversized body still gets 401, not a parse error", async () => {
    const before = await storedState(t);
    for (const [what, body] of [
      ["garbage", "{not json"],
      ["70 KiB", JSON.stringify({ description: "x".repeat(70 * 1024) })],
    ] as const) {
      const res = await t.client.raw("POST", "/v1/keys", body, { authorization: "" });
      expect(res.status, `POST /v1/keys with a ${what} body and no token: got ${res.status} ${res.text}, want 401`).toBe(401);
    }
    await assertNothingStored(t, before, "unauthenticated bodies");
  });

  it("api - the admin token is accepted on TCP and on the unix socket", async () => {
    const viaSocket = new ControllerClient({ socketPath: t.running.apiSocket!, adminToken: t.running.adminToken });
    const nodes = await viaSocket.listNodes();
    expect(nodes.map((n) => n.nodeId), "nodes via the unix socket").toEqual([nodeId]);
    const anonymous = await new ControllerClient({ socketPath: t.running.apiSocket! }).raw("GET", "/v1/nodes");
    expect(anonymous.status, `GET /v1/nodes on the socket without a token: got ${anonymous.status}, want 401`).toBe(401);
  });
});

describe("api errors", () => {
  it("api - unknown routes and methods are 404 in the JSON error shape", async () => {
    for (const [method, path] of [
      ["GET", "/"],
      ["GET", "/v2/nodes"],
      ["GET", "/v1/node"],
      ["PUT", "/v1/keys"],
      ["PATCH", "/v1/nodes/x"],
      ["POST", "/v1/nodes"],
      ["GET", "/v1/enroll"],
    ] as const) {
      const res = await t.client.raw(method, path);
      expect(res.status, `${method} ${path}: got ${res.status} ${res.text}, want 404`).toBe(404);
      const parsed = ApiError.safeParse(res.body);
      expect(parsed.success, `${method} ${path}: got ${res.text}, want a JSON API error`).toBe(true);
      expect(parsed.data?.error, `${method} ${path}: error code`).toBe("not_found");
      expect(parsed.data?.message, `${method} ${path}: message points at the route list`).toMatch(/openapi\.json/);
    }
  });

  it("api - unknown or malformed node ids and names are 404, not a store failure", async () => {
    const before = await storedState(t);
    for (const id of ["n-0000000000000000", "no-such-node", "n-*", ">", "a.b", "a b", "UPPER", "x".repeat(90), "n-web"]) {
      for (const method of ["GET", "DELETE"]) {
        const res = await t.client.raw(method, `/v1/nodes/${encodeURIComponent(id)}`);
        expect(res.status, `${method} /v1/nodes/${id.slice(0, 20)}: got ${res.status} ${res.text}, want 404`).toBe(404);
        expect((res.body as { error?: string }).error, `${method} /v1/nodes/${id.slice(0, 20)}: error code`).toBe("not_found");
      }
    }
    await assertNothingStored(t, before, "unknown node ids");
  });

  it("api - an over-long id or a broken percent-encoding is a 4xx in the API's error shape", async () => {
    const before = await storedState(t);
    for (const [what, path, want] of [
      ["300-character id", `/v1/nodes/${"x".repeat(300)}`, [400, 404, 414]],
      ["broken percent-encoding", "/v1/nodes/%E0%A4%A", [400, 404]],
    ] as const) {
      const res = await t.client.raw("GET", path);
      expect((want as readonly number[]).includes(res.status), `${what}: got ${res.status} ${res.text.slice(0, 120)}, want one of ${want.join(", ")}`).toBe(true);
      expect(Object.keys(res.body as object).sort(), `${what}: body fields of ${res.text.slice(0, 120)}`).toEqual(["error", "message"]);
      expect(["invalid_request", "not_found"], `${what}: error code`).toContain((res.body as { error: string }).error);
    }
    await assertNothingStored(t, before, "bad urls");
  });
});

describe("api openapi", () => {
  interface Doc {
    openapi?: string;
    info?: { title?: string; version?: string };
    paths?: Record<string, Record<string, { responses?: Record<string, unknown>; security?: unknown[]; requestBody?: unknown }>>;
    components?: { securitySchemes?: Record<string, { type?: string; scheme?: string }> };
  }

  async function openapi(): Promise<Doc> {
    const res = await t.client.raw("GET", "/openapi.json", undefined, { authorization: "" });
    expect(res.status, `GET /openapi.json without a token: got ${res.status}, want 200`).toBe(200);
    return res.body as Doc;
  }

  function documented(doc: Doc): string[] {
    return Object.entries(doc.paths ?? {}).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
  }

  it("api - /openapi.json is an OpenAPI 3 document listing exactly the served routes", async () => {
    const doc = await openapi();
    expect(doc.openapi, "openapi version").toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info?.title, "info.title").toBeTruthy();
    expect(doc.info?.version, "info.version").toBeTruthy();
    expect(doc.components?.securitySchemes?.["adminToken"], "admin token security scheme").toEqual(expect.objectContaining({ type: "http", scheme: "bearer" }));
    expect(documented(doc).sort(), "documented routes").toEqual([...KNOWN_ROUTES].sort());
    for (const [path, ops] of Object.entries(doc.paths ?? {})) {
      for (const [method, op] of Object.entries(ops)) {
        expect(Object.keys(op.responses ?? {}).length > 0, `${method} ${path}: has responses`).toBe(true);
        const secured = SECURED_ROUTES.includes(`${method.toUpperCase()} ${path}`);
        expect(op.security !== undefined, `${method} ${path}: security declared = ${secured}`).toBe(secured);
        if (method === "post" || method === "put") expect(op.requestBody, `${method} ${path}: requestBody`).toBeDefined();
      }
    }
  });

  it("api - the routes strangers call document their rate limit (429); the others do not", async () => {
    const doc = await openapi();
    const limited = Object.entries(doc.paths ?? {}).flatMap(([path, ops]) => Object.entries(ops).filter(([, op]) => "429" in (op.responses ?? {})).map(([m]) => `${m.toUpperCase()} ${path}`));
    expect(limited.sort(), "routes documenting 429").toEqual(["POST /v1/enroll", "POST /v1/enroll/nonce"]);
  });

  it("api - a route with a body documents the server's refusals of one (413 too large, 415 not JSON), and answers them", async () => {
    const doc = await openapi();
    for (const [path, ops] of Object.entries(doc.paths ?? {})) {
      for (const [method, op] of Object.entries(ops)) {
        if (!op.requestBody) continue;
        expect(Object.keys(op.responses ?? {}), `${method} ${path}`).toEqual(expect.arrayContaining(["413", "415"]));
      }
    }
    const big = await t.client.raw("POST", "/v1/keys", JSON.stringify({ description: "x".repeat(70 * 1024) }));
    expect([big.status, (big.body as { error?: string }).error], big.text.slice(0, 200)).toEqual([413, "invalid_request"]);
    const text = await t.client.raw("POST", "/v1/keys", "<reusable/>", { "content-type": "application/xml" });
    expect([text.status, (text.body as { error?: string }).error], text.text.slice(0, 200)).toEqual([415, "invalid_request"]);
  });

  it("api - every documented route answers (not 404), and a route the document omits does not", async () => {
    const doc = await openapi();
    for (const route of documented(doc)) {
      const [method = "", path = ""] = route.split(" ");
      // Without a token and with a placeholder id: admin routes answer 401, the others 200 or 400.
      const res = await t.client.raw(method, path.replace("{id}", "placeholder").replace("{name}", "placeholder"), method === "POST" || method === "PUT" ? "{}" : undefined, {
        authorization: "",
      });
      expect(res.status, `${route}: got ${res.status} ${res.text.slice(0, 120)}, want anything but 404`).not.toBe(404);
    }
    const omitted = await t.client.raw("GET", "/v1/status");
    expect(omitted.status, `GET /v1/status (not documented): got ${omitted.status}, want 404`).toBe(404);
  });
});

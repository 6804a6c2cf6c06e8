/**
 * The console against a real controller (embedded NATS, HTTPS): the login turns the admin token
 * into a session cookie with the right attributes, the cookie reads admin routes, state-changing
 * requests need the CSRF header, a bearer header is judged alone, logout ends the session, the
 * live stream names a policy change, the built console is served with its CSP, and /metrics takes
 * the metrics token and lists every family the issue asks for.
 */
import { request } from "node:https";
import { generateKeyPair } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentIdentity, assertNothingStored, startTestController, storedState, type TestController } from "../testing.js";

let t: TestController;

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

function call(method: string, path: string, o: { body?: unknown; headers?: Record<string, string> } = {}): Promise<Res> {
  const url = new URL(path, t.running.apiUrl);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method, ca: t.running.caPem, headers: { ...(o.body !== undefined ? { "content-type": "application/json" } : {}), ...o.headers } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      },
    );
    req.on("error", reject);
    if (o.body !== undefined) req.write(JSON.stringify(o.body));
    req.end();
  });
}

async function loggedIn(): Promise<{ cookie: string; csrf: string; setCookie: string }> {
  const res = await call("POST", "/console/login", { body: { token: t.running.adminToken } });
  expect(res.status, `login: got ${res.status} ${res.text}`).toBe(200);
  const setCookie = String((res.headers["set-cookie"] as string[] | undefined)?.[0] ?? "");
  const cookie = setCookie.split(";")[0] ?? "";
  return { cookie, csrf: (JSON.parse(res.text) as { csrfToken: string }).csrfToken, setCookie };
}

const POLICY = { name: "console-test", rules: [{ action: "allow", from: [{ namespace: "a" }], to: [{ namespace: "b" }] }] };

beforeAll(async () => {
  t = await startTestController();
});
afterAll(async () => {
  await t?.stop();
});

describe("console sessions", () => {
  it("console - a wrong token gets 401 and no cookie; the admin token gets an HttpOnly, Secure, SameSite=Strict session cookie and a CSRF token", async () => {
    const wrong = await call("POST", "/console/login", { body: { token: "not-the-admin-token-0123456789" } });
    expect(wrong.status, `wrong token: got ${wrong.status}`).toBe(401);
    expect(wrong.headers["set-cookie"], "cookie after a wrong token").toBeUndefined();
    const { setCookie, csrf } = await loggedIn();
    expect(setCookie, "cookie name").toMatch(/^weft_session=[A-Za-z0-9_-]{40,};/);
    for (const attr of ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"]) expect(setCookie, `cookie attribute ${attr}`).toContain(attr);
    expect(setCookie, "cookie carries no admin token").not.toContain(t.running.adminToken);
    expect(csrf.length, "CSRF token length").toBeGreaterThanOrEqual(40);
  });

  it("console - the cookie reads admin routes; a state change without the CSRF header is 403 and stores nothing; with it, it applies", async () => {
    const { cookie, csrf } = await loggedIn();
    const nodes = await call("GET", "/v1/nodes", { headers: { cookie } });
    expect(nodes.status, `GET /v1/nodes with the cookie: got ${nodes.status} ${nodes.text}`).toBe(200);
    const before = await storedState(t);
    for (const [what, headers] of [
      ["no CSRF header", { cookie }],
      ["a wrong CSRF header", { cookie, "x-weft-csrf": "x".repeat(43) }],
    ] as const) {
      const res = await call("PUT", `/v1/policies/${POLICY.name}`, { body: POLICY, headers });
      expect(res.status, `PUT with the cookie and ${what}: got ${res.status} ${res.text}, want 403`).toBe(403);
      expect(JSON.parse(res.text).error, `${what}: error code`).toBe("forbidden");
    }
    await assertNothingStored(t, before, "cookie without CSRF");
    const ok = await call("PUT", `/v1/policies/${POLICY.name}`, { body: POLICY, headers: { cookie, "x-weft-csrf": csrf } });
    expect(ok.status, `PUT with cookie and CSRF: got ${ok.status} ${ok.text}`).toBe(200);
  });

  it("console - a bearer header is judged alone: a wrong bearer with a valid cookie is 401; a cookie from elsewhere is 401", async () => {
    const { cookie } = await loggedIn();
    const res = await call("GET", "/v1/nodes", { headers: { cookie, authorization: "Bearer wrong-token-0123456789abcdef" } });
    expect(res.status, `wrong bearer + valid cookie: got ${res.status}`).toBe(401);
    const forged = await call("GET", "/v1/nodes", { headers: { cookie: "weft_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" } });
    expect(forged.status, `made-up session: got ${forged.status}`).toBe(401);
  });

  it("console - logout needs the CSRF token, ends the session and clears the cookie", async () => {
    const { cookie, csrf } = await loggedIn();
    const noCsrf = await call("POST", "/console/logout", { body: {}, headers: { cookie } });
    expect(noCsrf.status, `logout without CSRF: got ${noCsrf.status}`).toBe(403);
    const out = await call("POST", "/console/logout", { body: {}, headers: { cookie, "x-weft-csrf": csrf } });
    expect(out.status, `logout: got ${out.status} ${out.text}`).toBe(200);
    expect(JSON.parse(out.text), "logout answer").toEqual({ loggedOut: true });
    expect(String((out.headers["set-cookie"] as string[])[0]), "cleared cookie").toMatch(/^weft_session=;.*Max-Age=0/);
    const after = await call("GET", "/v1/nodes", { headers: { cookie } });
    expect(after.status, `GET with the ended session: got ${after.status}`).toBe(401);
    const session = await call("GET", "/console/session", { headers: { cookie } });
    expect(session.status, `GET /console/session after logout: got ${session.status}`).toBe(401);
  });
});

describe("console live stream and files", () => {
  it("console - /v1/events names a policy change within 2 s of the write", async () => {
    const { cookie } = await loggedIn();
    const url = new URL("/v1/events", t.running.apiUrl);
    const got = await new Promise<{ ms: number; text: string }>((resolve, reject) => {
      let text = "";
      let t0 = 0;
      const req = request(url, { ca: t.running.caPem, headers: { cookie, accept: "text/event-stream" } }, (res) => {
        expect(res.headers["content-type"], "stream content type").toMatch(/^text\/event-stream/);
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          text += c;
          if (text.includes("event: hello") && t0 === 0) {
            t0 = Date.now();
            void t.client.applyPolicy({ ...POLICY, name: "console-stream", rules: POLICY.rules as never });
          }
          if (/event: change\ndata: \{"topic":"policies"\}/.test(text)) {
            resolve({ ms: Date.now() - t0, text });
            req.destroy();
          }
        });
      });
      req.on("error", (err) => (err.message.includes("aborted") || err.message.includes("socket hang up") ? undefined : reject(err)));
      req.end();
      setTimeout(() => reject(new Error(`no policies event within 5 s; got ${JSON.stringify(text)}`)), 5000);
    });
    console.log(`console: policies event ${got.ms} ms after the write`);
    expect(got.ms, "ms from write to event").toBeLessThan(2000);
    const anonymous = await call("GET", "/v1/events");
    expect(anonymous.status, "stream without credentials").toBe(401);
  });

  it("console - the built console is served at /console/ with a strict CSP", async () => {
    const res = await call("GET", "/console/");
    expect(res.status, `GET /console/: got ${res.status}; is the console built (npm run build -w console)?`).toBe(200);
    expect(res.text, "index.html").toContain('<div id="app">');
    expect(String(res.headers["content-security-policy"]), "CSP").toContain("script-src 'self'");
    expect(String(res.headers["content-security-policy"]), "CSP").toContain("frame-ancestors 'none'");
    const asset = /src="(\/console\/assets\/[^"]+\.js)"/.exec(res.text)?.[1];
    expect(asset, "script asset in index.html").toBeDefined();
    const js = await call("GET", asset!);
    expect(js.status, `GET ${asset}`).toBe(200);
    expect(String(js.headers["content-type"]), "asset content type").toMatch(/javascript/);
  });
});

describe("controller metrics", () => {
  it("metrics - /metrics refuses no token, takes the metrics token (which reads nothing else) and lists the families", async () => {
    expect((await call("GET", "/metrics")).status, "no token").toBe(401);
    const metricsToken = t.running.metricsToken;
    const other = await call("GET", "/v1/nodes", { headers: { authorization: `Bearer ${metricsToken}` } });
    expect(other.status, "metrics token on /v1/nodes").toBe(401);
    // Some traffic first: a refused enrollment, an inventory read.
    const refused = await call("POST", "/v1/enroll", { body: agentIdentity("weft_bogus-key-that-was-never-issued", generateKeyPair().publicKey).body });
    expect(refused.status, `enrollment with a bogus key: ${refused.status} ${refused.text}`).toBeGreaterThanOrEqual(400);
    const reason = (JSON.parse(refused.text) as { error: string }).error;
    await t.client.listNodes();
    const res = await call("GET", "/metrics", { headers: { authorization: `Bearer ${metricsToken}` } });
    expect(res.status, `GET /metrics: ${res.status}`).toBe(200);
    expect(String(res.headers["content-type"]), "content type").toMatch(/^text\/plain/);
    for (const family of [
      "weft_controller_enrollments_total",
      "weft_controller_nodes",
      "weft_controller_kv_operations_total",
      "weft_controller_kv_errors_total",
      "weft_controller_inventory_sync_duration_seconds",
      "weft_controller_inventory_syncs_total",
      "weft_controller_policy_publish_seconds",
      "weft_controller_node_policy_bytes",
      "weft_controller_api_requests_total",
      "weft_controller_api_request_duration_seconds",
      "weft_controller_flow_reports_total",
      "weft_controller_process_cpu_seconds_total",
    ]) {
      expect(res.text, `family ${family}`).toContain(`# TYPE ${family} `);
    }
    expect(res.text, "the refused enrollment, by reason").toContain(`weft_controller_enrollments_total{result="refused",reason="${reason}"} 1`);
    expect(res.text, "nodes by status").toMatch(/weft_controller_nodes\{status="online"\} 0/);
    expect(res.text, "API requests by route template").toMatch(/weft_controller_api_requests_total\{method="GET",route="\/v1\/nodes",status="200"\} \d+/);
    expect(res.text, "KV operations").toMatch(/weft_controller_kv_operations_total\{bucket="weft-nodes",op="list",result="ok"\} \d+/);
    const admin = await call("GET", "/metrics", { headers: { authorization: `Bearer ${t.running.adminToken}` } });
    expect(admin.status, "admin token on /metrics").toBe(200);
  });
});

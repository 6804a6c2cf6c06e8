/**
 * A cloud endpoint that accepts connections and never answers: each adapter's calls time out as
 * configured, the page is retried (a second connection), and the fetch ends — partial, removing
 * nothing — within twice the timeout (plus the retry's pause), instead of waiting for the sync's
 * own limit.
 */
import { createServer, type Server, type Socket } from "node:net";
import { OAuth2Client } from "google-auth-library";
import { afterEach, describe, expect, it } from "vitest";
import { AwsInventory } from "./aws/index.js";
import { AzureInventory } from "./azure/index.js";
import { GcpInventory } from "./gcp/index.js";
import type { InventoryAdapter } from "./model.js";

const TIMEOUT_MS = 1000;
const RETRY = { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 };

let server: Server | undefined;
const sockets: Socket[] = [];
let connections = 0;

/** Accepts every connection and never writes a byte. */
async function hungEndpoint(): Promise<number> {
  connections = 0;
  server = createServer((s) => {
    connections++;
    sockets.push(s);
    s.on("error", () => undefined);
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  return (server.address() as { port: number }).port;
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

async function timed(adapter: InventoryAdapter): Promise<{ ms: number; complete: boolean; codes: string[] }> {
  const started = Date.now();
  const snap = await adapter.fetch();
  return { ms: Date.now() - started, complete: snap.complete, codes: [...new Set(snap.issues.map((i) => i.code))] };
}

function expectBounded(what: string, got: { ms: number; complete: boolean; codes: string[] }): void {
  expect(got.complete, `${what}: a listing that timed out is partial`).toBe(false);
  expect(connections, `${what}: connections to the hung endpoint (the page retried)`).toBeGreaterThanOrEqual(2);
  expect(got.ms, `${what}: fetch took ${got.ms} ms, want at least one timeout`).toBeGreaterThanOrEqual(TIMEOUT_MS);
  expect(got.ms, `${what}: fetch took ${got.ms} ms, want within 2 × ${TIMEOUT_MS} ms (+ 300 ms for the retry pause and scheduling)`).toBeLessThan(2 * TIMEOUT_MS + 300);
}

describe("cloud calls against an endpoint that never answers", () => {
  it("hung endpoint - aws: requests time out, the page is retried, the fetch ends within 2× the timeout", async () => {
    const port = await hungEndpoint();
    const aws = new AwsInventory({
      account: "111111111111",
      regions: ["eu-west-1"],
      endpoint: `http://127.0.0.1:${port}`,
      credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
      requestTimeoutMs: TIMEOUT_MS,
      retry: RETRY,
    });
    try {
      expectBounded("aws", await timed(aws));
    } finally {
      aws.close();
    }
  });

  it("hung endpoint - azure: pages time out, the page is retried, the fetch ends within 2× the timeout", async () => {
    const port = await hungEndpoint();
    const azure = new AzureInventory({
      subscriptionId: "6f1c1e3a-0000-4000-8000-00000000a2e0",
      endpoint: `https://127.0.0.1:${port}`,
      credential: { getToken: async () => ({ token: "t", expiresOnTimestamp: Date.now() + 3_600_000 }) },
      requestTimeoutMs: TIMEOUT_MS,
      retry: RETRY,
    });
    const got = await timed(azure);
    expectBounded("azure", got);
    expect(got.codes, "azure issues").toContain("timeout");
  });

  it("hung endpoint - gcp: calls time out, the page is retried, the fetch ends within 2× the timeout", async () => {
    const port = await hungEndpoint();
    const auth = new OAuth2Client();
    auth.setCredentials({ access_token: "t", expiry_date: Date.now() + 3_600_000 });
    const gcp = new GcpInventory({ project: "p", apiEndpoint: `http://127.0.0.1:${port}`, authClient: auth, timeoutMs: TIMEOUT_MS, retry: RETRY });
    try {
      await gcp.fetch(); // loads the compute client (protos: seconds on a busy machine); the second fetch is the one timed
      connections = 0;
      const got = await timed(gcp);
      expectBounded("gcp", got);
      expect(got.codes, "gcp issues").toContain("timeout");
    } finally {
      await gcp.close?.();
    }
  });
});

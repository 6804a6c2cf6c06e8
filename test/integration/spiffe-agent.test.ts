/**
 * The agent's SPIFFE side against a real controller and a real gRPC client (grpc-js with the
 * vendored workload.proto) over the Workload API's unix socket: the host's trusted uid gets the
 * node's SVID (key made here, chain to the bundle), the stream carries a rotation without a new
 * connection, JWT-SVIDs are fetched and validated, the security header is required, and a caller
 * with no identity gets PERMISSION_DENIED and nothing else. Attestation rules are tested as the
 * pure function they are; attestation of workloads by network namespace runs in the lab
 * (test/e2e/spiffe.test.ts) because it needs namespaces.
 */
import { X509Certificate } from "node:crypto";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { Kvm } from "@nats-io/kv";
import { Buckets, PeerRecord, TRUST_BUNDLE_KEY, TrustBundle, type Workload } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enrollAgent, startTestController, type EnrolledAgent, type TestController } from "../../controller/src/testing.js";
import { StateHolder } from "../../agent/src/state/holder.js";
import type { AgentState } from "../../agent/src/state/store.js";
import { generateKeyPair } from "../../agent/src/wireguard/keys.js";
import { attest } from "../../agent/src/spiffe/attest.js";
import { nodeSpiffeId, servedIds, SpiffeService } from "../../agent/src/spiffe/service.js";
import { renewAt } from "../../agent/src/spiffe/svids.js";
import { TrustBundleWatch } from "../../agent/src/spiffe/bundle-watch.js";
import { workloadApiService } from "../../agent/src/spiffe/proto.js";

const TD = "weft.internal";
const NODE_ID = `spiffe://${TD}/ns/infra/sa/host`;
const log = pino({ level: "silent" });

type Msg = Record<string, unknown>;
const Client = grpc.makeGenericClientConstructor(workloadApiService(), "SpiffeWorkloadAPI");

function header(ok = true): grpc.Metadata {
  const md = new grpc.Metadata();
  if (ok) md.set("workload.spiffe.io", "true");
  return md;
}

describe("agent spiffe", () => {
  let t: TestController;
  let agent: EnrolledAgent;
  let dir: string;
  let state: StateHolder;
  let spiffe: SpiffeService;
  let client: grpc.Client & Record<string, (...a: unknown[]) => unknown>;
  const socket = () => join(dir, "run", "workload-api.sock");

  beforeAll(async () => {
    t = await startTestController({ spiffe: { x509SvidTtlSeconds: 12 } });
    const key = await t.client.createJoinKey({ labels: { "weft:namespace": "infra", "weft:serviceaccount": "host" } });
    agent = await enrollAgent(t, key.key, generateKeyPair().publicKey);
    dir = await mkdtemp(join(tmpdir(), "weft-agent-spiffe-"));
    const node = await t.client.getNode(agent.enrolled.nodeId);
    const own: PeerRecord = PeerRecord.parse({ version: 1, nodeId: node.nodeId, name: node.name, site: node.site, wireguardPublicKey: node.wireguardPublicKey, overlayAddress: node.overlayAddress, identity: node.identity, allowedIps: [`${node.overlayAddress}/32`], endpoints: {}, updatedAt: new Date().toISOString() });
    const first: AgentState = {
      version: 1,
      nodeId: node.nodeId,
      name: node.name,
      site: node.site,
      overlayAddress: node.overlayAddress,
      overlayCidr: agent.enrolled.overlayCidr,
      controllerUrl: "https://127.0.0.1:1",
      nats: agent.enrolled.nats,
      heartbeatSeconds: 5,
      enrolledAt: node.enrolledAt,
      applied: { revision: 1, peers: [own], appliedAt: new Date().toISOString() },
    };
    state = await StateHolder.create(dir, first);
    spiffe = new SpiffeService({ nc: agent.nc, state, workloads: [], hostUids: [process.getuid?.() ?? 0], socketPath: socket(), log });
    await spiffe.start();
    client = new Client(`unix://${socket()}`, grpc.credentials.createInsecure()) as typeof client;
  });

  afterAll(async () => {
    client?.close();
    await spiffe?.stop();
    await agent?.nc.close().catch(() => {});
    await t?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Reads `count` messages of a server stream (or its error), then cancels it. */
  const take = (method: string, count: number, md = header(), timeoutMs = 20_000): Promise<{ messages: Msg[]; error?: grpc.ServiceError }> =>
    new Promise((resolve) => {
      const messages: Msg[] = [];
      const call = client[method]!({}, md) as grpc.ClientReadableStream<Msg>;
      const timer = setTimeout(() => {
        call.cancel();
        resolve({ messages });
      }, timeoutMs);
      call.on("data", (m: Msg) => {
        messages.push(m);
        if (messages.length >= count) {
          clearTimeout(timer);
          call.cancel();
          resolve({ messages });
        }
      });
      call.on("error", (error: grpc.ServiceError) => {
        clearTimeout(timer);
        resolve({ messages, error: error.code === grpc.status.CANCELLED ? undefined : error });
      });
    });
  const unary = (method: string, req: Msg, md = header()): Promise<{ reply?: Msg; error?: grpc.ServiceError }> =>
    new Promise((resolve) => client[method]!(req, md, (error: grpc.ServiceError | null, reply: Msg) => resolve(error ? { error } : { reply })));

  it("spiffe - the socket is 0666 in its own directory: attestation decides, not file access", async () => {
    expect((await stat(socket())).mode & 0o777, "socket mode").toBe(0o666);
  });

  it("spiffe - a trusted host uid gets the node's X.509-SVID with a key made here and a chain to the bundle", async () => {
    const { messages, error } = await take("FetchX509SVID", 1);
    expect(error, "no error").toBeUndefined();
    const svid = (messages[0]?.svids as Msg[] | undefined)?.[0];
    expect(svid?.spiffe_id, "SPIFFE ID").toBe(NODE_ID);
    const cert = new X509Certificate(svid!.x509_svid as Buffer);
    const ca = new X509Certificate(svid!.bundle as Buffer);
    expect(cert.subjectAltName).toBe(`URI:${NODE_ID}`);
    expect(cert.checkIssued(ca) && cert.verify(ca.publicKey), "chain to the bundle").toBe(true);
    const bundle = TrustBundle.parse(spiffe.bundle.current);
    expect(new X509Certificate(bundle.x509Authorities[0]!).raw.equals(ca.raw), "the bundle sent is the published one").toBe(true);
    expect((svid!.x509_svid_key as Buffer).length, "a PKCS#8 key").toBeGreaterThan(100);
  });

  it("spiffe - a rotation reaches an open stream on the same connection", async () => {
    const t0 = Date.now();
    const { messages, error } = await take("FetchX509SVID", 2, header(), 25_000);
    expect(error, "no error on the stream").toBeUndefined();
    expect(messages.length, `messages on one stream within ${Date.now() - t0} ms`).toBe(2);
    const serials = messages.map((m) => new X509Certificate((m.svids as Msg[])[0]!.x509_svid as Buffer).serialNumber);
    expect(new Set(serials).size, `distinct serials ${serials.join(", ")}`).toBe(2);
    const keys = messages.map((m) => ((m.svids as Msg[])[0]!.x509_svid_key as Buffer).toString("hex"));
    expect(keys[0], "a rotation brings a new key").not.toBe(keys[1]);
  });

  it("spiffe - bundles stream for X.509 and JWT", async () => {
    const x = await take("FetchX509Bundles", 1);
    expect(Object.keys((x.messages[0]?.bundles as Msg) ?? {}), "X.509 bundle by trust domain").toEqual([`spiffe://${TD}`]);
    const j = await take("FetchJWTBundles", 1);
    const jwks = JSON.parse(((j.messages[0]?.bundles as Msg)[`spiffe://${TD}`] as Buffer).toString()) as { keys: { kid: string; use: string }[] };
    expect(jwks.keys.map((k) => k.use), "JWKS").toEqual(["jwt-svid"]);
  });

  it("spiffe - a JWT-SVID is fetched for the caller's identity, validated, and refused for another", async () => {
    const got = await unary("FetchJWTSVID", { audience: ["payments"] });
    expect(got.error, "no error").toBeUndefined();
    const token = ((got.reply?.svids as Msg[])[0]?.svid as string) ?? "";
    const ok = await unary("ValidateJWTSVID", { audience: "payments", svid: token });
    expect(ok.reply?.spiffe_id, "validated subject").toBe(NODE_ID);
    const wrongAudience = await unary("ValidateJWTSVID", { audience: "other", svid: token });
    expect(wrongAudience.error?.code, "another audience").toBe(grpc.status.INVALID_ARGUMENT);
    const forged = await unary("ValidateJWTSVID", { audience: "payments", svid: `${token.slice(0, -4)}AAAA` });
    expect(forged.error?.code, "a forged signature").toBe(grpc.status.INVALID_ARGUMENT);
    const other = await unary("FetchJWTSVID", { audience: ["payments"], spiffe_id: `spiffe://${TD}/ns/shop/sa/db` });
    expect(other.error?.code, "another identity").toBe(grpc.status.PERMISSION_DENIED);
    const none = await unary("FetchJWTSVID", { audience: [] });
    expect(none.error?.code, "no audience").toBe(grpc.status.INVALID_ARGUMENT);
  });

  it("spiffe - without the security header every method is refused", async () => {
    const s = await take("FetchX509SVID", 1, header(false), 5000);
    expect([s.error?.code, s.messages.length], "stream without header").toEqual([grpc.status.INVALID_ARGUMENT, 0]);
    const u = await unary("FetchJWTSVID", { audience: ["x"] }, header(false));
    expect(u.error?.code, "unary without header").toBe(grpc.status.INVALID_ARGUMENT);
  });

  it("spiffe - a malformed bundle or one of another trust domain is ignored; the last good one stays", async () => {
    const seen: string[] = [];
    const write = (line: string) => {
      const { msg, problem } = JSON.parse(line) as { msg: string; problem?: string };
      seen.push(problem ? `${msg}: ${problem}` : msg);
    };
    const capture = pino({ level: "info" }, { write });
    const watch = new TrustBundleWatch(agent.nc, capture);
    const count = (msg: string) => seen.filter((m) => m.startsWith(msg)).length;
    const waitFor = async (msg: string, times = 1) => {
      const t0 = Date.now();
      while (count(msg) < times && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
      return count(msg) >= times;
    };
    try {
      await watch.resync();
      const good = watch.current!;
      expect(good.trustDomain, "the published bundle").toBe(TD);
      const kv = await new Kvm(t.running.nc).open(Buckets.trustBundle);
      await kv.put(TRUST_BUNDLE_KEY, "{not json");
      expect(await waitFor("record refused (malformed or not for this agent)"), `log: ${seen.join("; ")}`).toBe(true);
      expect(watch.current, "after a malformed one").toEqual(good);
      await kv.put(TRUST_BUNDLE_KEY, JSON.stringify({ ...good, trustDomain: "evil.example", sequence: good.sequence + 1 }));
      expect(await waitFor("record refused (malformed or not for this agent); keeping the last applied one: a bundle of another trust domain (evil.example)"), `log: ${seen.join("; ")}`).toBe(true);
      expect(watch.current, "after another trust domain's").toEqual(good);
      await kv.put(TRUST_BUNDLE_KEY, JSON.stringify({ ...good, sequence: good.sequence + 2 }));
      expect(await waitFor("trust bundle updated", 2), "a good one is taken").toBe(true);
      expect(watch.current?.sequence).toBe(good.sequence + 2);
    } finally {
      watch.stop();
    }
  });

  it("spiffe - a host process of an untrusted uid gets PERMISSION_DENIED and no SVID", async () => {
    const other = new SpiffeService({ nc: agent.nc, state, workloads: [], hostUids: [], socketPath: join(dir, "other", "api.sock"), log });
    await other.start();
    const c = new Client(`unix://${join(dir, "other", "api.sock")}`, grpc.credentials.createInsecure()) as typeof client;
    try {
      const got = await new Promise<{ n: number; error?: grpc.ServiceError }>((resolve) => {
        let n = 0;
        const call = c.FetchX509SVID!({}, header()) as grpc.ClientReadableStream<Msg>;
        call.on("data", () => n++);
        call.on("error", (error: grpc.ServiceError) => resolve({ n, error }));
      });
      expect([got.error?.code, got.n], "status and messages").toEqual([grpc.status.PERMISSION_DENIED, 0]);
      expect(got.error?.details, "says why").toMatch(/no identity issued/);
      expect(other.svids.wants(NODE_ID), "no SVID is even requested for the node with no trusted uid").toBe(false);
    } finally {
      c.close();
      await other.stop();
    }
  });
});

describe("agent spiffe (pure)", () => {
  const ns = (ino: number) => ({ dev: 4, ino });
  const ctx = { hostNetns: ns(1), hostUids: [0], workloads: [{ name: "web", netns: ns(10) }, { name: "db", netns: ns(11) }, { name: "gone", netns: undefined }] };

  it("spiffe - attestation: the namespace makes the workload, the uid only matters on the host", () => {
    expect(attest({ uid: 1000, netns: ns(10) }, ctx), "any uid in web's namespace").toEqual({ kind: "workload", workload: "web" });
    expect(attest({ uid: 0, netns: ns(11) }, ctx)).toEqual({ kind: "workload", workload: "db" });
    expect(attest({ uid: 0, netns: ns(1) }, ctx), "root on the host").toEqual({ kind: "host" });
    expect(attest({ uid: 1000, netns: ns(1) }, ctx).kind, "another uid on the host").toBe("none");
    expect(attest({ uid: 0, netns: ns(99) }, ctx).kind, "an unknown namespace").toBe("none");
    expect(attest({ uid: 0, netns: undefined }, ctx).kind, "an exited peer").toBe("none");
    const shared = { ...ctx, workloads: [{ name: "a", netns: ns(5) }, { name: "b", netns: ns(5) }] };
    expect(attest({ uid: 0, netns: ns(5) }, shared), "two workloads in one namespace: neither").toMatchObject({ kind: "none", reason: expect.stringContaining("a, b") });
  });

  it("spiffe - served identities: the node's when a uid is trusted, and the configured workloads' as recorded", () => {
    const w = (name: string, sa: string): Workload => ({ name, address: "100.80.0.1", identity: { id: 300, spiffeId: `spiffe://${TD}/ns/shop/sa/${sa}` } });
    const s = { nodeId: "n-0000000000000001", workloads: [w("web", "web"), w("old", "old")], applied: { revision: 1, appliedAt: "", peers: [{ nodeId: "n-0000000000000001", identity: { id: 299, spiffeId: NODE_ID } }] } } as unknown as AgentState;
    expect(nodeSpiffeId(s)).toBe(NODE_ID);
    expect(servedIds(s, [{ name: "web" }], [0])).toEqual([NODE_ID, `spiffe://${TD}/ns/shop/sa/web`]);
    expect(servedIds(s, [{ name: "web" }], []), "no trusted uid: no node SVID").toEqual([`spiffe://${TD}/ns/shop/sa/web`]);
    expect(renewAt(1000, 5000), "renewal half-way").toBe(3000);
  });
});

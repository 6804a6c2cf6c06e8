/**
 * The trust domain's authority against a real controller and real agent credentials: SVIDs are
 * signed from a CSR only for the node's own identity and its workloads' (as recorded), chain to the
 * published bundle's CA and carry exactly that SPIFFE ID; JWT-SVIDs verify with the bundle's keys;
 * another node's identity, another node's subject, a bad CSR and garbage are refused, nothing is
 * stored and the controller keeps serving; every agent reads the bundle and none may write it; the
 * CA and JWT key persist (0600) across a restart, separate from the API's CA.
 */
import { X509Certificate, generateKeyPairSync, webcrypto } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { Kvm } from "@nats-io/kv";
import { jetstream } from "@nats-io/jetstream";
import { createLocalJWKSet, jwtVerify } from "jose";
import { Buckets, generateKeyPair, JwtSvidReply, Subjects, TRUST_BUNDLE_KEY, TrustBundle, WorkloadsReply, X509SvidReply } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newSvidKey } from "../../agent/src/spiffe/csr.js";
import { enrollAgent, startTestController, until, type EnrolledAgent, type TestController } from "../../controller/src/testing.js";
import { svidIdsOf } from "../../controller/src/spiffe/service.js";

const TD = "weft.internal";
const id = (ns: string, sa: string) => `spiffe://${TD}/ns/${ns}/sa/${sa}`;

let t: TestController;
let stateDir: string;
let a: EnrolledAgent;
let b: EnrolledAgent;

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), "weft-spiffe-ctl-"));
  t = await startTestController({}, { stateDir });
  const keyA = await t.client.createJoinKey({ labels: { "weft:namespace": "shop", "weft:serviceaccount": "node-a", "weft:workload-namespaces": "shop" } });
  const keyB = await t.client.createJoinKey({ labels: { "weft:namespace": "shop", "weft:serviceaccount": "node-b", "weft:workload-namespaces": "shop" } });
  a = await enrollAgent(t, keyA.key, generateKeyPair().publicKey);
  b = await enrollAgent(t, keyB.key, generateKeyPair().publicKey);
  // Each node records one workload: a has shop/web, b has shop/db.
  for (const [agent, sa] of [
    [a, "web"],
    [b, "db"],
  ] as const) {
    const reply = WorkloadsReply.parse((await agent.nc.request(Subjects.workloads(agent.enrolled.nodeId), JSON.stringify({ version: 1, workloads: [{ name: sa, namespace: "shop", serviceAccount: sa }] }), { timeout: 3000 })).json());
    if (!reply.ok) throw new Error(`workloads for ${sa}: ${JSON.stringify(reply)}`);
  }
});
afterAll(async () => {
  for (const x of [a, b]) await x?.nc.close().catch(() => {});
  await t?.stop();
  await rm(stateDir, { recursive: true, force: true });
});

async function askX509(agent: EnrolledAgent, body: unknown, nodeId = agent.enrolled.nodeId): Promise<X509SvidReply> {
  return X509SvidReply.parse((await agent.nc.request(Subjects.x509Svid(nodeId), JSON.stringify(body), { timeout: 3000 })).json());
}

async function bundle(): Promise<TrustBundle> {
  const kv = await new Kvm(t.running.nc).open(Buckets.trustBundle);
  return TrustBundle.parse((await kv.get(TRUST_BUNDLE_KEY))?.json());
}

describe("spiffe authority", () => {
  it("spiffe - an X.509-SVID for the node's own identity and for its workload chains to the bundle's CA with exactly that ID", async () => {
    const ca = new X509Certificate((await bundle()).x509Authorities[0]!);
    for (const want of [id("shop", "node-a"), id("shop", "web")]) {
      const key = await newSvidKey(want);
      const reply = await askX509(a, { version: 1, spiffeId: want, csr: key.csrPem });
      expect(reply.ok, `sign ${want}: got ${JSON.stringify(reply)}`).toBe(true);
      if (!reply.ok) continue;
      const cert = new X509Certificate(reply.certificate);
      expect(cert.subjectAltName, `SAN of ${want}`).toBe(`URI:${want}`);
      expect(cert.checkIssued(ca) && cert.verify(ca.publicKey), "signed by the bundle's CA").toBe(true);
      expect(cert.ca, "not a CA").toBe(false);
      const lifetime = (Date.parse(cert.validTo) - Date.now()) / 1000;
      expect(lifetime, "about the default 1 h lifetime").toBeGreaterThan(3500);
      expect(lifetime).toBeLessThan(3700);
      // The certificate is over the key made by the agent: the private key never travelled.
      const pub = (await webcrypto.subtle.importKey("pkcs8", key.pkcs8, { name: "ECDSA", namedCurve: "P-256" }, true, ["sign"])) as webcrypto.CryptoKey;
      const jwk = await webcrypto.subtle.exportKey("jwk", pub);
      const certJwk = cert.publicKey.export({ format: "jwk" });
      expect([certJwk.x, certJwk.y], "certificate key = the agent's key").toEqual([jwk.x, jwk.y]);
      const parsed = new x509.X509Certificate(reply.certificate);
      expect(parsed.getExtension(x509.ExtendedKeyUsageExtension)?.usages, "serverAuth and clientAuth").toEqual([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);
    }
  });

  it("spiffe - another node's identity, another node's workload and an unknown ID are refused as forbidden", async () => {
    for (const other of [id("shop", "node-b"), id("shop", "db"), id("shop", "nobody")]) {
      const key = await newSvidKey(other);
      const reply = await askX509(a, { version: 1, spiffeId: other, csr: key.csrPem });
      expect(reply, `node a asking for ${other}`).toMatchObject({ ok: false, error: { code: "forbidden" } });
    }
    expect([...svidIdsOf({ identity: { id: 300, spiffeId: id("x", "y") }, workloads: [{ name: "w", address: "100.80.0.1", identity: { id: 301, spiffeId: id("x", "z") } }] })].sort()).toEqual([id("x", "y"), id("x", "z")]);
  });

  it("spiffe - a recorded workload's SVID is refused once the node is no longer granted its identity; the node's own still signs", async () => {
    const kv = await new Kvm(t.running.nc).open(Buckets.nodes);
    const entry = await kv.get(b.enrolled.nodeId);
    const record = entry!.json<{ labels: Record<string, string> }>();
    const { "weft:workload-namespaces": _granted, ...labels } = record.labels;
    await kv.put(b.enrolled.nodeId, JSON.stringify({ ...record, labels }));
    try {
      const workload = await askX509(b, { version: 1, spiffeId: id("shop", "db"), csr: (await newSvidKey(id("shop", "db"))).csrPem });
      expect(workload, "shop/db after the grant is gone").toMatchObject({ ok: false, error: { code: "forbidden", message: expect.stringMatching(/no longer granted/) } });
      const own = await askX509(b, { version: 1, spiffeId: id("shop", "node-b"), csr: (await newSvidKey(id("shop", "node-b"))).csrPem });
      expect(own.ok, `its own identity: got ${JSON.stringify(own).slice(0, 200)}`).toBe(true);
    } finally {
      await kv.put(b.enrolled.nodeId, JSON.stringify(record));
    }
  });

  it("spiffe - another node's SVID subject is closed to an agent's credential: no answer, a permission error", async () => {
    const key = await newSvidKey(id("shop", "db"));
    const err = await a.nc.request(Subjects.x509Svid(b.enrolled.nodeId), JSON.stringify({ version: 1, spiffeId: id("shop", "db"), csr: key.csrPem }), { timeout: 1500 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, "a request on node b's subject with node a's credential gets no answer").toBeInstanceOf(Error);
    expect(await until(() => a.errors.some((e) => /permission/i.test(e.message) && e.message.includes(Subjects.x509Svid(b.enrolled.nodeId))), 2000), `permission error: ${a.errors.map(String).join("; ")}`).toBe(true);
    const jwtErr = await a.nc.request(Subjects.jwtSvid(b.enrolled.nodeId), JSON.stringify({ version: 1, spiffeId: id("shop", "db"), audience: ["x"] }), { timeout: 1500 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(jwtErr, "a JWT request on node b's subject gets no answer").toBeInstanceOf(Error);
  });

  it("spiffe - a bad CSR, a key of the wrong type, a CSR whose signature fails and garbage are refused naming the field", async () => {
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const rsaKeys = {
      privateKey: await webcrypto.subtle.importKey("pkcs8", rsa.privateKey.export({ type: "pkcs8", format: "der" }), { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["sign"]),
      publicKey: await webcrypto.subtle.importKey("spki", rsa.publicKey.export({ type: "spki", format: "der" }), { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, true, ["verify"]),
    } as webcrypto.CryptoKeyPair;
    const rsaCsr = await x509.Pkcs10CertificateRequestGenerator.create({ keys: rsaKeys, signingAlgorithm: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } }, webcrypto as never);
    const good = (await newSvidKey(id("shop", "web"))).csrPem;
    const der = Buffer.from(good.replace(/-----[A-Z ]+-----|\s/g, ""), "base64");
    der[der.length - 5] = (der[der.length - 5] ?? 0) ^ 0xff; // break the signature
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    const cases: [string, unknown, RegExp][] = [
      ["not a CSR", { version: 1, spiffeId: id("shop", "web"), csr: "hello" }, /csr: not a PEM/],
      ["an RSA key", { version: 1, spiffeId: id("shop", "web"), csr: rsaCsr.toString("pem") }, /ECDSA P-256/],
      ["a broken signature", { version: 1, spiffeId: id("shop", "web"), csr: tampered }, /csr: /],
      ["a bad SPIFFE ID", { version: 1, spiffeId: "spiffe://weft.internal/../x", csr: good }, /spiffeId/],
      ["an unknown field", { version: 1, spiffeId: id("shop", "web"), csr: good, key: "secret" }, /key/],
    ];
    for (const [what, body, want] of cases) {
      const reply = await askX509(a, body);
      expect(reply.ok, `${what}: got ${JSON.stringify(reply)}`).toBe(false);
      if (!reply.ok) {
        expect(reply.error.code, `${what}: code`).toBe("invalid_request");
        expect(reply.error.message, `${what}: message`).toMatch(want);
      }
    }
    const raw = await a.nc.request(Subjects.x509Svid(a.enrolled.nodeId), "{not json", { timeout: 3000 });
    expect(X509SvidReply.parse(raw.json()), "not JSON").toMatchObject({ ok: false, error: { code: "invalid_request" } });
    const health = await t.client.raw("GET", "/healthz");
    expect(health.status, "the controller keeps serving").toBe(200);
  });

  it("spiffe - a JWT-SVID carries the SPIFFE ID and audience and verifies with the bundle's JWT keys", async () => {
    const reply = JwtSvidReply.parse((await a.nc.request(Subjects.jwtSvid(a.enrolled.nodeId), JSON.stringify({ version: 1, spiffeId: id("shop", "web"), audience: ["payments"] }), { timeout: 3000 })).json());
    expect(reply.ok, JSON.stringify(reply)).toBe(true);
    if (!reply.ok) return;
    const { payload, protectedHeader } = await jwtVerify(reply.token, createLocalJWKSet({ keys: (await bundle()).jwtAuthorities.map(({ use: _use, ...k }) => k) }), { audience: "payments" });
    expect([payload.sub, protectedHeader.alg], "subject and algorithm").toEqual([id("shop", "web"), "ES256"]);
    const forbidden = JwtSvidReply.parse((await a.nc.request(Subjects.jwtSvid(a.enrolled.nodeId), JSON.stringify({ version: 1, spiffeId: id("shop", "db"), audience: ["payments"] }), { timeout: 3000 })).json());
    expect(forbidden, "a JWT-SVID for node b's workload").toMatchObject({ ok: false, error: { code: "forbidden" } });
  });

  it("spiffe - every agent reads the bundle; none may write it", async () => {
    const want = await bundle();
    expect(want.trustDomain).toBe(TD);
    const kv = await new Kvm(jetstream(b.nc, { timeout: 2000 })).open(Buckets.trustBundle, { allow_direct: true });
    const got = await kv.get(TRUST_BUNDLE_KEY);
    expect(TrustBundle.parse(got?.json()), "node b reads the bundle").toEqual(want);
    const put = await kv.put(TRUST_BUNDLE_KEY, JSON.stringify({ ...want, x509Authorities: ["forged"] })).then(
      () => "written",
      (e: unknown) => String(e),
    );
    expect(put, "an agent writing the bundle").toMatch(/permission/i);
    expect(await bundle(), "bundle unchanged").toEqual(want);
  });

  it("spiffe - the CA and JWT key persist 0600 across a restart, separate from the API's CA, and the bundle is not rewritten", async () => {
    const before = await bundle();
    const caKey = await stat(join(stateDir, "spiffe", "ca.key"));
    const jwtKey = await stat(join(stateDir, "spiffe", "jwt.key"));
    expect([caKey.mode & 0o777, jwtKey.mode & 0o777], "key modes").toEqual([0o600, 0o600]);
    const apiCa = await readFile(join(stateDir, "tls", "ca.crt"), "utf8");
    expect(before.x509Authorities[0], "the trust domain's CA is not the API's CA").not.toBe(apiCa);
    await a.nc.close();
    await b.nc.close();
    await t.stop();
    t = await startTestController({}, { stateDir });
    expect(await bundle(), "same bundle, same sequence after a restart").toEqual(before);
  });
});

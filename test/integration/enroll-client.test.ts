/**
 * Enrollment over HTTPS with a pinned CA, against a real controller and fake
 * ones: the right pin enrolls and hands back the CA; a wrong pin, a man in the
 * middle with its own CA, and one that shows the real CA above its own
 * certificate are all refused with ControllerIdentityError before the join key
 * is sent, and nothing is stored on either side.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import "reflect-metadata";
import { createPrivateKey, webcrypto } from "node:crypto";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { spkiHash, generateKeyPair, type EnrollRequest } from "@weft/protocol";
import { pino } from "pino";
import { ZodError } from "zod";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCa, issueServerCertificate } from "../../controller/src/tls/certs.js";
import { agentIdentity, assertNothingStored, startTestController, storedState, type TestController } from "../../controller/src/testing.js";
import { startAgent } from "../../agent/src/agent.js";
import { ControllerIdentityError } from "../../agent/src/errors.js";
import { CONTROLLER_CA_FILE, enroll } from "../../agent/src/enroll/client.js";

const log = pino({ level: "silent" });
let t: TestController;
let scratch: string;

beforeAll(async () => {
  t = await startTestController();
  scratch = await mkdtemp(join(tmpdir(), "weft-enroll-tls-"));
});
afterAll(async () => {
  await t?.stop();
  await rm(scratch, { recursive: true, force: true });
});

/** A TLS server on 127.0.0.1 posing as the controller; it records every byte of application data. */
interface FakeController {
  url: string;
  caHash: string;
  connections: number;
  received: string;
  close(): Promise<void>;
}

async function fakeController(opts: { posingAsRealCa?: boolean } = {}): Promise<FakeController> {
  const now = new Date();
  const notAfter = new Date(now.getTime() + 86_400_000);
  const ca = await createCa({ now, notAfter });
  const leaf = opts.posingAsRealCa ? await forgedLeaf(ca, now, notAfter) : await issueServerCertificate(ca, { sans: ["127.0.0.1", "localhost"], now, notAfter });
  const chain = `${leaf.certPem.trimEnd()}\n${opts.posingAsRealCa ? t.running.caPem! : ca.certPem}`;
  const fake = { url: "", caHash: spkiHash(ca.certPem), connections: 0, received: "" };
  const server: Server = createServer({ key: leaf.keyPem, cert: chain }, (req, res) => {
    res.writeHead(201, { "content-type": "application/json" }).end("{}");
  });
  server.on("secureConnection", (socket) => {
    fake.connections++;
    socket.on("data", (d: Buffer) => (fake.received += d.toString("utf8")));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  fake.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { ...fake, get connections() { return fake.connections; }, get received() { return fake.received; }, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/**
 * A leaf that names the real CA as its issuer (subject and key identifier, so TLS
 * clients link the real CA above it) but is signed by the attacker's key.
 */
async function forgedLeaf(signer: { keyPem: string }, now: Date, notAfter: Date): Promise<{ certPem: string; keyPem: string }> {
  const subtle = webcrypto.subtle;
  const real = new x509.X509Certificate(t.running.caPem!);
  const realKeyId = real.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
  const signingKey = await subtle.importKey("pkcs8", createPrivateKey(signer.keyPem).export({ type: "pkcs8", format: "der" }), { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
  const keys = await subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.create({
    subject: "CN=weft controller API, O=weft",
    issuer: real.subject,
    notBefore: new Date(now.getTime() - 3_600_000),
    notAfter,
    publicKey: keys.publicKey,
    signingKey,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions: [
      new x509.SubjectAlternativeNameExtension([{ type: "ip", value: "127.0.0.1" }]),
      new x509.AuthorityKeyIdentifierExtension(realKeyId),
    ],
  });
  const der = Buffer.from(await subtle.exportKey("pkcs8", keys.privateKey));
  return { certPem: cert.toString("pem"), keyPem: createPrivateKey({ key: der, format: "der", type: "pkcs8" }).export({ type: "pkcs8", format: "pem" }).toString() };
}

async function newKey(): Promise<{ id: string; key: string }> {
  return t.client.createJoinKey({ reusable: false });
}

async function usesOf(id: string): Promise<number | undefined> {
  return (await t.client.listJoinKeys()).find((k) => k.id === id)?.uses;
}

const body = (joinKey: string) => agentIdentity(joinKey, generateKeyPair().publicKey).body as unknown as EnrollRequest;

describe("agent enroll tls", () => {
  it("agent enroll - with the right pin the agent enrolls over https and gets the controller's CA", async () => {
    const key = await newKey();
    const res = await enroll(t.running.apiUrl, body(key.key), { caHash: t.running.caHash });
    expect(res.response.nodeId, "node id").toMatch(/^n-[0-9a-f]{16}$/);
    expect(res.caPem, "CA handed back for the state dir").toBe(t.running.caPem);
    expect(await usesOf(key.id), "key use count").toBe(1);
  });

  it("agent enroll - a wrong pin fails with ControllerIdentityError before the join key is sent; nothing is stored", async () => {
    const key = await newKey();
    const before = await storedState(t);
    const wrong = `sha256:${"ab".repeat(32)}`;
    const err = await enroll(t.running.apiUrl, body(key.key), { caHash: wrong }).then(
      () => new Error("enrolled, want ControllerIdentityError"),
      (e: unknown) => e,
    );
    expect(err, "error").toBeInstanceOf(ControllerIdentityError);
    expect((err as ControllerIdentityError).retryable, "retryable").toBe(false);
    expect((err as Error).message, "message").toBe(`enroll: controller certificate does not match --ca-hash (got ${t.running.caHash}); check the hash from \`weft keys create\``);
    expect(await usesOf(key.id), "key use count: the controller never saw the join key").toBe(0);
    await assertNothingStored(t, before, "enrollment with a wrong pin");
  });

  it("agent enroll - a man in the middle with its own CA is refused before any request byte; the real pin never trusts it", async () => {
    const fake = await fakeController();
    try {
      const key = await newKey();
      const err = await enroll(fake.url, body(key.key), { caHash: t.running.caHash }).then(
        () => new Error("enrolled with the fake controller, want ControllerIdentityError"),
        (e: unknown) => e,
      );
      expect(err, "error").toBeInstanceOf(ControllerIdentityError);
      expect((err as Error).message, "message names the fake CA's hash").toContain(`(got ${fake.caHash})`);
      expect(fake.received, "application data the fake server received").toBe("");
      expect(fake.received.includes(key.key), "the fake server got the join key").toBe(false);
      expect(await usesOf(key.id), "key use count").toBe(0);
    } finally {
      await fake.close();
    }
  });

  it("agent enroll - a man in the middle that shows the real CA above a certificate naming it as issuer is refused too", async () => {
    const fake = await fakeController({ posingAsRealCa: true });
    try {
      const key = await newKey();
      const err = await enroll(fake.url, body(key.key), { caHash: t.running.caHash }).then(
        () => new Error("enrolled with the fake controller, want ControllerIdentityError"),
        (e: unknown) => e,
      );
      expect(err, "error").toBeInstanceOf(ControllerIdentityError);
      expect((err as Error).message, "message").toMatch(/presents the pinned CA but its certificate is not signed by it/);
      expect(fake.received, "application data the fake server received").toBe("");
      expect(await usesOf(key.id), "key use count").toBe(0);
    } finally {
      await fake.close();
    }
  });
});

describe("agent start tls", () => {
  it("agent start - a wrong pin stops the agent with ControllerIdentityError and writes no state.json or CA", async () => {
    const key = await newKey();
    const stateDir = join(scratch, "wrong-pin");
    const err = await startAgent(
      { stateDir, controllerUrl: t.running.apiUrl, controllerCaHash: `sha256:${"cd".repeat(32)}`, joinKey: key.key, name: "wrong-pin", endpoints: { private: "10.0.0.9:51820" } },
      log,
    ).then(
      () => new Error("agent started, want ControllerIdentityError"),
      (e: unknown) => e,
    );
    expect(err, "error").toBeInstanceOf(ControllerIdentityError);
    const files = await readdir(stateDir);
    expect(files.filter((f) => f === "state.json" || f === CONTROLLER_CA_FILE), "enrollment files in the state dir").toEqual([]);
    expect(await usesOf(key.id), "key use count").toBe(0);
  });

  it("agent config - an https controller needs --ca-hash, and a pin needs https", async () => {
    const cases = [
      { what: "https without a pin", config: { controllerUrl: "https://198.19.0.2:8080" }, want: /required for an https controller URL/ },
      { what: "http with a pin", config: { controllerUrl: "http://198.19.0.2:8080", controllerCaHash: t.running.caHash }, want: /needs an https:\/\/ controller URL/ },
      { what: "a malformed pin", config: { controllerUrl: "https://198.19.0.2:8080", controllerCaHash: "sha1:abcd" }, want: /sha256: followed by 64 hex digits/ },
    ];
    for (const c of cases) {
      const stateDir = join(scratch, c.what.replace(/\W+/g, "-"));
      const err = await startAgent({ stateDir, joinKey: "weft_x_y", ...c.config }, log).then(
        () => new Error("agent started"),
        (e: unknown) => e,
      );
      expect(err, `${c.what}: error`).toBeInstanceOf(ZodError);
      expect((err as ZodError).issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "), `${c.what}: issues`).toMatch(c.want);
      expect(existsSync(stateDir), `${c.what}: state dir created`).toBe(false);
    }
  });
});

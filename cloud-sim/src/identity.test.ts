/**
 * The simulators' signed instance identity on the wire, at the real paths and in the real shapes:
 * AWS `rsa2048` (base64 PKCS#7 lines whose content is the document, a new launch after a start),
 * Azure `attested/document` (pkcs7 + signature; the content's fields, nonce and timeStamp), GCE
 * `service-accounts/default/identity` (an RS256 JWT with Google's claims; compute_engine only with
 * format=full); `PUT /_sim/identity` ages what is issued; `writeSimTrust` writes the trust files.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as asn1js from "asn1js";
import { decodeJwt, decodeProtectedHeader } from "jose";
import * as pkijs from "pkijs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAwsSim, type AwsSim } from "./aws/index.js";
import { startAzureSim, type AzureSim } from "./azure/index.js";
import { startGcpSim, type GcpSim } from "./gcp/index.js";
import { SIM_TRUST_FILES, writeSimTrust } from "./trust.js";

let aws: AwsSim;
let azure: AzureSim;
let gcp: GcpSim;
const SUB = "6f1c0a9e-3b7d-4c1e-9a51-2f4e8d7c6b10";

beforeAll(async () => {
  [aws, azure, gcp] = await Promise.all([
    startAwsSim({ account: "111122223333", metadata: { host: "127.0.0.1", port: 0 } }),
    startAzureSim({ host: "127.0.0.1", port: 0, subscriptionId: SUB, metadata: { host: "127.0.0.1", port: 0 } }),
    startGcpSim({ project: "weft-lab", projectNumber: "123456789012", metadata: { host: "127.0.0.1", port: 0 } }),
  ]);
  aws.store.addInstance({ id: "i-0123456789abcdef0", name: "a", region: "eu-west-1", zone: "eu-west-1b", network: "vpc", privateIp: "127.0.0.1", tags: {} });
  azure.store.addInstance({ id: "5d7c0b6e-7a43-4f0b-9c1e-1f2d3c4b5a69", name: "z", region: "westeurope", network: "vnet", privateIp: "127.0.0.1", tags: {} });
  gcp.store.addInstance({ id: "gce-one", name: "g", region: "europe-west1", zone: "europe-west1-b", network: "net", privateIp: "127.0.0.1", tags: {} });
});
afterAll(async () => {
  await Promise.all([aws?.close(), azure?.close(), gcp?.close()]);
});

/** The content of a base64 PKCS#7 SignedData, and how many certificates it carries. */
function pkcs7(base64: string): { content: string; certificates: number } {
  const info = new pkijs.ContentInfo({ schema: asn1js.fromBER(new Uint8Array(Buffer.from(base64.replace(/\s+/g, ""), "base64"))).result });
  const sd = new pkijs.SignedData({ schema: info.content });
  return { content: new TextDecoder().decode(sd.encapContentInfo.eContent!.getValue()), certificates: sd.certificates?.length ?? 0 };
}

async function awsGet(path: string): Promise<string> {
  const token = await (await fetch(`${aws.metadataUrl}/latest/api/token`, { method: "PUT", headers: { "x-aws-ec2-metadata-token-ttl-seconds": "60" } })).text();
  const res = await fetch(`${aws.metadataUrl}${path}`, { headers: { "x-aws-ec2-metadata-token": token } });
  expect(res.status, `GET ${path}`).toBe(200);
  return res.text();
}

describe("signed instance identity", () => {
  it("aws identity - rsa2048 is base64 in 64-character lines of a PKCS#7 without certificates whose content is the document", async () => {
    const document = await awsGet("/latest/dynamic/instance-identity/document");
    const rsa2048 = await awsGet("/latest/dynamic/instance-identity/rsa2048");
    expect(rsa2048.split("\n").every((l) => l.length <= 64 && /^[A-Za-z0-9+/=]+$/.test(l)), "base64 lines").toBe(true);
    expect(pkcs7(rsa2048), "the PKCS#7").toEqual({ content: document, certificates: 0 });
  });

  it("aws identity - a stopped instance that starts is a new launch: its document's pendingTime moves", async () => {
    const before = JSON.parse(await awsGet("/latest/dynamic/instance-identity/document")) as { pendingTime: string };
    await new Promise((r) => setTimeout(r, 1100));
    aws.store.setState("i-0123456789abcdef0", "stopped");
    aws.store.setState("i-0123456789abcdef0", "running");
    const after = JSON.parse(await awsGet("/latest/dynamic/instance-identity/document")) as { pendingTime: string };
    expect(Date.parse(after.pendingTime), `pendingTime ${before.pendingTime} → ${after.pendingTime}`).toBeGreaterThan(Date.parse(before.pendingTime));
  });

  it("azure identity - the attested document is {encoding: pkcs7, signature} over the VM's signed fields, the nonce, and a 6 h timeStamp", async () => {
    const res = await fetch(`${azure.metadataUrl!}/metadata/attested/document?api-version=2021-02-01&nonce=0123456789`, { headers: { Metadata: "true" } });
    const body = (await res.json()) as { encoding: string; signature: string };
    expect(body.encoding, "encoding").toBe("pkcs7");
    const signed = pkcs7(body.signature);
    expect(signed.certificates, "certificates in the PKCS#7 (the signer only)").toBe(1);
    const content = JSON.parse(signed.content) as Record<string, unknown> & { timeStamp: { createdOn: string; expiresOn: string } };
    expect(Object.keys(content).sort(), "fields").toEqual(["licenseType", "nonce", "plan", "sku", "subscriptionId", "timeStamp", "vmId"]);
    expect({ nonce: content.nonce, vmId: content.vmId, subscriptionId: content.subscriptionId }, "signed values").toEqual({ nonce: "0123456789", vmId: "5d7c0b6e-7a43-4f0b-9c1e-1f2d3c4b5a69", subscriptionId: SUB });
    expect(content.timeStamp.createdOn, "IMDS timestamp form").toMatch(/^\d{2}\/\d{2}\/\d{2} \d{2}:\d{2}:\d{2} -0000$/);
  });

  it("azure identity - without a nonce IMDS puts the time there; with an aged identity the document was created that long ago", async () => {
    const get = async (q: string) => {
      const body = (await (await fetch(`${azure.metadataUrl!}/metadata/attested/document?api-version=2021-02-01${q}`, { headers: { Metadata: "true" } })).json()) as { signature: string };
      return JSON.parse(pkcs7(body.signature).content) as { nonce: string; timeStamp: { createdOn: string } };
    };
    expect((await get("")).nonce, "nonce when none is asked for").toMatch(/^\d{8}-\d{6}$/);
    await azure.admin.identityAge(7 * 3600);
    try {
      const created = (await get("&nonce=1")).timeStamp.createdOn;
      const [mo, d, y, h] = created.split(/[/ :]/).map(Number) as number[];
      const ageHours = (Date.now() - Date.UTC(2000 + y!, mo! - 1, d!, h!)) / 3_600_000;
      expect(ageHours, `createdOn ${created}`).toBeGreaterThan(6);
    } finally {
      await azure.admin.identityAge(0);
    }
  });

  it("gcp identity - an RS256 JWT from Google's issuer for the audience asked, an hour long; compute_engine claims only with format=full", async () => {
    const get = async (q: string) => (await (await fetch(`${gcp.metadataUrl!}/computeMetadata/v1/instance/service-accounts/default/identity?${q}`, { headers: { "Metadata-Flavor": "Google" } })).text()).trim();
    const full = await get("audience=https://ctl:8080&format=full");
    expect(decodeProtectedHeader(full), "header").toMatchObject({ alg: "RS256", typ: "JWT", kid: gcp.identity.jwks.keys[0]!.kid });
    const claims = decodeJwt(full);
    expect({ iss: claims.iss, aud: claims.aud, life: (claims.exp ?? 0) - (claims.iat ?? 0), email: claims.email }, "claims").toEqual({
      iss: "https://accounts.google.com",
      aud: "https://ctl:8080",
      life: 3600,
      email: "123456789012-compute@developer.gserviceaccount.com",
    });
    expect((claims.google as { compute_engine: Record<string, unknown> }).compute_engine, "compute_engine").toMatchObject({ project_id: "weft-lab", project_number: 123456789012, zone: "europe-west1-b", instance_name: "g", instance_id: expect.stringMatching(/^\d+$/) });
    expect(decodeJwt(await get("audience=x")).google, "format=standard").toBeUndefined();
    await gcp.admin.identityAge(7200);
    try {
      expect((decodeJwt(await get("audience=x")).exp ?? 0) * 1000, "an aged token's exp").toBeLessThan(Date.now());
    } finally {
      await gcp.admin.identityAge(0);
    }
  });

  it("sim trust - writeSimTrust writes each cloud's trust files under their role names", async () => {
    const dir = await mkdtemp(join(tmpdir(), "weft-sim-trust-"));
    try {
      const paths = { ...(await writeSimTrust(dir, aws.identity)), ...(await writeSimTrust(dir, azure.identity)), ...(await writeSimTrust(dir, gcp.identity)) };
      expect(paths, "paths").toEqual(Object.fromEntries(Object.entries(SIM_TRUST_FILES).map(([role, name]) => [role, join(dir, name)])));
      expect(await readFile(paths.aws!, "utf8"), "aws certificate").toBe(aws.identity.certificatePem);
      expect(JSON.parse(await readFile(paths.gcpJwks!, "utf8")), "gcp jwks").toEqual(gcp.identity.jwks);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("sim admin - PUT /_sim/identity refuses an age that is not whole seconds in range", async () => {
    for (const [what, age] of [["negative", -1], ["fraction", 1.5], ["over 30 days", 2_600_000]] as const) {
      const err = await aws.admin.identityAge(age).catch((e: unknown) => e);
      expect([(err as { status?: number }).status, (err as Error).message], what).toEqual([400, expect.stringMatching(/ageSeconds: an integer number of seconds/)]);
    }
  });
});

/**
 * The shipped trust material (controller/data/trust, provenance in SOURCES.md) and its overrides:
 * every file parses and holds what SOURCES.md says, configured files replace the shipped ones, and
 * a missing or empty file stops the controller naming it.
 */
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InstanceIdentityConfig } from "./config.js";
import { SHIPPED_TRUST_DIR, TrustConfigError, loadTrust } from "./trust.js";

const pems = (text: string) => [...text.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map((m) => new X509Certificate(m[0]));
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "weft-trust-test-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("shipped trust", () => {
  it("trust - AWS: 39 regions, each one self-signed RSA-2048 certificate valid today and for a century", async () => {
    // Most carry keyUsage digitalSignature only, so OpenSSL's checkIssued() says no: compare names and verify the signature.
    const doc = JSON.parse(await readFile(join(SHIPPED_TRUST_DIR, "aws-rsa2048.json"), "utf8")) as { certificates: Record<string, string> };
    const regions = Object.keys(doc.certificates);
    expect(regions.length, "regions").toBe(39);
    for (const region of ["us-east-1", "eu-west-1", "ap-southeast-2", "il-central-1", "mx-central-1", "us-gov-west-1", "cn-north-1"]) expect(regions, "regions shipped").toContain(region);
    const bad = regions.flatMap((r) => {
      const certs = pems(doc.certificates[r]!);
      const c = certs[0]!;
      const problems = [
        certs.length !== 1 && `${certs.length} certificates`,
        c.publicKey.asymmetricKeyDetails?.modulusLength !== 2048 && `modulus ${c.publicKey.asymmetricKeyDetails?.modulusLength}`,
        c.subject !== c.issuer && "not self-issued",
        !c.verify(c.publicKey) && "self-signature does not verify",
        Date.parse(c.validTo) < Date.parse("2190-01-01") && `expires ${c.validTo}`,
        Date.parse(c.validFrom) > Date.now() && `not valid before ${c.validFrom}`,
      ].filter(Boolean);
      return problems.length > 0 ? [`${r}: ${problems.join(", ")}`] : [];
    });
    expect(bad, "regions whose certificate is not as SOURCES.md says").toEqual([]);
  });

  it("trust - Azure: three self-signed roots; six intermediates, each valid now and signed by one of them", async () => {
    const roots = pems(await readFile(join(SHIPPED_TRUST_DIR, "azure-roots.pem"), "utf8"));
    const intermediates = pems(await readFile(join(SHIPPED_TRUST_DIR, "azure-intermediates.pem"), "utf8"));
    expect(roots.map((r) => /CN=([^\n]+)/.exec(r.subject)?.[1]).sort(), "roots").toEqual(["DigiCert Global Root G2", "Microsoft RSA Root Certificate Authority 2017", "Microsoft TLS RSA Root G2"]);
    for (const r of roots) expect(r.checkIssued(r) && r.verify(r.publicKey), `${r.subject} is self-signed`).toBe(true);
    const orphans = intermediates.filter((i) => !roots.some((r) => i.checkIssued(r) && i.verify(r.publicKey))).map((i) => i.subject);
    expect(orphans, "intermediates no shipped root signed").toEqual([]);
    const expired = intermediates.filter((i) => Date.parse(i.validTo) < Date.now()).map((i) => `${i.subject} ${i.validTo}`);
    expect(expired, "expired intermediates").toEqual([]);
    expect(intermediates.length, "intermediates").toBe(6);
  });

  it("trust - GCP: the shipped JWKS holds Google's RS256 keys by id", async () => {
    const jwks = JSON.parse(await readFile(join(SHIPPED_TRUST_DIR, "gcp-jwks.json"), "utf8")) as { keys: { kid: string; kty: string; alg: string; n: string }[] };
    expect(jwks.keys.map((k) => `${k.kid} ${k.kty} ${k.alg}`), "keys").toEqual(["73e25f9789119c7875d58087a78ac23f5ef2eda3 RSA RS256", "c88d809f4db943df53da7accfd47764d05ba391f RSA RS256"]);
  });

  it("trust - the defaults load the shipped files: 39 AWS regions, 3 Azure roots and 6 intermediates, no GCP audience", async () => {
    const t = await loadTrust(InstanceIdentityConfig.parse({}));
    expect({ aws: t.aws.byRegion.size, roots: t.azure.roots.length, intermediates: t.azure.intermediates.length, audience: t.gcp.audience }, "loaded").toEqual({ aws: 39, roots: 3, intermediates: 6, audience: undefined });
  });
});

describe("configured trust", () => {
  it("trust - configured files replace the shipped ones entirely", async () => {
    const aws = (await readFile(join(SHIPPED_TRUST_DIR, "aws-rsa2048.json"), "utf8")).match(/"us-east-1": "([^"]+)"/)![1]!.replace(/\\n/g, "\n");
    await writeFile(join(dir, "aws.pem"), aws);
    const t = await loadTrust(InstanceIdentityConfig.parse({ aws: { certificates: { "*": join(dir, "aws.pem") } }, gcp: { audience: "https://c:1", jwksFile: join(SHIPPED_TRUST_DIR, "gcp-jwks.json") } }));
    expect([...t.aws.byRegion.keys()], "aws regions").toEqual(["*"]);
    expect(t.gcp.audience, "gcp audience").toBe("https://c:1");
  });

  it("trust - a missing file, a file without a certificate and a file that is no JWKS stop the load, naming the option and the path", async () => {
    const missing = join(dir, "nope.pem");
    await writeFile(join(dir, "empty.pem"), "# nothing here\n");
    await writeFile(join(dir, "bad.json"), '{"keys": []}');
    const cases: [string, object, RegExp][] = [
      ["missing roots", { azure: { rootsFile: missing } }, /inventory\.instanceIdentity\.azure\.rootsFile: cannot read .*nope\.pem/],
      ["empty aws pem", { aws: { certificates: { "eu-west-1": join(dir, "empty.pem") } } }, /aws\.certificates\.eu-west-1: .*empty\.pem holds no PEM certificate/],
      ["jwks without keys", { gcp: { jwksFile: join(dir, "bad.json") } }, /gcp\.jwksFile .*bad\.json: not a JWKS/],
    ];
    for (const [what, config, want] of cases) {
      const err = await loadTrust(InstanceIdentityConfig.parse(config)).catch((e: unknown) => e);
      expect(err, `${what}: error type`).toBeInstanceOf(TrustConfigError);
      expect((err as Error).message, `${what}: message`).toMatch(want);
    }
  });

  it("trust - the config refuses a bad region key, a non-https JWKS URL and both a JWKS file and URL", () => {
    const issues = (c: object) => InstanceIdentityConfig.safeParse(c).error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    expect(issues({ aws: { certificates: { "mars-1": "/x" } } }), "region").toEqual([expect.stringMatching(/^aws\.certificates(\.mars-1)?: /)]);
    expect(issues({ gcp: { jwksUrl: "http://www.googleapis.com/oauth2/v3/certs" } }), "http URL").toEqual(["gcp.jwksUrl: must be an https:// URL"]);
    expect(issues({ gcp: { jwksUrl: "https://www.googleapis.com/oauth2/v3/certs", jwksFile: "/x" } }), "both").toEqual(["gcp.jwksUrl: set jwksFile or jwksUrl, not both"]);
    expect(InstanceIdentityConfig.parse({}), "defaults").toEqual({ sourceAddress: "not-another-instance", aws: {}, azure: { nonceTtlSeconds: 120 }, gcp: {} });
  });
});

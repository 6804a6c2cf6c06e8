/**
 * The API's TLS material on disk: the CA is made once and kept (its pin never
 * changes), keys are mode 0600, the server certificate is reissued when its SANs
 * or expiry no longer fit, and damaged CA files stop the start rather than
 * silently changing the pin. Also the SAN and URL rules.
 */
import { X509Certificate } from "node:crypto";
import { chmod, mkdtemp, readFile, rm, stat, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spkiHash } from "@weft/protocol";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { apiUrls, requiredSans } from "./sans.js";
import { ApiTls, CA_CERT_FILE, CA_HASH_FILE, CA_KEY_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE, TlsStateError } from "./store.js";

const log = pino({ level: "silent" });
const DAY = 86_400_000;
let dir: string;

beforeEach(async () => {
  dir = join(await mkdtemp(join(tmpdir(), "weft-tls-")), "tls");
});
afterEach(async () => {
  await rm(join(dir, ".."), { recursive: true, force: true });
});

const mode = async (file: string) => ((await stat(join(dir, file))).mode & 0o777).toString(8);
const read = (file: string) => readFile(join(dir, file), "utf8");

describe("tls store", () => {
  it("tls - first start makes a P-256 CA and a server certificate signed by it; keys are 0600", async () => {
    const tls = await ApiTls.open({ dir, sans: ["127.0.0.1", "localhost", "10.1.2.3"], log });
    const ca = new X509Certificate(await read(CA_CERT_FILE));
    const server = new X509Certificate(await read(SERVER_CERT_FILE));
    expect(ca.ca, "CA certificate has CA:TRUE").toBe(true);
    expect(ca.publicKey.asymmetricKeyDetails?.namedCurve, "CA key curve").toBe("prime256v1");
    const caYears = (Date.parse(ca.validTo) - Date.now()) / (365 * DAY);
    expect(caYears, "CA lifetime in years").toBeGreaterThan(9.9);
    expect(server.ca, "server certificate has CA:TRUE").toBe(false);
    expect(server.verify(ca.publicKey), "server certificate signed by the CA").toBe(true);
    expect(server.subjectAltName, "server certificate SANs").toBe("IP Address:127.0.0.1, DNS:localhost, IP Address:10.1.2.3");
    expect(tls.caHash, "caHash is the SPKI pin of ca.crt").toBe(spkiHash(ca));
    expect(tls.caHash, "caHash format").toMatch(/^sha256:[0-9a-f]{64}$/);
    expect((await read(CA_HASH_FILE)).trim(), "ca.hash").toBe(tls.caHash);
    expect({ dir: await mode("."), caKey: await mode(CA_KEY_FILE), serverKey: await mode(SERVER_KEY_FILE), caCert: await mode(CA_CERT_FILE) }, "file modes").toEqual({
      dir: "700",
      caKey: "600",
      serverKey: "600",
      caCert: "644",
    });
    const chain = tls.serverOptions().cert;
    expect(chain.match(/BEGIN CERTIFICATE/g)?.length, "certificates in the served chain (leaf + CA)").toBe(2);
  });

  it("tls - reopening with the same SANs keeps the CA and the server certificate", async () => {
    const first = await ApiTls.open({ dir, sans: ["127.0.0.1", "localhost"], log });
    const cert = await read(SERVER_CERT_FILE);
    const second = await ApiTls.open({ dir, sans: ["localhost", "127.0.0.1"], log });
    expect(second.caHash, "CA hash after reopening").toBe(first.caHash);
    expect(await read(SERVER_CERT_FILE), "server.crt after reopening").toBe(cert);
  });

  it("tls - a change of SANs reissues the server certificate, never the CA", async () => {
    const first = await ApiTls.open({ dir, sans: ["127.0.0.1", "localhost"], log });
    const caCert = await read(CA_CERT_FILE);
    const second = await ApiTls.open({ dir, sans: ["127.0.0.1", "localhost", "ctl.example.com", "198.19.0.2"], log });
    expect(second.caHash, "CA hash after a SAN change").toBe(first.caHash);
    expect(await read(CA_CERT_FILE), "ca.crt after a SAN change").toBe(caCert);
    expect(new X509Certificate(await read(SERVER_CERT_FILE)).subjectAltName, "new server certificate SANs").toBe(
      "IP Address:127.0.0.1, DNS:localhost, DNS:ctl.example.com, IP Address:198.19.0.2",
    );
    expect(second.sans, "sans of the certificate in use").toEqual(["127.0.0.1", "localhost", "ctl.example.com", "198.19.0.2"]);
  });

  it("tls - a server certificate within 30 days of expiry is reissued, in place on a running server too", async () => {
    let now = new Date();
    const tls = await ApiTls.open({ dir, sans: ["127.0.0.1"], log, now: () => now });
    const firstExpiry = tls.serverNotAfter;
    expect((firstExpiry.getTime() - now.getTime()) / DAY, "server certificate lifetime in days").toBeGreaterThan(364);
    now = new Date(firstExpiry.getTime() - 40 * DAY);
    expect(await tls.refresh(), "refresh 40 days before expiry reissues").toBe(false);
    now = new Date(firstExpiry.getTime() - 20 * DAY);
    expect(await tls.refresh(), "refresh 20 days before expiry reissues").toBe(true);
    expect(tls.serverNotAfter.getTime(), "new expiry").toBeGreaterThan(firstExpiry.getTime());
    expect(tls.serverOptions().cert.startsWith(await read(SERVER_CERT_FILE)), "served chain starts with the new server.crt").toBe(true);
  });

  it("tls - a server certificate from another CA or a lost server key is replaced", async () => {
    await ApiTls.open({ dir, sans: ["127.0.0.1"], log });
    const cert = await read(SERVER_CERT_FILE);
    await unlink(join(dir, SERVER_KEY_FILE));
    await ApiTls.open({ dir, sans: ["127.0.0.1"], log });
    expect(await read(SERVER_CERT_FILE), "server.crt after losing server.key").not.toBe(cert);

    const otherDir = join(dir, "..", "other");
    await ApiTls.open({ dir: otherDir, sans: ["127.0.0.1"], log });
    await writeFile(join(dir, SERVER_CERT_FILE), await readFile(join(otherDir, SERVER_CERT_FILE)));
    await writeFile(join(dir, SERVER_KEY_FILE), await readFile(join(otherDir, SERVER_KEY_FILE)));
    const tls = await ApiTls.open({ dir, sans: ["127.0.0.1"], log });
    const ca = new X509Certificate(await read(CA_CERT_FILE));
    expect(new X509Certificate(await read(SERVER_CERT_FILE)).verify(ca.publicKey), "server.crt signed by this CA after replacing a foreign one").toBe(true);
    expect(tls.caHash, "CA hash").toBe(spkiHash(ca));
  });

  it("tls - a CA certificate without its key, or a key that is not its own, stops the start and leaves the files alone", async () => {
    await ApiTls.open({ dir, sans: ["127.0.0.1"], log });
    const caCert = await read(CA_CERT_FILE);
    const caKey = await read(CA_KEY_FILE);
    await unlink(join(dir, CA_KEY_FILE));
    await expect(ApiTls.open({ dir, sans: ["127.0.0.1"], log }), "open without ca.key").rejects.toThrow(TlsStateError);
    await expect(ApiTls.open({ dir, sans: ["127.0.0.1"], log }), "open without ca.key").rejects.toThrow(/ca\.key is missing/);
    expect(await read(CA_CERT_FILE), "ca.crt after a refused start").toBe(caCert);

    await writeFile(join(dir, CA_KEY_FILE), await read(SERVER_KEY_FILE), { mode: 0o600 });
    await expect(ApiTls.open({ dir, sans: ["127.0.0.1"], log }), "open with a foreign ca.key").rejects.toThrow(/is not the key of ca\.crt/);
    await writeFile(join(dir, CA_KEY_FILE), caKey);
    await chmod(join(dir, CA_KEY_FILE), 0o644);
    const tls = await ApiTls.open({ dir, sans: ["127.0.0.1"], log });
    expect(tls.caHash, "CA hash once restored").toBe(spkiHash(caCert));
    expect(await mode(CA_KEY_FILE), "ca.key mode after a start that found it 0644").toBe("600");
  });
});

describe("tls sans", () => {
  it("tls - default SANs are the host's IPv4 addresses, localhost and 127.0.0.1, plus a specific listen host", () => {
    const cases = [
      { listenHost: "0.0.0.0", configured: undefined, want: ["198.19.0.2", "10.0.0.5", "localhost", "127.0.0.1"] },
      { listenHost: "198.19.0.2", configured: undefined, want: ["198.19.0.2", "10.0.0.5", "localhost", "127.0.0.1"] },
      { listenHost: "Ctl.Example.com", configured: undefined, want: ["ctl.example.com", "198.19.0.2", "10.0.0.5", "localhost", "127.0.0.1"] },
      { listenHost: "0.0.0.0", configured: ["ctl.example.com", "2001:DB8:0:0::1"], want: ["ctl.example.com", "2001:db8::1", "localhost", "127.0.0.1"] },
    ];
    for (const c of cases) {
      expect(requiredSans({ listenHost: c.listenHost, configured: c.configured, hostAddresses: ["198.19.0.2", "10.0.0.5"] }), `listen ${c.listenHost}, sans ${c.configured}`).toEqual(c.want);
    }
  });

  it("tls - advertised URLs: the host the admin used when covered, else the non-loopback SANs, IP addresses first", () => {
    const sans = ["ctl.example.com", "198.19.0.2", "localhost", "127.0.0.1"];
    expect(apiUrls({ sans, listenHost: "0.0.0.0", port: 8080 }), "wildcard listen").toEqual(["https://198.19.0.2:8080", "https://ctl.example.com:8080"]);
    expect(apiUrls({ sans, listenHost: "0.0.0.0", port: 8080, requestHost: "ctl.example.com" }), "reached by name").toEqual(["https://ctl.example.com:8080", "https://198.19.0.2:8080"]);
    expect(apiUrls({ sans, listenHost: "0.0.0.0", port: 8080, requestHost: "evil.example.net" }), "Host header not in the certificate").toEqual([
      "https://198.19.0.2:8080",
      "https://ctl.example.com:8080",
    ]);
    expect(apiUrls({ sans, listenHost: "198.19.0.2", port: 443 }), "specific listen host").toEqual(["https://198.19.0.2:443"]);
    expect(apiUrls({ sans: ["localhost", "127.0.0.1"], listenHost: "0.0.0.0", port: 8080 }), "only loopback").toEqual(["https://127.0.0.1:8080"]);
  });
});

/**
 * The agent's NATS TLS options (`natsTls`): one TLS context made from the NATS CA, reused by every
 * connect, trusts a server whose certificate chains to that CA (by its IP address), and only that.
 */
import "reflect-metadata";
import { connect, createServer, type Server } from "node:tls";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCa, issueServerCertificate, type KeyAndCert } from "../../controller/src/tls/certs.js";
import { natsTls } from "../../agent/src/session/nats.js";

let ca: KeyAndCert;
let other: KeyAndCert;
let server: Server;
let port: number;

beforeAll(async () => {
  const now = new Date();
  const notAfter = new Date(now.getTime() + 86_400_000);
  ca = await createCa({ now, notAfter });
  other = await createCa({ now, notAfter });
  const cert = await issueServerCertificate(ca, { sans: ["127.0.0.1"], now, notAfter });
  server = createServer({ cert: cert.certPem, key: cert.keyPem }, (socket) => socket.end("ok"));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
});

/** Connects as nats.js would (its TLS options handed to tls.connect); resolves with the server's reply or the error. */
function handshake(tls: ReturnType<typeof natsTls>): Promise<string | Error> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port, rejectUnauthorized: true, ...tls }, () => {
      socket.setEncoding("utf8");
      let data = "";
      socket.on("data", (d: string) => (data += d));
      socket.on("end", () => resolve(data));
    });
    socket.on("error", (err) => resolve(err));
  });
}

describe("natsTls", () => {
  it("makes one TLS context that trusts the NATS CA, connect after connect", async () => {
    const tls = natsTls(ca.certPem);
    expect(tls.ca).toBe(ca.certPem);
    expect(await handshake(tls)).toBe("ok");
    expect(await handshake(tls)).toBe("ok");
  });

  it("trusts no other CA", async () => {
    const err = await handshake(natsTls(other.certPem));
    expect(err).toBeInstanceOf(Error);
    expect((err as NodeJS.ErrnoException).code).toMatch(/CERT|SIGNATURE|ISSUER/);
  });
});

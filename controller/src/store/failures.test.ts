/**
 * How store failures are classified and explained, on the errors a real nats-server gives: an
 * account without JetStream (what a server that has just started answers until it has loaded the
 * account) is "not processed", so the controller's start and a restore wait for it instead of failing.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBareNats, type BareNats } from "../testing-nats.js";
import { classifyStoreError, explainStoreError } from "./failures.js";

let dir: string;
let server: BareNats | undefined;
let nc: NatsConnection;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "weft-kv-errors-"));
  const conf = join(dir, "nats.conf");
  // JetStream on in the server, not in the account the client uses.
  await writeFile(conf, `jetstream: { store_dir: ${JSON.stringify(join(dir, "js"))} }\naccounts: { NOJS: { users: [{ user: "a", password: "a" }] } }\n`);
  server = await startBareNats(["-c", conf]);
  nc = await connect({ servers: `127.0.0.1:${server.port}`, user: "a", pass: "a" });
});
afterAll(async () => {
  await nc?.close();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("store errors", () => {
  it("store errors - JetStream not enabled for the account: not processed (waited for), explained with what to check", async () => {
    const err = await jetstreamManager(nc).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, "the server's answer").toBeInstanceOf(Error);
    expect(classifyStoreError(err), "classified").toBe("not-processed");
    expect(explainStoreError(err), "explained").toMatch(/not enabled for the controller's account .*has just started.*weft nats-config/);
  });
});

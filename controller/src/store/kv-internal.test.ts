/**
 * keys.ts reads KV buckets through `Bucket` from `@nats-io/kv/internal`, an entry point that is not
 * the library's API and may change in any release. This test fails when it does: the class is still
 * exported, the buckets `Kvm` opens are still instances of it (else the listing silently falls back
 * to the library's own `kv.keys()`, the one that hung), and every member keys.ts uses still exists
 * and means what keys.ts assumes, against a real nats-server (127.0.0.1, random port, temp store).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm, type KV } from "@nats-io/kv";
// eslint-disable-next-line @typescript-eslint/no-restricted-imports -- this test checks the internal entry point keys.ts uses
import { Bucket } from "@nats-io/kv/internal";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBareNats, type BareNats } from "../testing-nats.js";
import { liveEntries, liveKeys } from "./keys.js";

let dir: string;
let server: BareNats | undefined;
let nc: NatsConnection;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "weft-kv-internal-"));
  server = await startBareNats(["-js", "-sd", join(dir, "js")]);
  nc = await connect({ servers: `127.0.0.1:${server.port}` });
});
afterAll(async () => {
  await nc?.close();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("@nats-io/kv/internal as keys.ts uses it", () => {
  it("kv internal - Bucket is exported and the buckets Kvm opens are Buckets", async () => {
    expect(typeof Bucket, "typeof Bucket from @nats-io/kv/internal").toBe("function");
    const kv: KV = await new Kvm(nc).create("contract", { history: 1 });
    expect(kv instanceof Bucket, "new Kvm(nc).create() instanceof Bucket (else keys.ts falls back to kv.keys())").toBe(true);
    const opened: KV = await new Kvm(nc).open("contract");
    expect(opened instanceof Bucket, "new Kvm(nc).open() instanceof Bucket").toBe(true);
  });

  it("kv internal - stream, prefixLen and the key codec name the stream and subjects keys.ts reads", async () => {
    const kv = await new Kvm(nc).create("contract-names", { history: 1 });
    if (!(kv instanceof Bucket)) throw new Error("not a Bucket: see the test above");
    expect(kv.stream, "kv.stream").toBe("KV_contract-names");
    const subject = kv.fullKeyName(kv.encodeKey("a.b"));
    expect(subject, "kv.fullKeyName(kv.encodeKey('a.b'))").toBe("$KV.contract-names.a.b");
    expect(kv.prefixLen, "kv.prefixLen: the length of the subject prefix before the key").toBe("$KV.contract-names.".length);
    expect(kv.decodeKey(subject.substring(kv.prefixLen)), "decodeKey of the subject past prefixLen").toBe("a.b");
    for (const [what, fn] of [
      ["kv.jsm.consumers.add", kv.jsm.consumers.add],
      ["kv.jsm.consumers.delete", kv.jsm.consumers.delete],
      ["kv.js.consumers.get", kv.js.consumers.get],
    ] as const) {
      expect(typeof fn, what).toBe("function");
    }
    // The stored message is where the names say: its subject, past prefixLen, is the key.
    const put = await kv.put("a.b", "v1");
    const msg = await kv.jsm.streams.getMessage(kv.stream, { last_by_subj: subject });
    expect(msg?.seq, "the stream message's sequence is the put's revision").toBe(put);
    expect(kv.decodeKey((msg?.subject ?? "").substring(kv.prefixLen)), "key decoded from the stored subject").toBe("a.b");
  });

  it("kv internal - liveKeys and liveEntries over the internal members agree with get", async () => {
    const kv = await new Kvm(nc).create("contract-list", { history: 1 });
    for (const k of ["x.1", "x.2", "y.1"]) await kv.put(k, `value ${k}`);
    await kv.delete("x.2");
    expect((await liveKeys(kv)).sort(), "liveKeys").toEqual(["x.1", "y.1"]);
    const entries = await liveEntries(kv, "x.>");
    const want = await kv.get("x.1");
    expect(
      entries.map((e) => ({ key: e.key, value: new TextDecoder().decode(e.value), revision: e.revision })),
      "liveEntries('x.>') against kv.get",
    ).toEqual([{ key: "x.1", value: "value x.1", revision: want?.revision }]);
    const info = await kv.status();
    expect(info.streamInfo.state.consumer_count, "consumers left behind by the listings").toBe(0);
  });
});

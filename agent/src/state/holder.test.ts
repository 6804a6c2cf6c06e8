/**
 * StateHolder: the one owner of state.json. Changes from several reconcilers at once all land, in
 * memory and on disk; a change the schema refuses changes nothing; the file stays mode 0600.
 */
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StateHolder } from "./holder.js";
import { STATE_FILE, loadState, type AgentState } from "./store.js";

const enrolled: AgentState = {
  version: 1,
  nodeId: "n-00000000000000a1",
  name: "aws-1",
  site: "aws",
  overlayAddress: "100.64.0.5",
  overlayCidr: "100.64.0.0/16",
  controllerUrl: "https://198.19.0.2:8080",
  nats: { servers: ["nats://198.19.0.2:4222"], userJwt: "eyJ0eXAiOiJKV1QifQ.e30.x" },
  heartbeatSeconds: 10,
  enrolledAt: "2030-01-01T00:00:00.000Z",
};

let dir = "";
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "weft-state-holder-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("state/holder", () => {
  it("state - create writes the enrollment (mode 0600); load reads it back; nothing enrolled is undefined", async () => {
    expect(await StateHolder.load(dir), "load before enrollment").toBeUndefined();
    const created = await StateHolder.create(dir, enrolled);
    expect(created.current, "current after create").toEqual(enrolled);
    const mode = (await stat(join(dir, STATE_FILE))).mode & 0o777;
    expect(mode.toString(8), "state.json mode").toBe("600");
    expect((await StateHolder.load(dir))?.current, "loaded").toEqual(enrolled);
  });

  it("state - changes made at once by different owners all land, on disk too", async () => {
    const holder = await StateHolder.create(dir, enrolled);
    const policy = { revision: 7, record: null };
    const applied = (revision: number) => ({ revision, peers: [], appliedAt: "2030-01-01T00:00:01.000Z" });
    await Promise.all([
      holder.update({ sessionEpoch: "0123456789abcdef" }),
      holder.update({ appliedPolicy: policy }),
      ...Array.from({ length: 20 }, (_, i) => holder.update({ applied: applied(i + 1) })),
      holder.update({ workloadPrefix: "100.80.3.0/24", workloads: [] }),
    ]);
    const want = { ...enrolled, sessionEpoch: "0123456789abcdef", appliedPolicy: policy, applied: applied(20), workloadPrefix: "100.80.3.0/24", workloads: [] };
    expect(holder.current, "in memory").toEqual(want);
    expect(await loadState(dir), "on disk").toEqual(want);
  });

  it("state - a change the schema refuses throws and changes nothing", async () => {
    const holder = await StateHolder.create(dir, enrolled);
    const before = await readFile(join(dir, STATE_FILE), "utf8");
    const err = await holder.update({ sessionEpoch: "not hex!" }).catch((e: unknown) => e);
    expect(err, `got ${String(err)}, want a schema error`).toBeInstanceOf(Error);
    expect(holder.current, "in memory").toEqual(enrolled);
    expect(await readFile(join(dir, STATE_FILE), "utf8"), "on disk").toBe(before);
  });

  it("state - a change is checked field by field: an unknown field or a bad nested value throws and changes nothing", async () => {
    const holder = await StateHolder.create(dir, enrolled);
    const unknown = await holder.update({ nodeName: "x" } as unknown as Partial<AgentState>).catch((e: unknown) => e);
    expect(String(unknown), "unknown field").toMatch(/no such field nodeName/);
    const inherited = await holder.update({ constructor: "x" } as unknown as Partial<AgentState>).catch((e: unknown) => e);
    expect(String(inherited), "a name every object inherits").toMatch(/no such field constructor/);
    const badPeer = await holder.update({ applied: { revision: 1, peers: [{ nodeId: "n-1" }], appliedAt: "2030-01-01T00:00:01.000Z" } } as unknown as Partial<AgentState>).catch((e: unknown) => e);
    expect(badPeer, "a peer record without its fields").toBeInstanceOf(Error);
    expect(holder.current, "in memory").toEqual(enrolled);
    await holder.update({ sessionEpoch: "0123456789abcdef" });
    await holder.update({ sessionEpoch: "fedcba9876543210" });
    expect(holder.current, "the same fields changed twice").toEqual({ ...enrolled, sessionEpoch: "fedcba9876543210" });
  });
});

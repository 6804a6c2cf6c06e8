/**
 * StatusReporter: the one owner of status.json. Nothing is written before the first publish; a
 * burst of publishes ends with the latest status on disk; a failed write is logged, not thrown.
 */
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { STATUS_FILE, type AgentStatus } from "./file.js";
import { StatusReporter, sameJson } from "./reporter.js";

const initial: Omit<AgentStatus, "updatedAt"> = { nodeId: "n-00000000000000a1", interface: "weft0", policyRevision: -1, policyEntries: 0, nats: "connecting", stale: true, appliedRevision: 0, peers: 0 };

function recordingLogger() {
  const lines: { msg: string }[] = [];
  return { log: pino({ level: "debug" }, { write: (s: string) => void lines.push(JSON.parse(s) as { msg: string }) }), lines };
}

let dir = "";
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "weft-status-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("status/reporter", () => {
  it("status - nothing is written before the first publish; a burst ends with the latest on disk", async () => {
    const { log } = recordingLogger();
    const status = new StatusReporter(dir, initial, log);
    await status.idle();
    const missing = await readFile(join(dir, STATUS_FILE), "utf8").catch((e: NodeJS.ErrnoException) => e.code);
    expect(missing, "status.json before any publish").toBe("ENOENT");
    status.publish({ nats: "connected" });
    for (let i = 1; i <= 25; i++) status.publish({ appliedRevision: i, peers: i, stale: false });
    await status.idle();
    const got = JSON.parse(await readFile(join(dir, STATUS_FILE), "utf8")) as AgentStatus;
    expect({ ...got, updatedAt: "" }, "status.json").toEqual({ ...initial, nats: "connected", appliedRevision: 25, peers: 25, stale: false, updatedAt: "" });
    expect(got.updatedAt, "updatedAt").toBe(status.current.updatedAt);
  });

  it("status - a publish that changes no field writes nothing; one that changes a field writes", async () => {
    const { log } = recordingLogger();
    const status = new StatusReporter(dir, initial, log);
    const paths = [{ peer: "a", nodeId: "n-00000000000000a2", path: "none" as const }];
    status.publish({ nats: "connected", paths });
    await status.idle();
    const path = join(dir, STATUS_FILE);
    const first = status.current.updatedAt;
    await rm(path);
    status.publish({ nats: "connected", paths: paths.map((p) => ({ ...p })) }); // equal, not the same objects
    await status.idle();
    const rewritten = await stat(path).then(() => true, () => false);
    expect(rewritten, "status.json written again for an unchanged status").toBe(false);
    expect(status.current.updatedAt, "updatedAt of an unchanged status").toBe(first);
    status.publish({ nats: "connected", paths: [{ ...paths[0]!, rttMs: 1.5 }] });
    await status.idle();
    const got = JSON.parse(await readFile(path, "utf8")) as AgentStatus;
    expect(got.paths?.[0]?.rttMs, "rttMs after a change").toBe(1.5);
  });

  it("status - a write that fails is logged and the agent goes on", async () => {
    const { log, lines } = recordingLogger();
    const status = new StatusReporter(join(dir, "missing"), initial, log);
    status.publish({ nats: "connected" });
    await status.idle();
    expect(lines.map((l) => l.msg), "log").toContain("cannot write status file");
    expect(status.current.nats, "status kept in memory").toBe("connected");
  });

  it("status - sameJson: equal JSON-shaped values, undefined keys as absent", () => {
    const cases: [unknown, unknown, boolean][] = [
      [{ a: 1, b: [1, { c: "x" }] }, { b: [1, { c: "x" }], a: 1 }, true],
      [{ a: 1, b: undefined }, { a: 1 }, true],
      [{ a: 1 }, { a: 1, b: 2 }, false],
      [{ a: [1, 2] }, { a: [1, 2, 3] }, false],
      [{ a: [] }, { a: {} }, false],
      [null, {}, false],
      [{ a: { b: 1 } }, { a: { b: 2 } }, false],
      ["x", "x", true],
    ];
    for (const [a, b, want] of cases) expect(sameJson(a, b), `sameJson(${JSON.stringify(a)}, ${JSON.stringify(b)})`).toBe(want);
  });
});

/**
 * Root: cgroup attachment with the test program weft_test_connect4 (bpf/progs/test, SEC
 * "cgroup/connect4": TCP connects to port 7999 get EPERM). A test cgroup is created under the
 * cgroup v2 mount; child processes put themselves into it (cgroup.procs) before they connect to
 * two listeners on 127.0.0.1 (port 7999 and an ephemeral port), so the program is the only
 * difference between the two. The cgroup is detached and removed afterwards, also on failure.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { cgroupAttach, cgroupDetach, cgroupQuery, type CgroupAttachment } from "./cgroup.js";
import { BpfError } from "./errors.js";
import { BpfObject } from "./object.js";

const isRoot = process.getuid?.() === 0;
const CGROUP2 = readFileSync("/proc/self/mounts", "utf8")
  .split("\n")
  .map((l) => l.split(" "))
  .find((f) => f[2] === "cgroup2")?.[1];
if (!isRoot) console.log("bpf - cgroup root tests skipped: they need root (run `npx vitest run --project root` as root)");
else if (!CGROUP2) console.log("bpf - cgroup root tests skipped: no cgroup v2 mount");

const OBJECT = fileURLToPath(new URL("../dist/test/weft_test_connect4.o", import.meta.url));
const DENIED = 7999;
const HOST = "127.0.0.1";

/** The child: prints its cgroup and, for each port, "connected" or the error code of net.connect. */
const CHILD = `
const net = require("node:net");
const cgroup = require("node:fs").readFileSync("/proc/self/cgroup", "utf8").split("\\n").find((l) => l.startsWith("0::"));
const ports = process.argv.slice(1).map(Number);
Promise.all(ports.map((port) => new Promise((resolve) => {
  const s = net.connect({ host: "${HOST}", port });
  s.on("connect", () => { s.destroy(); resolve("connected"); });
  s.on("error", (err) => resolve(err.code));
}))).then((r) => console.log(JSON.stringify({ cgroup, results: Object.fromEntries(ports.map((p, i) => [p, r[i]])) })));
`;

interface ChildReport {
  cgroup: string;
  results: Record<string, string>;
}

describe.skipIf(!isRoot || !CGROUP2)("bpf - cgroup attach", () => {
  const cgroupRel = `/wbt-cg-${process.pid}`;
  const cg = `${CGROUP2}${cgroupRel}`;
  const objects: BpfObject[] = [];
  const attachments: CgroupAttachment[] = [];
  const servers: Server[] = [];
  const children = new Set<number>();
  let other = 0;

  const load = (): BpfObject => {
    const o = BpfObject.load(OBJECT);
    objects.push(o);
    return o;
  };
  const attach = (...args: Parameters<typeof cgroupAttach>): CgroupAttachment => {
    const a = cgroupAttach(...args);
    attachments.push(a);
    return a;
  };

  /** Runs the child in the test cgroup (it writes its own pid to cgroup.procs, then execs node). */
  const connectFromCgroup = (inCgroup = true): Promise<ChildReport> =>
    new Promise((resolve, reject) => {
      const argv = [process.execPath, "-e", CHILD, String(DENIED), String(other)];
      const child = inCgroup ? spawn("sh", ["-c", 'echo $$ > "$0" && exec "$@"', `${cg}/cgroup.procs`, ...argv]) : spawn(argv[0] ?? "node", argv.slice(1));
      if (child.pid) children.add(child.pid);
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (err += d.toString()));
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      child.on("close", (code) => {
        clearTimeout(timer);
        if (child.pid) children.delete(child.pid);
        try {
          if (code !== 0) throw new Error(`child exited ${code}: ${err}`);
          resolve(JSON.parse(out) as ChildReport);
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
    });

  const expectResults = async (what: string, want: { denied: string; other: string }) => {
    const r = await connectFromCgroup();
    expect(r.cgroup, `${what}: the child ran in the test cgroup`).toBe(`0::${cgroupRel}`);
    expect(r.results[DENIED], `${what}: connect to ${HOST}:${DENIED}: got ${r.results[DENIED]}, want ${want.denied}`).toBe(want.denied);
    expect(r.results[other], `${what}: connect to ${HOST}:${other}: got ${r.results[other]}, want ${want.other}`).toBe(want.other);
  };
  const both = { denied: "connected", other: "connected" };
  const deniedOnly = { denied: "EPERM", other: "connected" };

  const listen = (port: number): Promise<Server> =>
    new Promise((resolve, reject) => {
      const s = createServer((c) => c.destroy());
      s.once("error", reject);
      s.listen(port, HOST, () => resolve(s));
    });

  beforeAll(async () => {
    if (!existsSync(OBJECT)) throw new Error(`${OBJECT} is missing: run bash bpf/build.sh`);
    servers.push(await listen(DENIED));
    const s = await listen(0);
    servers.push(s);
    const addr = s.address();
    other = typeof addr === "object" && addr ? addr.port : 0;
    mkdirSync(cg);
  });

  // Whatever a test attached is detached after it, passed or failed, so the next starts clean.
  afterEach(() => {
    for (const a of attachments.splice(0)) {
      try {
        cgroupDetach(a);
      } catch (err) {
        console.log(`bpf - cgroup cleanup: ${String(err)}`);
      }
    }
  });

  afterAll(async () => {
    for (const a of attachments) {
      try {
        cgroupDetach(a);
      } catch (err) {
        console.log(`bpf - cgroup cleanup: ${String(err)}`);
      }
    }
    for (const pid of children) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }
    if (existsSync(cg)) {
      // Move out anything still inside (a child that did not exit), then remove the cgroup.
      for (let attempt = 0; ; attempt++) {
        for (const pid of readFileSync(`${cg}/cgroup.procs`, "utf8").split("\n").filter(Boolean)) {
          try {
            writeFileSync(`${CGROUP2}/cgroup.procs`, pid);
          } catch {
            /* exited meanwhile */
          }
        }
        try {
          rmdirSync(cg);
          break;
        } catch (err) {
          if (attempt >= 50) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
    for (const s of servers) await new Promise((r) => s.close(r));
    for (const o of objects) o.close();
  });

  it("bpf - cgroup connect4 denies TCP connects to port 7999 with EPERM inside the cgroup only, and stops when detached", async () => {
    const prog = load().program("weft_test_connect4");
    await expectResults("before attach", both);

    const a = attach(prog, { cgroupPath: cg, attachType: "connect4" });
    expect(a.progId, "attachment names the kernel program id").toBeGreaterThan(0);
    expect(cgroupQuery(cg, "connect4"), "programs attached for connect4").toEqual([a.progId]);
    await expectResults("attached", deniedOnly);

    // Outside the cgroup (this process is not in it) nothing changes.
    const outside = await connectFromCgroup(false);
    expect(outside.cgroup, "the control child is outside the test cgroup").not.toBe(`0::${cgroupRel}`);
    expect(outside.results[DENIED], `outside the cgroup, connect to ${DENIED}`).toBe("connected");

    expect(cgroupDetach(a), "detach").toBe(true);
    expect(cgroupQuery(cg, "connect4"), "programs attached after detach").toEqual([]);
    await expectResults("detached", both);
    expect(cgroupDetach(a), "a second detach finds nothing").toBe(false);
  });

  it("bpf - cgroup attachment outlives its BpfObject: still enforced after close, detached by program id", async () => {
    const obj = load();
    const a = attach(obj.program("weft_test_connect4"), { cgroupPath: cg, attachType: "connect4" });
    obj.close(); // the kernel keeps the program: the cgroup holds it
    await expectResults("attached, object closed", deniedOnly);
    expect(cgroupDetach(a), "detach by id after close").toBe(true);
    await expectResults("detached", both);
    expect(cgroupDetach(a), "the program is gone with its last reference").toBe(false);
  });

  it("bpf - cgroup multi mode runs every attached program, refuses the same one twice (EINVAL) and other flags (EPERM)", async () => {
    const p1 = load().program("weft_test_connect4");
    const p2 = load().program("weft_test_connect4"); // a second kernel program, same code
    const a1 = attach(p1, { cgroupPath: cg, attachType: "connect4", flags: "multi" });
    const a2 = attach(p2, { cgroupPath: cg, attachType: "connect4", flags: "multi" });
    expect(cgroupQuery(cg, "connect4").sort(), "both programs attached").toEqual([a1.progId, a2.progId].sort());

    const refused = (f: () => unknown): BpfError => {
      try {
        f();
      } catch (err) {
        if (err instanceof BpfError) return err;
        throw err;
      }
      throw new Error("expected a BpfError");
    };
    const twice = refused(() => attach(p1, { cgroupPath: cg, attachType: "connect4", flags: "multi" }));
    expect(twice.code, `same program twice: ${twice.message}`).toBe("EINVAL");
    const mixed = refused(() => attach(p1, { cgroupPath: cg, attachType: "connect4", flags: "override" }));
    expect(mixed.code, `other flags: ${mixed.message}`).toBe("EPERM");
    expect(mixed.message, "EPERM explains the flags").toMatch(/other flags/);

    await expectResults("two attached", deniedOnly);
    expect(cgroupDetach(a1), "detach the first").toBe(true);
    await expectResults("one left", deniedOnly);
    expect(cgroupDetach(a2), "detach the second").toBe(true);
    await expectResults("none left", both);
  });

  it("bpf - cgroup exclusive attach replaces the program in place; a wrong attach type is EINVAL", () => {
    const p1 = load().program("weft_test_connect4");
    const p2 = load().program("weft_test_connect4");
    const a1 = attach(p1, { cgroupPath: cg, attachType: "connect4" });
    const a2 = attach(p2, { cgroupPath: cg, attachType: "connect4" });
    expect(cgroupQuery(cg, "connect4"), "the second replaced the first").toEqual([a2.progId]);
    expect(cgroupDetach(a1), "the replaced program is no longer attached").toBe(false);
    expect(cgroupDetach(a2), "detach").toBe(true);

    let err: unknown;
    try {
      attach(p1, { cgroupPath: cg, attachType: "sendmsg4" });
    } catch (e) {
      err = e;
    }
    expect(err, "a connect4 program attached as sendmsg4").toBeInstanceOf(BpfError);
    expect((err as BpfError).code, (err as Error).message).toBe("EINVAL");
    expect(cgroupQuery(cg, "sendmsg4"), "nothing attached for sendmsg4").toEqual([]);
  });
});


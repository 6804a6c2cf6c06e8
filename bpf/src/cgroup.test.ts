/**
 * cgroupAttach refuses a path that is not a cgroup v2 directory before any bpf() call (so no root
 * is needed here): missing, on another filesystem, a cgroup v1 hierarchy, a file.
 */
import { existsSync, readFileSync, statfsSync } from "node:fs";
import { tmpdir } from "node:os";
import { describe, expect, it } from "vitest";
import { BpfCgroupPathError, CGROUP2_SUPER_MAGIC, cgroupAttach, cgroupQuery, type CgroupAttachType } from "./cgroup.js";
import { BpfError } from "./errors.js";
import { BpfProgram } from "./object.js";

const fake = new BpfProgram("fake_prog", -1);
const cgroup2 = readFileSync("/proc/self/mounts", "utf8")
  .split("\n")
  .map((l) => l.split(" "))
  .find((f) => f[2] === "cgroup2")?.[1];
const cgroup1 = readFileSync("/proc/self/mounts", "utf8")
  .split("\n")
  .map((l) => l.split(" "))
  .find((f) => f[2] === "cgroup")?.[1];

function refusal(path: string): BpfCgroupPathError {
  try {
    cgroupAttach(fake, { cgroupPath: path, attachType: "connect4" });
  } catch (err) {
    if (err instanceof BpfCgroupPathError) return err;
    throw err;
  }
  throw new Error(`cgroupAttach ${path} did not fail`);
}

describe("bpf - cgroup attach paths", () => {
  it("bpf - cgroup attach to a missing path is a BpfCgroupPathError with ENOENT", () => {
    const err = refusal("/sys/fs/cgroup/unified/wbt-no-such-cgroup");
    expect(err, "a BpfError").toBeInstanceOf(BpfError);
    expect(err.code, `code: got ${err.code}, want ENOENT`).toBe("ENOENT");
    expect(err.op, "op names the call, program, attach type and path").toBe("bpf_prog_attach fake_prog connect4 /sys/fs/cgroup/unified/wbt-no-such-cgroup");
    expect(err.message, "says what to give").toMatch(/cgroup v2 hierarchy/);
  });

  it("bpf - cgroup attach to a directory on another filesystem is EINVAL, naming the filesystem", () => {
    const err = refusal(tmpdir());
    expect(err.code).toBe("EINVAL");
    expect(err.path).toBe(tmpdir());
    expect(err.message, err.message).toMatch(/is not on a cgroup v2 filesystem \(filesystem type 0x[0-9a-f]+\)/);
  });

  it.skipIf(!cgroup1)("bpf - cgroup attach to a cgroup v1 hierarchy is refused", () => {
    const err = refusal(cgroup1 ?? "");
    expect(err.code).toBe("EINVAL");
    expect(err.message).toMatch(/not on a cgroup v2 filesystem/);
  });

  it.skipIf(!cgroup2 || !existsSync(`${cgroup2}/cgroup.procs`))("bpf - cgroup attach to a file of the cgroup v2 hierarchy is ENOTDIR", () => {
    expect(statfsSync(cgroup2 ?? "").type, "the mount is cgroup2").toBe(CGROUP2_SUPER_MAGIC);
    const err = refusal(`${cgroup2}/cgroup.procs`);
    expect(err.code).toBe("ENOTDIR");
    expect(err.message).toMatch(/is not a directory/);
  });

  it("bpf - cgroup attach with an unknown attach type is a TypeError listing the known ones", () => {
    expect(() => cgroupAttach(fake, { cgroupPath: tmpdir(), attachType: "connect5" as CgroupAttachType })).toThrow(/unknown cgroup attach type .*connect4, connect6/);
  });

  it("bpf - cgroup query checks the path too", () => {
    expect(() => cgroupQuery(tmpdir(), "connect4")).toThrow(BpfCgroupPathError);
  });
});

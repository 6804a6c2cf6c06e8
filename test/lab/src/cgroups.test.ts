import { describe, expect, it } from "vitest";
import { cgroup2Mount, inCgroup } from "./cgroups.js";

describe("lab cgroups", () => {
  it("lab - the cgroup v2 mount is read from the mount table (hybrid and unified layouts)", () => {
    const hybrid = "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n";
    expect(cgroup2Mount(hybrid)).toBe("/sys/fs/cgroup/unified");
    expect(cgroup2Mount("cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n")).toBe("/sys/fs/cgroup");
    expect(cgroup2Mount("cgroup /sys/fs/cgroup/cpu cgroup rw 0 0\n"), "cgroup v1 only").toBeUndefined();
  });

  it("lab - a command joins a cgroup before it execs: a fixed script, the path and argv as positional parameters", () => {
    expect(inCgroup("/sys/fs/cgroup/weft-lab/wts/aws-1", ["ip", "netns", "exec", "wts-aws-1", "echo", "$(reboot)"])).toEqual([
      "sh",
      "-c",
      'echo $$ > "$0" && exec "$@"',
      "/sys/fs/cgroup/weft-lab/wts/aws-1/cgroup.procs",
      "ip",
      "netns",
      "exec",
      "wts-aws-1",
      "echo",
      "$(reboot)",
    ]);
  });
});

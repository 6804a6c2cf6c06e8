/**
 * The no-systemd mode runs what the unit runs: parseUnit reads the shipped weft-agent.service
 * (command, environment, capability bounding set, no_new_privs, umask, directories) and refuses
 * what it could not reproduce; directArgv turns it into the argv that starts the agent.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { HOST_PATHS, detectAgentService, directArgv, parseUnit } from "./agent-service.js";

const shipped = readFileSync(fileURLToPath(new URL("../../../packaging/systemd/weft-agent.service", import.meta.url)), "utf8");

describe("agent service", () => {
  it("agent service - the shipped unit parses into the command, privileges and directories the direct mode uses", () => {
    const u = parseUnit(shipped);
    expect(u.execStart, "ExecStart").toEqual(["/usr/bin/weft", "agent", "--config", "/etc/weft/agent.yaml"]);
    expect(u.capabilities, "CapabilityBoundingSet").toEqual(["CAP_NET_ADMIN", "CAP_BPF", "CAP_PERFMON"]);
    expect(u.noNewPrivileges, "NoNewPrivileges").toBe(true);
    expect(u.umask, "UMask").toBe("0077");
    expect(u.environment, "Environment").toEqual({ XTABLES_LOCKFILE: "/run/weft/xtables.lock" });
    expect(u.stateDirectories, "StateDirectory").toEqual(["weft/agent"]);
    expect(u.runtimeDirectories, "RuntimeDirectory").toEqual(["wireguard", "weft"]);
    expect(u.timeoutStopSeconds, "TimeoutStopSec").toBe(20);
  });

  it("agent service - directArgv applies the bounding set, no_new_privs and umask around the unit's command", () => {
    expect(directArgv(parseUnit(shipped))).toEqual([
      "/bin/sh",
      "-c",
      'umask 0077 && exec "$@"',
      "weft-agent",
      "setpriv",
      "--bounding-set=-all,+net_admin,+bpf,+perfmon",
      "--inh-caps=-all",
      "--no-new-privs",
      "--",
      "/usr/bin/weft",
      "agent",
      "--config",
      "/etc/weft/agent.yaml",
    ]);
    expect(directArgv(parseUnit("[Service]\nExecStart=/bin/true x\n")), "no privileges set: the command alone").toEqual(["/bin/true", "x"]);
  });

  it("agent service - an empty CapabilityBoundingSet= resets the lines before it", () => {
    expect(parseUnit("[Service]\nExecStart=/bin/a\nCapabilityBoundingSet=CAP_BPF\nCapabilityBoundingSet=\nCapabilityBoundingSet=CAP_NET_ADMIN\n").capabilities).toEqual(["CAP_NET_ADMIN"]);
    expect(parseUnit("[Service]\nExecStart=/bin/a\n").capabilities, "no line: not limited").toBeUndefined();
  });

  it("agent service - settings the direct mode cannot reproduce are refused, naming them", () => {
    const refused: [string, RegExp][] = [
      ["[Service]\nExecStart=-/usr/bin/weft agent\n", /prefixes/],
      ['[Service]\nExecStart=/usr/bin/weft agent --name "a b"\n', /quoting/],
      ["[Service]\nExecStart=/usr/bin/weft agent --name %H\n", /specifiers/],
      ["[Service]\nExecStart=/a\nExecStart=/b\n", /exactly one ExecStart/],
      ["[Unit]\nDescription=x\n", /exactly one ExecStart/],
      ["[Service]\nExecStart=/a\nCapabilityBoundingSet=~CAP_SYS_ADMIN\n", /inverted/],
      ["[Service]\nExecStart=/a\nCapabilityBoundingSet=net_admin\n", /not a capability/],
      ["[Service]\nExecStart=/a\nEnvironment=\"A=b c\"\n", /plain NAME=value/],
      ["[Service]\nExecStart=/a\nStateDirectory=../etc\n", /relative, without \.\./],
      ["[Service]\nExecStart=/a\nUMask=abc\n", /octal/],
      ["[Service]\nthis is not a setting\n", /cannot read line/],
    ];
    for (const [text, want] of refused) expect(() => parseUnit(text), JSON.stringify(text)).toThrow(want);
  });

  it("agent service - without systemd, the agent it started runs until its own exit, which diagnose reports", async () => {
    const dir = await mkdtemp(join(tmpdir(), "weft-agent-service-"));
    try {
      const agent = join(dir, "fake-agent");
      await writeFile(agent, "#!/bin/sh\necho started\nsleep 0.6\nexit 3\n", { mode: 0o755 });
      await writeFile(join(dir, "weft-agent.service"), `[Service]\nExecStart=${agent} agent\n`);
      const service = detectAgentService({ ...HOST_PATHS, unitFiles: [join(dir, "weft-agent.service")], systemdRunDir: join(dir, "no-systemd"), pidFile: join(dir, "agent.pid"), logFile: join(dir, "agent.log") } as unknown as typeof HOST_PATHS);
      expect(service.kind, "no systemd").toBe("direct");
      await service.restart();
      const running: boolean[] = [];
      for (let i = 0; i < 5; i++) {
        running.push(await service.isRunning());
        await new Promise((r) => setTimeout(r, 40));
      }
      expect(running, "running right after the start, while it execs and works").toEqual([true, true, true, true, true]);
      const deadline = Date.now() + 5_000;
      while ((await service.isRunning()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await service.isRunning(), "stopped after its exit").toBe(false);
      expect(await service.diagnose(), "diagnose: how it ended and its log").toMatch(/exited with status 3; see .*agent\.log; its last lines:\nstarted/);
      await service.stop();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

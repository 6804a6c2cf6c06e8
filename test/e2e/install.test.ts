/**
 * The package as installed: `packaging/build.sh` builds weft_<version>_amd64.deb (lintian must be
 * clean), the lab's controller serves it with install.sh, and a clean Debian 12 root with no
 * Node.js (packaging/test-root.sh, cached) becomes a VM on a lab host: the documented one-line
 * installer checks the controller's CA, installs the package and `weft up` joins the mesh of two
 * lab agents, and traffic passes. The lab's controller and agents run the package's bundle
 * (extracted, on the machine's Node.js), so the packaged controller is what serves the VM. Then, in order: the units
 * (systemd-analyze verify and security), the capabilities the agent needs (each one the unit grants
 * removed in turn), an upgrade under load (the data plane keeps forwarding and enforcing), `weft down`
 * and `apt purge` leaving nothing behind, and the cloud-init examples (`cloud-init schema`).
 *
 * Lab prefix `wtp` (WEFT_E2E_INSTALL_PREFIX); the VM on gcp-1, lab agents on aws-1 and onprem-1. Everything it makes is removed after the suite, also on failure; the Debian root and the
 * Debian packages it downloads stay cached in /var/cache/weft-test. Needs root.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import type { ControllerClient, JoinKeyCreated } from "@weft/protocol";
import { LabCluster, labExec, labTopology, repoRoot, type LabOptions } from "@weft/lab";
import { sleep, waitUntil } from "./mesh.js";
import { allowedSyscalls, capMask, leftovers, pinnedMapIds, repack, runAgentWith, startHttpServer, unitCapabilities } from "./installed.js";
import { pingCount, startEcho, tcpProbe } from "./traffic.js";
import { LabVm } from "./vm.js";
import { labSuite } from "./lab-suite.js";

const execFileAsync = promisify(execFile);
const PREFIX = process.env.WEFT_E2E_INSTALL_PREFIX ?? "wtp";
const opts: LabOptions = { prefix: PREFIX };
const topology = labTopology({ prefix: PREFIX });
const VM_HOST = "gcp-1";
const AGENT_HOSTS = ["aws-1", "onprem-1"];
const CACHE = process.env.WEFT_TEST_CACHE ?? "/var/cache/weft-test";
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn("e2e install: skipped: needs root (debootstrap, mounts, network namespaces)");

const repo = repoRoot();
/** The lab agents (identity ns/default/sa/default) may ping the VM and reach ALLOWED_PORT; DENIED_PORT is default-denied. */
const ALLOWED_PORT = 7181;
const DENIED_PORT = 7182;
const VM_POLICY = {
  name: "vm",
  description: "e2e install: the lab agents may ping the VM and reach one port",
  rules: [{ action: "allow" as const, from: [{ namespace: "default" }], to: [{ namespace: "shop", serviceAccount: "vm" }], ports: [{ protocol: "icmp" as const }, { protocol: "tcp" as const, port: ALLOWED_PORT }] }],
};
const suite = labSuite("install", opts);
const { note } = suite;

/** The one line a person runs on a VM (packaging/README.md), for a controller URL and CA hash. */
function oneLiner(url: string, hex: string, upArgs: string): string {
  return (
    `u=${url} h=${hex}; curl -fsSko /tmp/weft-ca.pem $u/ca.pem && ` +
    `[ "$(openssl x509 -in /tmp/weft-ca.pem -noout -pubkey | openssl pkey -pubin -outform der | sha256sum | cut -c1-64)" = $h ] && ` +
    `curl -fsS --cacert /tmp/weft-ca.pem $u/install.sh | sh -s -- --controller $u --ca-hash sha256:$h ${upArgs}`
  );
}

describe.skipIf(!isRoot)("install", () => {
  let downloads: string;
  let deb: string;
  let debBytes = 0;
  let vm: LabVm;
  let cluster: LabCluster;
  let client: ControllerClient;
  let key: JoinKeyCreated;
  /** The VM's key: identity spiffe://weft.internal/ns/shop/sa/vm, which VM_POLICY protects. */
  let vmKey: JoinKeyCreated;
  let caHex: string;
  /** Where the package is unpacked: the lab's controller and agents run its bundle. */
  let extracted: string;
  /** The cached Debian 12 root filesystem the VM boots from. */
  let debianRoot: string;
  const host = topology.hosts.find((h) => h.name === VM_HOST)!;
  const upArgs = `--join-key-file /root/weft-join-key --name ${host.name} --site ${host.site} --private-endpoint ${host.privateAddress}:51820 --public-endpoint ${host.publicAddress}:51820`;

  const vmOk = async (script: string, what: string, timeoutMs = 60_000) => {
    const res = await vm.sh(script, { timeoutMs });
    if (res.exitCode !== 0) throw new Error(`${what}: exit ${res.exitCode}\n${res.stdout}\n${res.stderr}`);
    return res.stdout;
  };
  const agentPids = async () => (await vm.processes()).filter((p) => /\/usr\/lib\/weft\/node .*\/lib\/agent\.cjs agent/.test(p.cmdline));
  const overlayOf = async (name: string) => (await client.getNode(name)).overlayAddress;
  /** The VM's agent wrote, since `since`, that it is connected and holds the current peer set. */
  const onlineSince = async (since: number) => {
    const status = await readFile(join(vm.root, "var/lib/weft/agent/status.json"), "utf8")
      .then((t) => JSON.parse(t) as { nats?: string; stale?: boolean; updatedAt?: string })
      .catch(() => undefined);
    return status?.nats === "connected" && status.stale === false && Date.parse(status.updatedAt ?? "") >= since;
  };

  suite.hooks({
    prepare: async () => {
      let t0 = Date.now();
      downloads = await mkdtemp(join(tmpdir(), "weft-e2e-downloads-"));
      // WEFT_E2E_PACKAGE_DIR: use a package already built there (`npm run package` output), to iterate faster.
      const prebuilt = process.env.WEFT_E2E_PACKAGE_DIR;
      if (prebuilt) {
        for (const f of await readdir(prebuilt)) if (/^(weft_.*\.deb|install\.sh|lintian\.txt)$/.test(f)) await writeFile(join(downloads, f), await readFile(join(prebuilt, f)));
        deb = join(downloads, (await readdir(downloads)).filter((f) => f.endsWith(".deb")).sort().at(-1) ?? "none.deb");
      } else {
        const built = await execFileAsync("bash", [join(repo, "packaging/build.sh"), "--out", downloads], { cwd: repo, maxBuffer: 64 << 20 });
        deb = built.stdout.trim().split("\n").at(-1)!;
      }
      debBytes = (await readFile(deb)).length;
      note(`package ${deb.split("/").at(-1)}: ${(debBytes / 1048576).toFixed(1)} MiB, built (with lintian) in ${Math.round((Date.now() - t0) / 1000)} s`);

      t0 = Date.now();
      debianRoot = (await execFileAsync("bash", [join(repo, "packaging/test-root.sh"), CACHE], { maxBuffer: 16 << 20 })).stdout.trim();
      note(`Debian 12 root ${debianRoot} ready in ${Math.round((Date.now() - t0) / 1000)} s (cached after the first run)`);

      // The lab's controller and agents run the package's bundle too (extracted; the machine's
      // Node.js), so the controller as packaged serves the VM.
      extracted = join(downloads, "extracted");
      await execFileAsync("dpkg-deb", ["-x", deb, extracted]);
    },
    cluster: () => new LabCluster({ ...opts, cliPath: join(extracted, "usr/lib/weft/lib/main.js") }),
    setup: async (c) => {
      cluster = c;
      const controllerConfig = join(downloads, "controller.yaml");
      await writeFile(controllerConfig, `downloads:\n  dir: ${downloads}\n`);
      await cluster.startController(["--config", controllerConfig]);
      client = await cluster.client();
      caHex = (await cluster.controllerCaHash()).replace(/^sha256:/, "");
      key = await client.createJoinKey({ reusable: true, ttlSeconds: 3600, description: "e2e: install, lab agents" });
      vmKey = await client.createJoinKey({ reusable: true, ttlSeconds: 3600, description: "e2e: install, the VM", labels: { "weft:namespace": "shop", "weft:serviceaccount": "vm" } });
      await client.applyPolicy(VM_POLICY);
      await Promise.all(AGENT_HOSTS.map((h) => cluster.startAgent(h, key.key)));

      const t0 = Date.now();
      vm = await LabVm.start({ lab: opts, host: VM_HOST, baseRoot: debianRoot, dir: join(CACHE, "vms", `${PREFIX}-${VM_HOST}`), aptArchives: join(CACHE, "apt-archives") });
      // The lab has no internet: Debian packages the .deb depends on are fetched into the apt cache
      // first, on the machine's network (a VM would reach its mirror); install.sh then installs offline.
      await writeFile(join(vm.root, "tmp/prefetch.deb"), await readFile(deb));
      const fetched = await vm.onHostNetwork(["apt-get", "install", "-y", "-q", "--download-only", "--no-install-recommends", "/tmp/prefetch.deb"], { timeoutMs: 180_000 });
      if (fetched.exitCode !== 0) throw new Error(`prefetching Debian packages: ${fetched.stdout}\n${fetched.stderr}`);
      await rm(join(vm.root, "tmp/prefetch.deb"));
      note(`VM root on ${VM_HOST} mounted, dependencies in the apt cache, in ${Math.round((Date.now() - t0) / 1000)} s`);
      await cluster.waitForFullMesh(60_000);
    },
    teardown: async () => {
      await vm?.stop();
    },
    cleanup: async () => {
      if (downloads) await rm(downloads, { recursive: true, force: true });
    },
    setupTimeoutMs: 1_200_000,
    teardownTimeoutMs: 120_000,
  });

  const step = (name: string, fn: () => Promise<void>, timeoutMs = 120_000) =>
    it(
      name,
      async () => {
        try {
          await fn();
        } catch (err) {
          suite.markFailed();
          // Now, not in afterAll: a later step (the purge) removes the log.
          const log = vm ? await readFile(join(vm.root, "var/log/weft/agent.log"), "utf8").catch(() => "(none)") : "(no VM)";
          console.log(`e2e install: "${name}" failed; the VM's agent log:\n${log.split("\n").slice(-80).join("\n")}`);
          throw err;
        }
      },
      timeoutMs,
    );

  describe("the package", () => {
    step("install - the package is lintian-clean, depends only on Debian packages, and the VM has no Node.js", async () => {
      const lintian = await readFile(join(downloads, "lintian.txt"), "utf8");
      expect(lintian.trim(), "lintian errors and warnings").toBe("");
      const control = (await execFileAsync("dpkg-deb", ["-f", deb, "Depends", "Recommends"])).stdout;
      expect(control, "Depends/Recommends name no Node.js").not.toMatch(/node/i);
      const node = await vm.sh("command -v node nodejs || echo none");
      expect(node.stdout.trim(), "a Node.js in the VM before installing").toBe("none");
    });

    step("install - the packaged controller (which starts only with its shipped trust data) serves the web console's built assets", async () => {
      const page = await vmOk(`curl -fsSk ${cluster.controllerUrl}/console/`, "fetch the console");
      expect(page, "the console's index.html").toContain("<title>Weft console</title>");
      const script = /src="(\/console\/assets\/[^"]+\.js)"/.exec(page)?.[1];
      expect(script, "index.html names its script").toBeDefined();
      const bytes = await vmOk(`curl -fsSk -o /dev/null -w '%{size_download}' ${cluster.controllerUrl}${script}`, "fetch the console's script");
      expect(Number(bytes), `the console's script ${script}: bytes`).toBeGreaterThan(10_000);
    });
  });

  describe("install", () => {
    step("install - install.sh refuses a controller that cannot prove the CA hash, and an unsupported distribution", async () => {
      const url = cluster.controllerUrl;
      const wrong = "0".repeat(64);
      await vmOk(`curl -fsSko /tmp/install.sh ${url}/install.sh`, "fetch install.sh");
      const badHash = await vm.sh(`sh /tmp/install.sh --controller ${url} --ca-hash sha256:${wrong} --no-up`);
      expect(badHash.exitCode, `wrong hash: exit code\n${badHash.stderr}`).toBe(1);
      expect(badHash.stderr, "wrong hash: message").toContain(`not sha256:${wrong}`);
      const line = await vm.sh(oneLiner(url, wrong, upArgs));
      expect(line.exitCode, "the one-liner with a wrong hash fails before running install.sh").not.toBe(0);
      await vmOk("cp /etc/os-release /tmp/os-release && printf 'ID=fedora\\nVERSION_ID=40\\nPRETTY_NAME=\"Fedora Linux 40\"\\n' >/etc/os-release", "fake os-release");
      const fedora = await vm.sh(`sh /tmp/install.sh --controller ${url} --ca-hash sha256:${caHex} --no-up`);
      await vmOk("cp /tmp/os-release /etc/os-release", "restore os-release");
      expect(fedora.exitCode, "unsupported distribution: exit code").toBe(1);
      expect(fedora.stderr, "unsupported distribution: message").toMatch(/Fedora Linux 40 is not supported.*Debian 12\+ and Ubuntu 24\.04\+/);
      const installed = await vm.sh("dpkg-query -W -f='${Status}' weft");
      expect(installed.stdout, "weft installed after refusals").not.toContain("install ok installed");
    });

    step(
      "install - one line: the CA is checked, install.sh installs the package from the controller, and weft up brings the node online",
      async () => {
        await writeFile(join(vm.root, "root/weft-join-key"), `${vmKey.key}\n`, { mode: 0o600 });
        const t0 = Date.now();
        const res = await vm.sh(oneLiner(cluster.controllerUrl, caHex, upArgs), { timeoutMs: 240_000 });
        const took = Date.now() - t0;
        expect(res.exitCode, `one-liner exit code\n${res.stdout}\n${res.stderr}`).toBe(0);
        const overlay = await overlayOf(VM_HOST);
        expect(res.stdout.trim().split("\n").at(-1), "weft up prints the node's overlay address").toBe(overlay);
        note(`install.sh → online (download, apt install, weft up): ${(took / 1000).toFixed(1)} s; overlay ${overlay}`);

        const spent = await vm.sh("test -e /etc/weft/join-key && echo present || echo gone; grep -c joinKey /etc/weft/agent.yaml || true");
        expect(spent.stdout.split("\n").slice(0, 2), "join key file and config key after enrolling").toEqual(["gone", "0"]);
        const [agent] = await agentPids();
        expect(agent, "the installed agent is running in the VM").toBeDefined();
        const status = await readFile(`/proc/${agent!.pid}/status`, "utf8");
        const unit = await readFile(join(vm.root, "lib/systemd/system/weft-agent.service"), "utf8");
        const want = capMask(unitCapabilities(unit));
        expect(/CapBnd:\s*([0-9a-f]+)/.exec(status)?.[1], "the agent's bounding set is the unit's").toBe(want.toString(16).padStart(16, "0"));
        expect(/NoNewPrivs:\s*(\d)/.exec(status)?.[1], "no_new_privs").toBe("1");
        // The agent loaded its bundle with the code cache the package was built with (packaging/agent.cjs).
        const log = await readFile(join(vm.root, "var/log/weft/agent.log"), "utf8");
        expect(log, "the agent's log says how its code was loaded").toContain('"codeCache":"used"');
      },
      300_000,
    );

    step("install - the installed agent joins the mesh and passes traffic both ways", async () => {
      const vmAddress = await overlayOf(VM_HOST);
      await waitUntil("handshakes between the VM and both lab agents", 30_000, async () => {
        const dump = await vm.exec(["wg", "show", "weft0", "latest-handshakes"]);
        const fresh = dump.stdout.trim().split("\n").filter((l) => Number(l.split("\t")[1]) > 0);
        return fresh.length === AGENT_HOSTS.length;
      });
      for (const h of AGENT_HOSTS) {
        const address = await overlayOf(h);
        const out = await vm.exec(["ping", "-c", "3", "-i", "0.2", "-W", "2", address]);
        expect(out.exitCode, `VM → ${h} (${address}) ping\n${out.stdout}`).toBe(0);
        const back = await labExec(opts, h, ["ping", "-c", "3", "-i", "0.2", "-W", "2", vmAddress]);
        expect(back.exitCode, `${h} → VM (${vmAddress}) ping\n${back.stdout}`).toBe(0);
      }
      // TCP through the tunnel: the VM's curl fetches random bytes from a server on aws-1's overlay address.
      const size = 4 << 20;
      const server = await labExec(opts, "aws-1", ["sh", "-c", `head -c ${size} /dev/urandom > /tmp/${PREFIX}-blob && sha256sum /tmp/${PREFIX}-blob`]);
      const want = server.stdout.split(" ")[0];
      const awsAddress = await overlayOf("aws-1");
      const srv = await startHttpServer(opts, "aws-1", awsAddress, `/tmp/${PREFIX}-blob`);
      try {
        const got = await vm.sh(`curl -fsS http://${awsAddress}:${srv.port}/blob | sha256sum`, { timeoutMs: 30_000 });
        expect(got.stdout.split(" ")[0], `TCP over the overlay: sha256 of ${size} bytes\n${got.stderr}`).toBe(want);
      } finally {
        await srv.stop();
        await labExec(opts, "aws-1", ["rm", "-f", `/tmp/${PREFIX}-blob`]);
      }
    });
  });

  describe("units", () => {
    step("install - systemd-analyze verify passes both units, and their exposure scores stay at or under 3.0 (agent) and 2.0 (controller)", async () => {
      const verify = await execFileAsync("systemd-analyze", ["verify", "--man=no", `--root=${vm.root}`, "weft-agent.service", "weft-controller.service"]).catch((e: { stderr?: string }) => ({ stdout: "", stderr: `FAILED ${e.stderr}` }));
      expect(verify.stderr.trim(), "systemd-analyze verify").toBe("");
      const man = await execFileAsync("man", ["-l", "-P", "cat", join(vm.root, "usr/share/man/man1/weft.1.gz")]);
      expect(man.stdout, "man weft (the units' Documentation=)").toContain("weft up");
      for (const [unit, max] of [["weft-agent.service", 3.0], ["weft-controller.service", 2.0]] as const) {
        const out = await execFileAsync("systemd-analyze", ["security", "--offline=yes", `--root=${vm.root}`, unit]).then((r) => r.stdout);
        const score = Number(/Overall exposure level for \S+: ([0-9.]+)/.exec(out)?.[1]);
        note(`systemd-analyze security ${unit}: ${score}`);
        expect(score, `${unit} exposure`).toBeLessThanOrEqual(max);
      }
    });

    step(
      "install - the agent needs every capability the unit grants: with any one removed it does not come up",
      async () => {
        const unit = await readFile(join(vm.root, "lib/systemd/system/weft-agent.service"), "utf8");
        const caps = unitCapabilities(unit);
        expect(caps.length, "CapabilityBoundingSet is set").toBeGreaterThan(0);
        await vmOk("weft service stop", "stop the agent");
        const results: string[] = [];
        for (const removed of [undefined, ...caps]) {
          const set = caps.filter((c) => c !== removed);
          // A fresh start each time, as after a reboot: no interface, no pins (state kept).
          await vmOk("weft down --keep-state", "tear down the data plane");
          const outcome = await runAgentWith(vm, set, 25_000);
          results.push(`${removed === undefined ? "all" : `without ${removed}`}: ${outcome.online ? "online" : `not up (${outcome.why})`}`);
          if (removed === undefined) expect(outcome.online, `with the unit's set ${set.join(" ")}: ${outcome.why}`).toBe(true);
          else expect(outcome.online, `without ${removed} the agent still came up: it is not needed, drop it from the unit`).toBe(false);
        }
        note(`capabilities (${caps.join(" ")}): ${results.join("; ")}`);
        const restarted = Date.now();
        await vmOk("weft down --keep-state && weft service start", "start the agent again");
        await waitUntil("the agent online again", 60_000, () => onlineSince(restarted));
      },
      300_000,
    );
    step(
      "install - every system call the agent and what it runs make, from start to online, is allowed by the unit's SystemCallFilter",
      async () => {
        const unit = await readFile(join(vm.root, "lib/systemd/system/weft-agent.service"), "utf8");
        const allowed = await allowedSyscalls(unit);
        await vmOk("weft service stop && weft down --keep-state", "a fresh start");
        const trace = join(downloads, "agent.strace");
        const caps = ["-all", ...unitCapabilities(unit).map((c) => `+${c.slice(4).toLowerCase()}`)].join(",");
        // strace (outside the VM, following the whole tree) stops only on calls the filter would
        // refuse (seccomp-bpf: the agent runs at full speed), plus two it allows, as markers:
        // execve (systemd applies the filter from the unit's ExecStart, /usr/bin/weft, on) and bpf
        // (which the agent must make: proof that the trace sees the agent at all).
        const traceSet = `!${[...allowed].filter((c) => c !== "execve" && c !== "bpf").map((c) => `?${c}`).join(",")}`;
        const since = Date.now();
        const traced = execFileAsync(
          "nsenter",
          [`--net=/run/netns/${vm.netns}`, "strace", "-f", "-qq", "--seccomp-bpf", "-e", `trace=${traceSet}`, "-o", trace, "--", "chroot", vm.root, "/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "setpriv", `--bounding-set=${caps}`, "--inh-caps=-all", "--no-new-privs", "--", "/usr/bin/weft", "agent", "--config", "/etc/weft/agent.yaml"],
          { maxBuffer: 64 << 20, timeout: 180_000 },
        ).catch((e: unknown) => e);
        try {
          await waitUntil("the traced agent online", 90_000, () => onlineSince(since), 500);
        } finally {
          for (const p of await vm.processes()) if (/agent\.cjs agent/.test(p.cmdline)) process.kill(p.pid, "SIGTERM");
          // wireguard-go, traced too, exits with its interface; then strace ends.
          await waitUntil("the traced agent gone", 30_000, async () => (await agentPids()).length === 0);
          await vm.exec(["weft", "down", "--keep-state"], { timeoutMs: 60_000 });
          await traced;
        }
        try {
          const lines = (await readFile(trace, "utf8")).split("\n");
          const start = lines.findIndex((l) => /execve\("\/usr\/bin\/weft"/.test(l));
          expect(start, "the trace shows the unit's ExecStart").toBeGreaterThanOrEqual(0);
          const calls = lines.slice(start).flatMap((l) => /^\d+\s+([a-z0-9_]+)\(/.exec(l)?.[1] ?? []);
          expect(calls.includes("bpf"), "the trace saw the agent's bpf() calls (the check sees the agent)").toBe(true);
          const refused = [...new Set(calls.filter((c) => !allowed.has(c)))].sort();
          expect(refused, "system calls the unit's SystemCallFilter would refuse (EPERM)").toEqual([]);
          note(`system calls from start to online: none outside SystemCallFilter (${allowed.size} allowed; ${calls.filter((c) => c === "bpf").length} bpf() calls seen)`);
        } finally {
          await rm(trace, { force: true });
          const restarted = Date.now();
          await vmOk("weft service start", "start the agent again");
          await waitUntil("the agent online again", 60_000, () => onlineSince(restarted));
        }
      },
      300_000,
    );
  });

  describe("upgrade", () => {
    step(
      "install - an upgrade restarts the agent while the data plane keeps forwarding (a ping every 10 ms: none lost) and enforcing (a denied flow: 0 answered), reusing the pinned maps",
      async () => {
        const vmAddress = await overlayOf(VM_HOST);
        const version = (await execFileAsync("dpkg-deb", ["-f", deb, "Version"])).stdout.trim();
        const next = await repack(deb, `${version}+1`, downloads);
        const [before] = await agentPids();
        expect(before, "the agent runs before the upgrade").toBeDefined();
        const mapsBefore = await pinnedMapIds(vm);
        expect(mapsBefore.size, "pinned maps before the upgrade").toBeGreaterThan(0);

        const echo = await startEcho(opts, VM_HOST, [ALLOWED_PORT, DENIED_PORT]);
        try {
          expect(await tcpProbe(opts, "aws-1", vmAddress, ALLOWED_PORT), "allowed port before").toBe("open");
          expect(await tcpProbe(opts, "aws-1", vmAddress, DENIED_PORT), "denied port before").toBe("timeout");
          const pings = 1500;
          const hammer = pingCount(opts, "aws-1", vmAddress, pings, { intervalS: 0.01 });
          const denied: string[] = [];
          let upgrading = true;
          const probing = (async () => {
            while (upgrading) denied.push(await tcpProbe(opts, "onprem-1", vmAddress, DENIED_PORT, 1000));
          })();
          await sleep(1000);
          const t0 = Date.now();
          const res = await vm.sh(`sh -c "$(curl -fsS --cacert /tmp/weft-ca.pem ${cluster.controllerUrl}/install.sh)" -s --controller ${cluster.controllerUrl} --ca-hash sha256:${caHex} --no-up`, { timeoutMs: 120_000 });
          expect(res.exitCode, `install.sh of ${next.split("/").at(-1)}\n${res.stdout}\n${res.stderr}`).toBe(0);
          const installed = (await vm.sh("dpkg-query -W -f='${Version}' weft")).stdout;
          expect(installed, "installed version").toBe(`${version}+1`);
          await waitUntil("the upgraded agent online", 30_000, async () => {
            const [now] = await agentPids();
            return now !== undefined && now.pid !== before!.pid && (await onlineSince(t0));
          });
          const upgraded = Date.now() - t0;
          upgrading = false;
          await probing;
          const answered = await hammer;
          const outcomes = denied;
          expect(answered, `pings answered of ${pings} sent every 10 ms across the upgrade`).toBe(pings);
          expect(outcomes.filter((o) => o !== "timeout"), `denied connection attempts that got anything back (of ${outcomes.length})`).toEqual([]);
          expect(await pinnedMapIds(vm), "pinned maps after the upgrade: the same maps, reused").toEqual(mapsBefore);
          expect(await tcpProbe(opts, "aws-1", vmAddress, ALLOWED_PORT), "allowed port after").toBe("open");
          note(`upgrade ${version} → ${version}+1 (apt install, postinst restart, agent back online) ${(upgraded / 1000).toFixed(1)} s: ping ${answered}/${pings} at 10 ms, denied ${outcomes.length} SYN probes all unanswered, ${mapsBefore.size} pinned maps reused`);
        } finally {
          await echo.stop();
        }
      },
      240_000,
    );
  });

  describe("leave", () => {
    step("install - weft down leaves no interface, route, process, pin, unit, rule or state behind", async () => {
      await waitUntil("the agent online before weft down", 30_000, async () => (await vm.exec(["wg", "show", "weft0"])).exitCode === 0);
      const down = await vm.exec(["weft", "down"], { timeoutMs: 60_000 });
      expect(down.exitCode, `weft down\n${down.stderr}`).toBe(0);
      expect(await leftovers(vm), "left behind by weft down").toEqual([]);
    });

    step(
      "install - apt purge of a joined host leaves nothing behind either, package files included",
      async () => {
        await client.deleteNode(VM_HOST); // the admin's side of leaving: the name is free again
        await writeFile(join(vm.root, "root/weft-join-key"), `${vmKey.key}\n`, { mode: 0o600 });
        const up = await vm.sh(`weft up --controller ${cluster.controllerUrl} --ca-hash sha256:${caHex} ${upArgs}`, { timeoutMs: 120_000 });
        expect(up.exitCode, `weft up again\n${up.stderr}`).toBe(0);
        const purge = await vm.exec(["apt-get", "purge", "-y", "-q", "weft"], { timeoutMs: 120_000 });
        expect(purge.exitCode, `apt-get purge weft\n${purge.stdout}\n${purge.stderr}`).toBe(0);
        expect(await leftovers(vm), "left behind by apt purge").toEqual([]);
        const files = await vm.sh("ls -d /usr/lib/weft /usr/bin/weft /lib/systemd/system/weft-*.service /usr/share/doc/weft 2>/dev/null; dpkg-query -W -f='${Status}' weft 2>/dev/null");
        expect(files.stdout.trim(), "package files or status after purge").toMatch(/^(|deinstall ok config-files|unknown ok not-installed)$/);
        expect(files.stdout, "dpkg still knows weft").not.toContain("installed");
      },
      240_000,
    );
  });

  describe("cloud-init", () => {
    step("install - the cloud-init examples pass `cloud-init schema`, and a broken copy does not", async () => {
      const dir = join(repo, "packaging/cloud-init");
      const files = (await readdir(dir)).filter((f) => f.endsWith(".yaml")).sort();
      expect(files, "one example per cloud").toEqual(["aws.yaml", "azure.yaml", "gcp.yaml"]);
      for (const f of files) {
        const text = await readFile(join(dir, f), "utf8");
        const ok = await execFileAsync("cloud-init", ["schema", "--config-file", join(dir, f)]).then(
          (r) => ({ code: 0, out: r.stdout + r.stderr }),
          (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? 1, out: `${e.stdout}${e.stderr}` }),
        );
        expect(ok.code, `cloud-init schema ${f}: ${ok.out}`).toBe(0);
        expect(text, `${f} joins by instance identity`).toContain(`--cloud ${f.replace(".yaml", "")}`);
        const broken = join(downloads, `broken-${f}`);
        await writeFile(broken, text.replace("runcmd:", "runcmd: 42\nruncmd_broken:"));
        const bad = await execFileAsync("cloud-init", ["schema", "--config-file", broken]).then(
          () => 0,
          (e: { code?: number }) => e.code ?? 1,
        );
        expect(bad, `cloud-init schema accepts a broken ${f}: the check would pass anything`).not.toBe(0);
      }
    });
  });
});


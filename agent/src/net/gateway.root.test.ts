/**
 * Root integration: the gateway role in a scratch network namespace. Becoming a gateway turns on
 * forwarding and writes one MASQUERADE rule per (overlay range, site route) into WEFT-SNAT, jumped
 * to first from POSTROUTING; a changed route set adds and deletes only what changed; an agent
 * restart (a new GatewayForwarding) rewrites the chain without duplicating anything; giving up the
 * role empties the chain. Nothing is touched outside the namespace, which is removed afterwards.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCommandRunner } from "../exec/runner.js";
import { findExecutableSync } from "../exec/testing.js";
import { GatewayForwarding, SNAT_CHAIN, type GatewayRole } from "./gateway.js";

const exec = promisify(execFile);
const isRoot = process.getuid?.() === 0;
const haveTools = findExecutableSync("iptables") !== undefined && findExecutableSync("ip") !== undefined;
const NS = "weft-gwt";
const log = pino({ level: "silent" });

const inNs = async (...argv: string[]) => (await exec("ip", ["netns", "exec", NS, ...argv])).stdout;
const chainRules = async () =>
  (await inNs("iptables", "-t", "nat", "-S", SNAT_CHAIN))
    .split("\n")
    .filter((l) => l.startsWith(`-A ${SNAT_CHAIN} `))
    .map((l) => l.slice(`-A ${SNAT_CHAIN} `.length));
const postrouting = async () => (await inNs("iptables", "-t", "nat", "-S", "POSTROUTING")).split("\n").filter((l) => l.startsWith("-A POSTROUTING"));

const role = (routes: string[], snat = true): GatewayRole => ({ routes, sources: ["100.64.0.0/16", "100.80.0.0/12"], overlayInterface: "weft0", snat });

describe.skipIf(!isRoot || !haveTools)("gateway forwarding (root)", () => {
  beforeAll(async () => {
    await exec("ip", ["netns", "del", NS]).catch(() => undefined);
    await exec("ip", ["netns", "add", NS]);
    // Something else's rule in POSTROUTING, which must stay where it is.
    await inNs("iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "eth9", "-j", "MASQUERADE");
  });
  afterAll(async () => {
    await exec("ip", ["netns", "del", NS]).catch(() => undefined);
  });

  it("gateway - becoming a gateway forwards and masquerades each overlay range to each site route, ahead of other rules", async () => {
    const gw = new GatewayForwarding(createCommandRunner({ netns: NS }), log);
    await gw.apply(role(["10.30.0.0/16"]));
    expect((await inNs("sysctl", "-n", "net.ipv4.ip_forward")).trim(), "ip_forward").toBe("1");
    expect(await chainRules(), "WEFT-SNAT rules").toEqual([
      "-s 100.64.0.0/16 -d 10.30.0.0/16 ! -o weft0 -j MASQUERADE",
      "-s 100.80.0.0/12 -d 10.30.0.0/16 ! -o weft0 -j MASQUERADE",
    ]);
    expect(await postrouting(), "POSTROUTING: our jump first, the other rule kept").toEqual([`-A POSTROUTING -j ${SNAT_CHAIN}`, "-A POSTROUTING -o eth9 -j MASQUERADE"]);

    await gw.apply(role(["10.30.0.0/16", "10.31.0.0/16"]));
    await gw.apply(role(["10.31.0.0/16"]));
    expect(await chainRules(), "after adding 10.31/16 and dropping 10.30/16").toEqual([
      "-s 100.64.0.0/16 -d 10.31.0.0/16 ! -o weft0 -j MASQUERADE",
      "-s 100.80.0.0/12 -d 10.31.0.0/16 ! -o weft0 -j MASQUERADE",
    ]);
  });

  it("gateway - a restarted agent rewrites the chain once, without duplicates; giving up the role or SNAT empties it", async () => {
    const restarted = new GatewayForwarding(createCommandRunner({ netns: NS }), log);
    await restarted.apply(role(["10.31.0.0/16"]));
    expect((await chainRules()).length, "rules after a restart with the same role").toBe(2);
    expect((await postrouting()).filter((l) => l.includes(SNAT_CHAIN)).length, "jump rules").toBe(1);
    await restarted.apply(role(["10.31.0.0/16"], false));
    expect(await chainRules(), "snat false").toEqual([]);
    await restarted.apply(role(["10.40.0.0/16"]));
    await restarted.apply(role([]));
    expect(await chainRules(), "no longer a gateway").toEqual([]);
    expect(await postrouting(), "POSTROUTING unchanged otherwise").toEqual([`-A POSTROUTING -j ${SNAT_CHAIN}`, "-A POSTROUTING -o eth9 -j MASQUERADE"]);
  });
});

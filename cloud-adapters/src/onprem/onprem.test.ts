import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InventoryFileError } from "../errors.js";
import { InventorySnapshot } from "../model.js";
import { OnpremInventory } from "./index.js";

let dir: string;
let file: string;

const VALID = `
site: dc-paris
networks:
  - id: lan
    cidrs: [10.20.0.0/16, 10.21.0.0/24]
  - id: dmz
    cidrs: [192.0.2.0/24]
instances:
  - id: db-1
    name: db-1.paris
    network: lan
    privateIps: [10.20.0.11, 10.20.0.12]
    publicIps: [203.0.113.7]
    tags: { role: db, tier: "1" }
    state: stopped
  - id: web-1
    network: dmz
    privateIps: [192.0.2.10]
`;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "weft-onprem-"));
  file = join(dir, "inventory.yaml");
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The InventoryFileError message for a file with this content. */
const three = (ip: string) => `site: s\nnetworks: [{id: lan, cidrs: [10.0.0.0/8]}]\ninstances:\n  - {id: a, network: lan, privateIps: [10.0.0.1]}\n  - {id: b, network: lan, privateIps: [10.0.0.2]}\n  - {id: c, network: lan, privateIps: [${ip}]}\n`;

async function refusal(content: string): Promise<string> {
  await writeFile(file, content);
  const err = await OnpremInventory.fromFile(file).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(InventoryFileError);
  return (err as InventoryFileError).message;
}

describe("onprem inventory", () => {
  it("onprem - a valid file is a complete snapshot", async () => {
    await writeFile(file, VALID);
    const inv = await OnpremInventory.fromFile(file);
    expect([inv.provider, inv.account]).toEqual(["onprem", "dc-paris"]);
    const snap = await inv.fetch();
    expect(InventorySnapshot.parse(snap)).toEqual(snap);
    expect(snap).toMatchObject({ provider: "onprem", account: "dc-paris", complete: true, issues: [] });
    expect(snap.instances).toEqual([
      {
        provider: "onprem",
        account: "dc-paris",
        region: "dc-paris",
        network: "lan",
        id: "db-1",
        name: "db-1.paris",
        privateIps: ["10.20.0.11", "10.20.0.12"],
        publicIps: ["203.0.113.7"],
        tags: { role: "db", tier: "1" },
        state: "stopped",
      },
      { provider: "onprem", account: "dc-paris", region: "dc-paris", network: "dmz", id: "web-1", name: "web-1", privateIps: ["192.0.2.10"], publicIps: [], tags: {}, state: "running" },
    ]);
    expect(snap.networks).toEqual([
      { provider: "onprem", account: "dc-paris", region: "dc-paris", id: "lan", name: "lan", cidrs: ["10.20.0.0/16", "10.21.0.0/24"], subnets: [] },
      { provider: "onprem", account: "dc-paris", region: "dc-paris", id: "dmz", name: "dmz", cidrs: ["192.0.2.0/24"], subnets: [] },
    ]);
  });

  it("onprem - each kind of bad input names the file and the field", async () => {
    const cases: [string, string][] = [
      [three("10.0.0.300"), "instances[2].privateIps[0]: must be an IPv4 address"],
      [three("fe80::1"), "instances[2].privateIps[0]: must be an IPv4 address"],
      ["site: s\nnetworks: [{id: lan, cidrs: [10.0.0.0/33]}]\ninstances: []\n", "networks[0].cidrs[0]: must be an IPv4 CIDR (a.b.c.d/n)"],
      ["site: s\nnetworks: []\ninstances: []\nextra: 1\n", '(top level): unknown key "extra"'],
      ["site: s\nnetworks: [{id: lan, cidrs: []}]\ninstances: [{id: a, network: lan, privateIps: [10.0.0.1], privateIp: 10.0.0.2}]\n", 'instances[0]: unknown key "privateIp"'],
      ["site: s\nnetworks: [{id: lan, cidrs: []}]\ninstances: [{id: a, network: lan, privateIps: [10.0.0.1]}, {id: a, network: lan, privateIps: [10.0.0.2]}]\n", 'instances[1].id: duplicate id "a" (also instances[0])'],
      ["site: s\nnetworks: [{id: lan, cidrs: []}, {id: lan, cidrs: []}]\ninstances: []\n", 'networks[1].id: duplicate id "lan" (also networks[0])'],
      ["site: s\nnetworks: [{id: lan, cidrs: []}]\ninstances: [{id: a, network: wan, privateIps: [10.0.0.1]}]\n", 'instances[0].network: unknown network "wan"'],
      ["site: s\nnetworks: [{id: lan, cidrs: []}]\ninstances: [{id: a, privateIps: [10.0.0.1]}]\n", "instances[0].network: is required"],
      ["site: s\nnetworks: [{id: lan, cidrs: []}]\ninstances: [{id: a, network: lan, privateIps: []}]\n", "instances[0].privateIps: must hold at least one address"],
      ["site: s\nnetworks: [{id: lan, cidrs: []}]\ninstances: [{id: a, network: lan, privateIps: [10.0.0.1], tags: {tier: 1}}]\n", "instances[0].tags.tier: must be a string (quote numbers and booleans)"],
      ["site: s\nnetworks: [{id: lan, cidrs: []}]\ninstances: [{id: a, network: lan, privateIps: [10.0.0.1], state: on}]\n", "instances[0].state: must be one of pending, running"],
      ["networks: []\ninstances: []\n", "site: is required"],
      ["", "(top level): must be a mapping"],
      ["site: s\nsite: t\nnetworks: []\ninstances: []\n", "not valid YAML"],
    ];
    for (const [content, want] of cases) {
      const got = await refusal(content);
      expect(got, `content:\n${content}`).toContain(`${file}`);
      expect(got, `content:\n${content}`).toContain(want);
    }
  });

  it("onprem - an address on two hosts and absurd sizes are refused, naming the field", async () => {
    const cases: [string, string][] = [
      [three("10.0.0.1"), "instances[2].privateIps[0]: address 10.0.0.1 is also instances[0].privateIps[0]'s"],
      ["site: s\nnetworks: [{id: lan, cidrs: []}]\ninstances:\n  - {id: a, network: lan, privateIps: [10.0.0.1], publicIps: [203.0.113.7]}\n  - {id: b, network: lan, privateIps: [10.0.0.2], publicIps: [203.0.113.7]}\n", "instances[1].publicIps[0]: address 203.0.113.7 is also instances[0].publicIps[0]'s"],
      [`site: s\nnetworks: [{id: lan, cidrs: []}]\ninstances: [{id: a, network: lan, privateIps: [${Array.from({ length: 65 }, (_, i) => `10.1.0.${i + 1}`).join(", ")}]}]\n`, "instances[0].privateIps: must hold at most 64 addresses"],
      [`site: s\nnetworks: [{id: lan, cidrs: []}]\ninstances: [{id: ${"a".repeat(300)}, network: lan, privateIps: [10.0.0.1]}]\n`, "instances[0].id: must be at most 256 characters"],
      [`site: s\nnetworks: []\ninstances: []\n# ${"x".repeat(5 * 1024 * 1024)}\n`, "over the 4194304-byte limit"],
    ];
    for (const [content, want] of cases) {
      const got = await refusal(content);
      expect(got, `content: ${content.slice(0, 200)}`).toContain(want);
    }
    // One host may list an address twice without refusing the file for it being someone else's.
    const ok = await OnpremInventory.fromFile(await (async () => {
      await writeFile(file, "site: s\nnetworks: [{id: lan, cidrs: []}]\ninstances: [{id: a, network: lan, privateIps: [10.0.0.1], publicIps: [10.0.0.1]}]\n");
      return file;
    })()).catch((e: unknown) => e);
    expect(ok, "one host's own address listed as private and public").not.toBeInstanceOf(Error);
  });

  it("onprem - edits to the file are seen on the next fetch", async () => {
    await writeFile(file, VALID);
    const inv = await OnpremInventory.fromFile(file);
    expect((await inv.fetch()).instances.map((i) => i.id)).toEqual(["db-1", "web-1"]);
    await writeFile(file, VALID.replace(/ {2}- id: web-1[\s\S]*$/, "  - id: web-2\n    network: dmz\n    privateIps: [192.0.2.11]\n    tags: { role: web }\n"));
    const snap = await inv.fetch();
    expect(snap.instances.map((i) => [i.id, i.tags])).toEqual([
      ["db-1", { role: "db", tier: "1" }],
      ["web-2", { role: "web" }],
    ]);
  });

  it("onprem - a missing or broken file fails the fetch instead of emptying the inventory", async () => {
    await writeFile(file, VALID);
    const inv = await OnpremInventory.fromFile(file);
    await rm(file);
    await expect(inv.fetch()).rejects.toThrow(InventoryFileError);
    await expect(inv.fetch()).rejects.toThrow(/cannot read/);
    await writeFile(file, "site: dc-paris\nnetworks: [\n");
    await expect(inv.fetch()).rejects.toThrow(/not valid YAML/);
    await writeFile(file, VALID.replace("dc-paris", "dc-lyon"));
    await expect(inv.fetch()).rejects.toThrow(/site: changed from "dc-paris" to "dc-lyon"/);
  });
});

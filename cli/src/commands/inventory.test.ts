/** `weft inventory` output and `weft controller --inventory-config`: the file's validation and paths. */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { InventoryAccountStatus, InventoryView } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readInventoryConfig } from "./controller.js";
import { printLines } from "../output.js";
import { filterView, formatAccount, formatSync, formatView } from "./inventory.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "weft-cli-inv-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const NODE = "n-00000000000000a1";
const status = (over: Partial<InventoryAccountStatus> = {}): InventoryAccountStatus => ({
  provider: "aws",
  account: "111111111111",
  syncedAt: "2026-01-01T00:00:00.000Z",
  result: "ok",
  complete: true,
  issues: [],
  counts: { instances: 3, networks: 1, bound: 2 },
  changes: { added: 1, updated: 0, deleted: 0 },
  removed: [],
  heldBack: [],
  stopped: [],
  relabelled: [],
  ...over,
});

describe("inventory command", () => {
  it("inventory list - an escape-laden tag and name print inert: no control character reaches the terminal", async () => {
    const evil = "\u001b]0;pwned\u0007\u001b[2J\u001b[31mred\r\u202eevil\u009b";
    const view: InventoryView = {
      instances: [{ provider: "aws", account: "1", region: "r", network: "vpc-a", id: "i-1", name: `web${evil}`, privateIps: ["10.0.0.1"], publicIps: [], tags: { [`k${evil}`]: evil }, state: "running", seenAt: "T" }],
      networks: [],
      statuses: [status({ issues: [{ scope: "i-1", code: "bad_tag", message: `tag ${evil}` }] })],
      siteRoutes: [],
      overlaps: [],
    };
    const table = formatView(view);
    const written: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => written.push(chunk) > 0) as unknown as typeof process.stdout.write;
    try {
      printLines(table);
      printLines(formatSync({ startedAt: "T", finishedAt: "T", accounts: [status({ issues: [{ scope: "i-1", code: "bad_tag", message: `tag ${evil}` }] })] }));
    } finally {
      process.stdout.write = write;
    }
    const out = written.join("");
    // eslint-disable-next-line no-control-regex
    const controls = [...out.matchAll(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e]/g)].map((m) => m[0].charCodeAt(0).toString(16));
    expect(controls, "control characters written to the terminal").toEqual([]);
    expect(out, "the escapes are shown, readable").toContain("\\x1b]0;pwned\\x07");
    expect(out, "bidi override shown").toContain("\\u202e");
  });

  it("inventory sync - prints per account: instances, changes, removed, held back with why, issues; a failure says nothing was touched", () => {
    const text = formatAccount(
      status({
        removed: [{ nodeId: NODE, name: "web-1", instance: "i-1", reason: "terminated", evidence: "the listing of T has instance i-1 terminated" }],
        heldBack: [{ nodeId: "n-00000000000000a2", instance: "i-2", reason: "absent", evidence: "e" }],
        heldBackReason: "maxRemovalShare 0.25 of 2 bound nodes allows 1 removal(s) per cycle",
        issues: [{ scope: "eu-west-1/DescribeVpcs", code: "server_error", message: "boom" }],
      }),
    );
    expect(text, "summary").toMatch(/^aws:111111111111 {2}ok: 3 instances, 1 networks, 2 bound nodes; \+1 ~0 -0 records; 1 removed, 1 held back/);
    expect(text, "removed").toMatch(/removed {3}web-1 \(n-00000000000000a1\): the listing of T has instance i-1 terminated/);
    expect(text, "held back").toMatch(/held back n-00000000000000a2 .*absent, instance i-2/);
    expect(text, "why").toMatch(/why held back: maxRemovalShare/);
    expect(text, "issue").toMatch(/issue {5}eu-west-1\/DescribeVpcs: server_error: boom/);
    const failed = formatAccount(status({ result: "failed", complete: false, error: { code: "auth", message: "fetch: AuthFailure" } }));
    expect(failed, "failed").toBe("aws:111111111111  failed (auth): fetch: AuthFailure; nothing stored or removed");
    expect(formatSync({ startedAt: "", finishedAt: "", accounts: [] }), "no accounts").toMatch(/no inventory accounts are configured/);
  });

  it("inventory list - instances with state, node and tags; networks; overlaps; --provider filters", () => {
    const view: InventoryView = {
      instances: [
        { provider: "aws", account: "1", region: "r", network: "vpc-a", id: "i-1", name: "web", privateIps: ["10.0.0.1"], publicIps: [], tags: { role: "web" }, state: "running", seenAt: "T", boundNode: NODE },
        { provider: "onprem", account: "dc", region: "dc", network: "lan", id: "h1", name: "h1", privateIps: ["10.0.9.1"], publicIps: [], tags: {}, state: "stopped", seenAt: "T" },
      ],
      networks: [
        { provider: "aws", account: "1", id: "vpc-a", cidrs: ["10.0.0.0/16"], subnets: [], seenAt: "T" },
        { provider: "onprem", account: "dc", id: "lan", cidrs: ["10.0.0.0/16"], subnets: [], seenAt: "T" },
      ],
      statuses: [status()],
      siteRoutes: [
        {
          site: "aws-eu",
          inferred: false,
          cidrs: ["10.0.0.0/16", "10.1.0.0/16"],
          networks: ["vpc-a"],
          conflicts: ["10.0.0.0/16"],
          gateway: { nodeId: NODE, name: "web" },
          advertised: ["10.1.0.0/16"],
          withheld: [{ cidr: "10.0.0.0/16", reason: "overlaps another network" }],
        },
        { site: "onprem:lan", inferred: true, cidrs: ["10.0.0.0/16"], networks: ["lan"], conflicts: ["10.0.0.0/16"], advertised: [], withheld: [{ cidr: "10.0.0.0/16", reason: "overlaps another network" }] },
      ],
      overlaps: [
        {
          a: { provider: "aws", account: "1", network: "vpc-a", site: "aws-eu", cidr: "10.0.0.0/16" },
          b: { provider: "onprem", account: "dc", network: "lan", site: "onprem:lan", cidr: "10.0.0.0/16" },
          sameSite: false,
        },
      ],
    };
    const text = formatView(view);
    expect(text, "instance row").toMatch(/aws +1 +r +i-1 +web +running +10\.0\.0\.1 +n-00000000000000a1 +role=web/);
    expect(text, "site route row: gateway, advertised, remapped, withheld with the reason").toMatch(/aws-eu +10\.0\.0\.0\/16,10\.1\.0\.0\/16 +vpc-a +web +10\.1\.0\.0\/16 +- +10\.0\.0\.0\/16 \(overlaps another network\)/);
    expect(text, "site without a gateway").toMatch(/onprem:lan \(no node\) +10\.0\.0\.0\/16 +lan +- +- +- +10\.0\.0\.0\/16/);
    expect(text, "overlap").toMatch(/OVERLAPPING CIDRS \(not merged; across sites remapped where the pool allows, see REMAPPED\):\n {2}10\.0\.0\.0\/16 aws:vpc-a \(site aws-eu\) {2}overlaps {2}10\.0\.0\.0\/16 onprem:lan/);
    const remapped = formatView({ ...view, siteRoutes: [{ ...view.siteRoutes[0]!, advertised: ["100.96.0.0/16", "10.1.0.0/16"], withheld: [], remaps: [{ cidr: "10.0.0.0/16", remapped: "100.96.0.0/16" }] }] });
    expect(remapped, "a remapped network shows its real and remapped range").toMatch(/aws-eu +\S+ +vpc-a +web +100\.96\.0\.0\/16,10\.1\.0\.0\/16 +10\.0\.0\.0\/16 as 100\.96\.0\.0\/16 +-/);
    const aws = filterView(view, "aws");
    expect([aws.instances.length, aws.networks.length, aws.siteRoutes.map((r) => r.site), aws.overlaps.length], "--provider aws").toEqual([1, 1, ["aws-eu"], 1]);
  });

  it("controller --inventory-config - a valid file is the section (relative paths from its directory); a bad one names the file and field", async () => {
    const good = join(dir, "inventory.yaml");
    await writeFile(good, "intervalSeconds: 30\naccounts:\n  - provider: onprem\n    file: sites/dc.yaml\n  - provider: aws\n    account: '111111111111'\n    regions: [eu-west-1]\n");
    expect(await readInventoryConfig(good), "section").toEqual({
      intervalSeconds: 30,
      accounts: [
        { provider: "onprem", file: join(dir, "sites/dc.yaml") },
        { provider: "aws", account: "111111111111", regions: ["eu-west-1"] },
      ],
    });
    const wrapped = join(dir, "wrapped.yaml");
    await writeFile(wrapped, "inventory:\n  maxRemovalShare: 0.5\n");
    expect(await readInventoryConfig(wrapped), "a document with an inventory key").toEqual({ maxRemovalShare: 0.5 });
    const bad = join(dir, "bad.yaml");
    await writeFile(bad, "accounts:\n  - provider: aws\n    account: '111111111111'\n    regions: []\n");
    await expect(readInventoryConfig(bad), "bad file").rejects.toThrow(`--inventory-config ${bad}: inventory.accounts.0.regions: name at least one region`);
  });
});

/**
 * The join checks' decisions over instance records written through the real InventoryStore on a
 * real nats-server, for the instance a verified signed document names: each rejection with its
 * reason, the addresses the document names, the source-address rules, bindings, and selectors
 * (every field, tags included).
 */
import { Kvm } from "@nats-io/kv";
import { Buckets, type InstanceIdentityClaim, type InstanceSelector } from "@weft/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestController, type TestController } from "../testing.js";
import { checkInstanceClaim, selectorMismatch, type InstanceClaimCheck } from "./join.js";
import { InventoryStore, keyOfInstance, type StoredInstance } from "./store.js";

let t: TestController;
let inventory: InventoryStore;

beforeAll(async () => {
  t = await startTestController();
  inventory = new InventoryStore(await new Kvm(t.running.nc).open(Buckets.inventory));
});
afterAll(async () => {
  await t?.stop();
});

let counter = 0;
/** Writes an instance (running, aws account 1111, eu-west-1) with `overrides` and returns it. */
async function putInstance(overrides: Partial<StoredInstance> = {}): Promise<StoredInstance> {
  const n = ++counter;
  const instance: StoredInstance = {
    provider: "aws",
    account: "111111111111",
    region: "eu-west-1",
    zone: "eu-west-1a",
    network: "vpc-0aa",
    subnet: "subnet-0aa",
    id: `i-join${String(n).padStart(4, "0")}`,
    name: `web-${n}`,
    privateIps: [`10.1.0.${n}`],
    publicIps: [`203.0.113.${n}`],
    tags: { env: "prod", team: "web" },
    state: "running",
    seenAt: new Date().toISOString(),
    ...overrides,
  };
  expect(await inventory.upsertInstance(instance, () => false), `write instance ${instance.id}`).toBe("added");
  return instance;
}

function claimOf(i: StoredInstance, overrides: Partial<InstanceIdentityClaim> = {}): InstanceIdentityClaim {
  return { provider: i.provider, id: i.id, account: i.account, region: i.region, ...overrides };
}

function check(i: StoredInstance, overrides: Partial<InstanceClaimCheck> = {}) {
  return checkInstanceClaim({ claim: claimOf(i), observedAddress: i.privateIps[0], inventory, ...overrides });
}

async function expectRejected(what: string, got: Promise<Awaited<ReturnType<typeof check>>>, code: string, message: string | RegExp): Promise<void> {
  const r = await got;
  expect(r.ok, `${what}: got ok, want rejected with ${code}`).toBe(false);
  if (r.ok) return;
  expect(r.code, `${what}: code (message: ${r.message})`).toBe(code);
  if (typeof message === "string") expect(r.message, `${what}: message`).toBe(message);
  else expect(r.message, `${what}: message`).toMatch(message);
}

describe("join checks", () => {
  it("join - an instance in the inventory, running, reached from its address, unbound: admitted with its record", async () => {
    const i = await putInstance();
    const got = await check(i);
    expect(got.ok ? got.instance.id : got, "check").toBe(i.id);
  });

  it("join - an instance missing from the inventory is refused, naming id, provider and account and what to do", async () => {
    await expectRejected(
      "unknown instance",
      checkInstanceClaim({ claim: { provider: "aws", id: "i-123", account: "1111" }, observedAddress: "10.0.0.1", inventory }),
      "not_in_inventory",
      "instance i-123 (aws, account 1111) is not in the inventory; run `weft inventory sync` or check the account is configured",
    );
    await expectRejected(
      "unknown instance without an account",
      checkInstanceClaim({ claim: { provider: "gcp", id: "4242" }, observedAddress: "10.0.0.1", inventory }),
      "not_in_inventory",
      "instance 4242 (gcp) is not in the inventory; run `weft inventory sync` or check the account is configured",
    );
  });

  it("join - an instance that is not running is refused with its state", async () => {
    for (const state of ["stopped", "pending", "terminated"] as const) {
      const i = await putInstance({ state });
      await expectRejected(`${state} instance`, check(i), "not_running", new RegExp(`instance ${i.id} \\(aws, account 111111111111\\) is ${state} in the inventory .*only running instances may join`));
    }
  });

  it("join - a document whose account, region, zone or address differs from the inventory is refused naming both", async () => {
    const i = await putInstance();
    await expectRejected("other account", check(i, { claim: claimOf(i, { account: "222222222222" }) }), "claim_mismatch", /signed document says account 222222222222, the inventory has this instance in account 111111111111/);
    await expectRejected("other region", check(i, { claim: claimOf(i, { region: "us-east-1" }) }), "claim_mismatch", /signed document says region us-east-1, the inventory has eu-west-1/);
    await expectRejected("other zone", check(i, { claim: claimOf(i, { zone: "eu-west-1c" }) }), "claim_mismatch", /signed document says zone eu-west-1c, the inventory has eu-west-1a/);
    await expectRejected("other private address", check(i, { attestedAddresses: ["10.99.0.1"] }), "claim_mismatch", new RegExp(`signed document says address 10\\.99\\.0\\.1, the inventory has 10\\.1\\.0\\.${counter}, 203`));
    const same = await check(i, { attestedAddresses: [...i.privateIps] });
    expect(same.ok, `the document's address is the instance's: ${same.ok ? "" : same.message}`).toBe(true);
    const noAccount = await check(i, { claim: { provider: "aws", id: i.id } });
    expect(noAccount.ok, `claim without account or region: ${noAccount.ok ? "" : noAccount.message}`).toBe(true);
  });

  it("join - source address, default rule: the instance's own address or one the inventory does not know passes; another instance's is refused", async () => {
    const i = await putInstance({ privateIps: ["10.1.7.7"], publicIps: ["198.51.100.77"] });
    const other = await putInstance({ privateIps: ["10.1.7.8"], publicIps: ["198.51.100.78"] });
    const instanceAt = async (a: string) => (await inventory.instances()).find((x) => x.privateIps.includes(a) || x.publicIps.includes(a));
    for (const [what, observedAddress] of [
      ["source = private IP", "10.1.7.7"],
      ["source = public IP (1:1 NAT)", "198.51.100.77"],
      ["source as IPv4-mapped IPv6", "::ffff:10.1.7.7"],
      ["source a NAT the inventory does not know", "192.0.2.9"],
      ["no source address", undefined],
    ] as const) {
      const got = await check(i, { observedAddress, instanceAt });
      expect(got.ok, `${what}: ${got.ok ? "" : got.message}`).toBe(true);
    }
    await expectRejected(
      "from another instance's address",
      check(i, { observedAddress: "198.51.100.78", instanceAt }),
      "address_mismatch",
      `instance ${i.id} (aws, account 111111111111): the enrollment came from 198.51.100.78, an address of another instance in the inventory (instance ${other.id} (aws, account 111111111111)); a document is only good from its own instance`,
    );
  });

  it("join - source address, rule `instance`: only the instance's own addresses; rule `any`: the document alone", async () => {
    const i = await putInstance({ privateIps: ["10.1.8.8"], publicIps: [] });
    await expectRejected(
      "strict, from a NAT",
      check(i, { observedAddress: "192.0.2.9", sourceAddress: "instance" }),
      "address_mismatch",
      `instance ${i.id} (aws, account 111111111111): the enrollment came from 192.0.2.9, none of the instance's addresses (10.1.8.8); enroll from the instance itself, or sync the inventory if its addresses changed`,
    );
    await expectRejected("strict, no source", check(i, { observedAddress: undefined, sourceAddress: "instance" }), "address_mismatch", /came from an unknown address/);
    const own = await check(i, { observedAddress: "10.1.8.8", sourceAddress: "instance" });
    expect(own.ok, `strict, own address: ${own.ok ? "" : own.message}`).toBe(true);
    const anyRule = await check(i, { observedAddress: "10.1.0.1", sourceAddress: "any", instanceAt: async () => ({ ...i, id: "i-other" }) });
    expect(anyRule.ok, `any, from another instance's address: ${anyRule.ok ? "" : anyRule.message}`).toBe(true);
  });

  it("join - an instance bound to a node that exists is refused; a binding to a deleted node is not", async () => {
    const i = await putInstance();
    await inventory.bind(keyOfInstance(i), "n-00000000000000aa");
    await expectRejected(
      "bound, no node lookup",
      check(i),
      "already_bound",
      `instance ${i.id} (aws, account 111111111111) is already bound to node n-00000000000000aa; delete that node first (\`weft nodes delete n-00000000000000aa\`)`,
    );
    await expectRejected("bound to a live node", check(i, { nodeExists: async () => true }), "already_bound", /already bound to node n-00000000000000aa/);
    const stale = await check(i, { nodeExists: async (id) => id !== "n-00000000000000aa" });
    expect(stale.ok ? stale.instance.boundNode : stale.message, "bound to a deleted node: admitted, the record shows the old binding").toBe("n-00000000000000aa");
  });

  it("join - a selector mismatch names the field, what it wants and what the instance has", async () => {
    const i = await putInstance({ tags: { env: "dev", team: "web" } });
    await expectRejected(
      "tag value",
      check(i, { selector: { tags: { env: "prod" } } }),
      "selector_mismatch",
      `instance ${i.id} (aws, account 111111111111) does not match the join key's instance selector: tags.env: want prod, instance has dev`,
    );
    await expectRejected("provider", check(i, { selector: { provider: "gcp" } }), "selector_mismatch", /: provider: want gcp, instance has aws$/);
    await expectRejected("account", check(i, { selector: { account: "999" } }), "selector_mismatch", /: account: want 999, instance has 111111111111$/);
    await expectRejected("region", check(i, { selector: { region: "us-east-1" } }), "selector_mismatch", /: region: want us-east-1, instance has eu-west-1$/);
    await expectRejected("network", check(i, { selector: { network: "vpc-0bb" } }), "selector_mismatch", /: network: want vpc-0bb, instance has vpc-0aa$/);
    await expectRejected("missing tag", check(i, { selector: { tags: { owner: "ops" } } }), "selector_mismatch", /: tags\.owner: want ops, instance has no tag owner$/);
    await expectRejected("two fields", check(i, { selector: { region: "us-east-1", tags: { env: "prod" } } }), "selector_mismatch", /region: want us-east-1, instance has eu-west-1; tags\.env: want prod, instance has dev$/);
  });

  it("join - a selector matches when every field it names matches; other tags and fields are ignored; {} matches any", async () => {
    const i = await putInstance({ tags: { env: "prod", team: "web", extra: "x" } });
    const selectors: InstanceSelector[] = [{}, { provider: "aws" }, { provider: "aws", account: "111111111111", region: "eu-west-1", network: "vpc-0aa", tags: { env: "prod", team: "web" } }, { tags: {} }];
    for (const selector of selectors) {
      const got = await check(i, { selector });
      expect(got.ok, `selector ${JSON.stringify(selector)}: ${got.ok ? "" : got.message}`).toBe(true);
    }
  });

  it("join - selectorMismatch lists every mismatch in a fixed order (tags sorted)", () => {
    const instance = { provider: "azure" as const, account: "sub-1", region: "westeurope", network: "vnet-1", tags: { b: "2", a: "1" } };
    expect(selectorMismatch({ provider: "azure", tags: { b: "x", a: "y", c: "z" } }, instance)).toEqual([
      "tags.a: want y, instance has 1",
      "tags.b: want x, instance has 2",
      "tags.c: want z, instance has no tag c",
    ]);
    expect(selectorMismatch({ provider: "azure", account: "sub-1", tags: { a: "1" } }, instance)).toEqual([]);
  });
});

/**
 * Join by instance identity: does the instance a verified signed document names (attest/) exist in
 * the inventory, running, in the account and region the document says, with the addresses it says,
 * reached from an address the source-address rule allows, unbound to another node, and matching a
 * selector? Pure decisions over the inventory store; enrollment runs them before it claims or
 * writes anything.
 *
 * The signed document is what binds the claim to the machine: only the cloud could have signed it,
 * for that instance. The request's source address is an extra check where it holds
 * (`inventory.instanceIdentity.sourceAddress`): by default a request from an address the inventory
 * lists for a *different* instance is refused, one from the instance's own address or from an
 * address the inventory does not know (a NAT) is left to the document. An agent's own statement of
 * its endpoints proves nothing and is not consulted.
 */
import { parseIpv4, type InstanceIdentityClaim, type InstanceSelector } from "@weft/protocol";
import type { SourceAddressRule } from "../attest/config.js";
import { keyOfInstance, type InventoryStore, type StoredInstance } from "./store.js";

/** Why a claim was refused; `message` says what is wrong and what to do. */
export type InstanceRejectionCode =
  | "not_in_inventory"
  | "not_running"
  | "claim_mismatch"
  | "address_mismatch"
  | "selector_mismatch"
  | "already_bound";

export type InstanceCheck =
  | { ok: true; instance: StoredInstance }
  | { ok: false; code: InstanceRejectionCode; message: string };

export interface InstanceClaimCheck {
  /** The instance as the verified signed document names it. */
  claim: InstanceIdentityClaim;
  /** Private addresses the signed document itself names (AWS privateIp); each must be the instance's. */
  attestedAddresses?: string[] | undefined;
  /** Source address of the enrollment request as the controller saw it (may be IPv4-mapped IPv6). */
  observedAddress: string | undefined;
  /** Where the request may come from; default `not-another-instance`. */
  sourceAddress?: SourceAddressRule | undefined;
  /** The inventory instance that has `address` among its addresses, if any (for `not-another-instance`). */
  instanceAt?: ((address: string) => Promise<StoredInstance | undefined>) | undefined;
  /** Absent: any instance that passes the other checks. */
  selector?: InstanceSelector | undefined;
  inventory: Pick<InventoryStore, "instance">;
  /**
   * Whether the node an instance is bound to still exists. Absent: every binding counts, so a
   * bound instance is always refused.
   */
  nodeExists?: (nodeId: string) => Promise<boolean>;
}

/** "instance i-123 (aws, account 1111)": how messages name the claimed instance. */
export function describeClaim(claim: InstanceIdentityClaim): string {
  return `instance ${claim.id} (${claim.provider}${claim.account === undefined ? "" : `, account ${claim.account}`})`;
}

/**
 * Checks `claim` against the inventory and `selector`, in the order a person would: exists,
 * matches what the document says, running, reached from an allowed address, free, selected.
 */
export async function checkInstanceClaim(check: InstanceClaimCheck): Promise<InstanceCheck> {
  const { claim, inventory } = check;
  const named = describeClaim(claim);
  const instance = await inventory.instance(claim.provider, claim.account, claim.id);
  if (!instance) {
    // Same id under another account: say so rather than "not in the inventory".
    const elsewhere = claim.account === undefined ? undefined : await inventory.instance(claim.provider, undefined, claim.id);
    if (elsewhere && elsewhere.account !== claim.account) {
      return reject("claim_mismatch", `${named}: the signed document says account ${claim.account}, the inventory has this instance in account ${elsewhere.account}`);
    }
    return reject("not_in_inventory", `${named} is not in the inventory; run \`weft inventory sync\` or check the account is configured`);
  }
  const mismatch = claimMismatch(claim, instance);
  if (mismatch) return reject("claim_mismatch", `${named}: ${mismatch}`);
  if (instance.state !== "running") return reject("not_running", `${named} is ${instance.state} in the inventory (seen ${instance.seenAt}); only running instances may join`);
  const unlisted = (check.attestedAddresses ?? []).filter((a) => !instance.privateIps.includes(a) && !instance.publicIps.includes(a));
  if (unlisted.length > 0) {
    return reject("claim_mismatch", `${named}: the signed document says address ${unlisted.join(", ")}, the inventory has ${[...instance.privateIps, ...instance.publicIps].join(", ") || "none"}; sync the inventory if its addresses changed`);
  }
  const source = await sourceMismatch(check, instance);
  if (source) return reject("address_mismatch", `${named}: ${source}`);
  if (instance.boundNode !== undefined && (check.nodeExists === undefined || (await check.nodeExists(instance.boundNode)))) {
    return reject("already_bound", `${named} is already bound to node ${instance.boundNode}; delete that node first (\`weft nodes delete ${instance.boundNode}\`)`);
  }
  if (check.selector) {
    const why = selectorMismatch(check.selector, instance);
    if (why.length > 0) return reject("selector_mismatch", `${named} does not match the join key's instance selector: ${why.join("; ")}`);
  }
  return { ok: true, instance };
}

/** What is wrong with where the request came from under the source-address rule, or undefined. */
async function sourceMismatch(check: InstanceClaimCheck, instance: StoredInstance): Promise<string | undefined> {
  const rule = check.sourceAddress ?? "not-another-instance";
  if (rule === "any") return undefined;
  const addresses = [...instance.privateIps, ...instance.publicIps];
  const observed = normalizeAddress(check.observedAddress);
  if (observed !== undefined && addresses.includes(observed)) return undefined;
  if (rule === "instance") {
    return `the enrollment came from ${observed ?? "an unknown address"}, none of the instance's addresses (${addresses.join(", ") || "none"}); enroll from the instance itself, or sync the inventory if its addresses changed`;
  }
  const other = observed === undefined ? undefined : await check.instanceAt?.(observed);
  if (other && keyOfInstance(other) !== keyOfInstance(instance)) {
    return `the enrollment came from ${observed}, an address of another instance in the inventory (${describeClaim(other)}); a document is only good from its own instance`;
  }
  return undefined;
}

/**
 * Every field of `selector` the instance does not satisfy, named as `field: want X, instance has Y`
 * (tags as `tags.<key>`); empty when it matches.
 */
export function selectorMismatch(selector: InstanceSelector, instance: Pick<StoredInstance, "provider" | "account" | "region" | "network" | "tags">): string[] {
  const out: string[] = [];
  const field = (name: string, want: string | undefined, got: string) => {
    if (want !== undefined && want !== got) out.push(`${name}: want ${want}, instance has ${got}`);
  };
  field("provider", selector.provider, instance.provider);
  field("account", selector.account, instance.account);
  field("region", selector.region, instance.region);
  field("network", selector.network, instance.network);
  for (const [key, want] of Object.entries(selector.tags ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    const got = instance.tags[key];
    if (got === undefined) out.push(`tags.${key}: want ${want}, instance has no tag ${key}`);
    else if (got !== want) out.push(`tags.${key}: want ${want}, instance has ${got}`);
  }
  return out;
}

/** What the signed document says that the inventory contradicts (account, region, zone), or undefined. */
function claimMismatch(claim: InstanceIdentityClaim, instance: StoredInstance): string | undefined {
  const diffs: string[] = [];
  if (claim.account !== undefined && claim.account !== instance.account) diffs.push(`the signed document says account ${claim.account}, the inventory has ${instance.account}`);
  if (claim.region !== undefined && claim.region !== instance.region) diffs.push(`the signed document says region ${claim.region}, the inventory has ${instance.region}`);
  if (claim.zone !== undefined && instance.zone !== undefined && claim.zone !== instance.zone) diffs.push(`the signed document says zone ${claim.zone}, the inventory has ${instance.zone}`);
  return diffs.length > 0 ? diffs.join("; ") : undefined;
}

/** `::ffff:10.0.0.5` → `10.0.0.5`; anything not IPv4 stays as it is. */
function normalizeAddress(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  const v4 = address.replace(/^::ffff:/i, "");
  return parseIpv4(v4) === undefined ? address : v4;
}

function reject(code: InstanceRejectionCode, message: string): InstanceCheck {
  return { ok: false, code, message };
}

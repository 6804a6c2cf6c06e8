/**
 * Enrollment: authorize (verify the join key; verify the signed instance document (attest/) and
 * check the instance it names against the inventory when the key has an instance selector or when
 * no key is given and an enrollment policy must admit the instance; an unsigned instance claim is
 * refused), use up the signed document, claim the node's WireGuard key, name, an overlay address
 * and a workload prefix (each compare-and-set), issue its NATS credentials, bind the instance,
 * consume the key and write the node. A node bound to an instance gets its `cloud.` labels and any
 * tag identity at once (as the inventory sync would give them, labels.ts), so its role tags (e.g.
 * `weft:gateway`) count from the moment it joins. Any failure rolls back the claims, binding and
 * document use already made (an Azure nonce stays used), so a rejected enrollment stores nothing;
 * everything that can reject the request runs before the key is consumed, so a bad request never
 * burns a one-time key.
 *
 * The node's site comes from what vouches for it (site.ts): the key's or policy's site, or its
 * instance's network; an agent naming another is refused. Refusals carry the full reason in
 * their message and a stable `reason`; the API tells strangers only the code (api/server.ts).
 */
import { randomBytes } from "node:crypto";
import { type EnrollRequest, type EnrollResponse, type NodeRecord, type Identity, type InstanceIdentityClaim, type InstanceSelector, type SiteSource } from "@weft/protocol";
import type { Logger } from "pino";
import type { AttestedInstance, InstanceAttestor } from "../attest/index.js";
import {
  ConflictError,
  EnrollmentInProgressError,
  InstanceRejectedError,
  JoinKeyRejectedError,
  NotFoundError,
  SiteRejectedError,
  StoreUnavailableError,
  ValidationError,
  type FieldIssue,
} from "../errors.js";
import { assertUserPublicKey, InvalidUserKeyError } from "../nats/index.js";
import type { AddressAllocator } from "../ipam/allocator.js";
import type { PrefixAllocator } from "../ipam/prefixes.js";
import type { Claims, ClaimKind } from "../ipam/claims.js";
import { spiffeIdFromLabels } from "../identity/labels.js";
import { checkInstanceClaim, describeClaim, selectorMismatch } from "../inventory/join.js";
import { desiredNode } from "../inventory/tag-labels.js";
import { keyOfInstance, type InventoryStore, type StoredInstance } from "../inventory/store.js";
import type { JoinKeys, StoredJoinKey } from "../keys/joinkeys.js";
import type { Versioned } from "../store/kv.js";
import type { NodeRegistry } from "../nodes/registry.js";
import type { EnrollmentPolicies } from "./enrollment-policies.js";
import { decideSite, type SiteVoucher } from "./site.js";

export interface EnrollmentDeps {
  joinKeys: JoinKeys;
  claims: Claims;
  allocator: AddressAllocator;
  /** Workload prefixes (overlay.workloadCidr). */
  prefixes: PrefixAllocator;
  registry: NodeRegistry;
  /** Issue the node's NATS user JWT for its own public nkey. */
  issueAgentJwt: (nodeId: string, natsPublicKey: string) => Promise<string>;
  /** NATS URLs to hand the agent, given the host name it used to reach the API. */
  natsServersFor: (apiHost: string | undefined) => string[];
  /** The CA (PEM) the NATS servers' certificates chain to, handed to the agent. */
  natsCaPem: string;
  /** The numeric identity of a SPIFFE ID (allocated on first use). */
  allocateIdentity: (spiffeId: string) => Promise<Identity>;
  trustDomain: string;
  heartbeatSeconds: number;
  /** The cloud inventory; absent: enrollments that present an instance identity are refused. */
  inventory?: Pick<InventoryStore, "instance" | "instances" | "changeInstance" | "unbind">;
  /** Verifies signed instance documents; absent: enrollments that present one are refused. */
  attestor?: Pick<InstanceAttestor, "verify" | "consume" | "sourceAddress">;
  /** Enrollment policies for keyless joins; absent: every enrollment needs a join key. */
  policies?: Pick<EnrollmentPolicies, "list">;
  /**
   * An enrollment that took longer than this (a stalled store, a controller frozen mid-way) gives up
   * before it writes the node record and rolls back: past twice this, its claims count as orphaned
   * (ipam/orphans.ts) and may be released by another controller. Default: no limit.
   */
  giveUpAfterMs?: number;
  /** The site an instance's network is (inventory `sites`); absent: networks vouch for no site. */
  siteOfInstance?: (instance: StoredInstance) => string | undefined;
  log: Logger;
}

/** Who let a request in: its join key, or the enrollment policy that matched its instance; and the instance it proved. */
interface Grant {
  key: Versioned<StoredJoinKey> | undefined;
  policy: string | undefined;
  labels: Record<string, string>;
  instance: StoredInstance | undefined;
  /** The verified signed document that named `instance`. */
  attested: AttestedInstance | undefined;
  /** The site the key or policy vouches for. */
  site: SiteVoucher | undefined;
}

export interface EnrollContext {
  /** Source address of the request, as the controller saw it. */
  observedAddress?: string;
  /** Host name (without port) the agent used to reach the API. */
  apiHost?: string;
}

export function newNodeId(): string {
  return `n-${randomBytes(8).toString("hex")}`;
}

export class Enrollment {
  constructor(private readonly deps: EnrollmentDeps) {}

  /**
   * Enroll `req` (parsed and checked by the API: EnrollRequest, refuseAssignedFields, enrollRequestIssues).
   * A request refused because its WireGuard key is taken or its one-time key used is answered as a
   * repeat when it is one (`repeated`).
   */
  async enroll(req: EnrollRequest, ctx: EnrollContext = {}): Promise<EnrollResponse> {
    try {
      return await this.enrollNew(req, ctx);
    } catch (err) {
      const maybeRepeat = err instanceof ConflictError || (err instanceof JoinKeyRejectedError && err.reason === "join_key_used");
      const again = maybeRepeat
        ? await this.repeated(req, ctx).catch((e: unknown) => {
            if (e instanceof EnrollmentInProgressError) throw e;
            this.deps.log.warn({ err: e }, "cannot tell whether a refused enrollment repeats an earlier one; refused");
            return undefined;
          })
        : undefined;
      if (again) return again;
      throw err;
    }
  }

  /**
   * The answer to an enrollment the node already made, when `req` is exactly that one again: an
   * agent whose answer was lost (a timeout on a loaded controller) retries with the same keys and
   * would otherwise be refused for good (409, or 403 for its own one-time key). The same WireGuard
   * key, NATS key, name and join key (right secret, not revoked or expired) as the node record, the
   * site and address it asked for if any: the node's record as it is, a fresh user JWT for the NATS
   * key it already holds, no key use counted again. Anyone able to send this holds the join key
   * (and could enroll a node of their own) and gets a credential only the node's NATS seed can use.
   * Enrollments by instance identity are not repeated: their signed documents are single-use.
   */
  private async repeated(req: EnrollRequest, ctx: EnrollContext): Promise<EnrollResponse | undefined> {
    if (req.joinKey === undefined || req.attestation !== undefined || req.instance !== undefined) return undefined;
    const owner = await this.deps.claims.owner("wgkey", req.wireguardPublicKey);
    if (owner === undefined) return undefined;
    const node = await this.deps.registry.get(owner).catch((err: unknown) => {
      if (!(err instanceof NotFoundError)) throw err;
      // Claimed, no record yet: the first request is still being served (or rolling back).
      throw new EnrollmentInProgressError(`an enrollment with WireGuard public key ${req.wireguardPublicKey} is still being made; retry in a few seconds`);
    });
    const workloadPrefix = node.workloadPrefix;
    const same =
      node.natsPublicKey === req.natsPublicKey &&
      node.name === req.name &&
      (req.site === undefined || req.site === node.site) &&
      (req.overlayAddress === undefined || req.overlayAddress === node.overlayAddress) &&
      workloadPrefix !== undefined &&
      node.joinKeyId !== "" &&
      (await this.deps.joinKeys.presentsStill(req.joinKey, node.joinKeyId));
    if (!same) return undefined;
    const userJwt = await this.deps.issueAgentJwt(node.nodeId, node.natsPublicKey);
    this.deps.log.info({ node: node.nodeId, name: node.name }, "enrollment repeated by the node it enrolled (its answer was lost); answered again");
    return this.answer(node, workloadPrefix, userJwt, ctx);
  }

  private answer(node: Pick<NodeRecord, "nodeId" | "site" | "overlayAddress">, workloadPrefix: string, userJwt: string, ctx: EnrollContext): EnrollResponse {
    return {
      nodeId: node.nodeId,
      site: node.site,
      overlayAddress: node.overlayAddress,
      overlayCidr: this.deps.allocator.rangeText,
      workloadPrefix,
      workloadCidr: this.deps.prefixes.rangeText,
      nats: { servers: this.deps.natsServersFor(ctx.apiHost), userJwt, caPem: this.deps.natsCaPem },
      heartbeatSeconds: this.deps.heartbeatSeconds,
    };
  }

  private async enrollNew(req: EnrollRequest, ctx: EnrollContext): Promise<EnrollResponse> {
    const { joinKeys, claims, allocator, registry, log } = this.deps;
    const startedAt = Date.now();
    const grant = await this.authorize(req, ctx);
    const site = this.siteOf(req, grant);
    const key = grant.key;
    const nodeId = newNodeId();
    const made: { kind: ClaimKind; value: string }[] = [];
    let consumedKey = false;
    let bound: string | undefined;
    let unconsume: (() => Promise<void>) | undefined;
    const claimOrConflict = async (kind: ClaimKind, value: string, what: string) => {
      const got = await claims.claim(kind, value, nodeId);
      if (!got.ok) throw new ConflictError(`${what} is already enrolled as node ${got.owner}; delete that node first (\`weft nodes delete ${got.owner}\`)`);
      made.push({ kind, value });
    };
    try {
      // First: of two enrollments with one signed document, only one gets past here.
      if (grant.attested && this.deps.attestor) unconsume = await this.deps.attestor.consume(grant.attested, nodeId);
      // The claims, the allocations, the credential, the instance binding and a reusable key's use
      // do not depend on one another: one round trip to the store for all of them instead of one
      // each (at thousands of agents a round trip is tens of milliseconds, and the new node reaches
      // no one before this ends). All settle before a failure is thrown, so the rollback below sees
      // everything made. A one-time key is used only once the claims hold: a request bound to fail
      // on a claim must not hold it while another presenting it could succeed. A key's labels never
      // change, so those it was verified with are those it is consumed with.
      const instance = grant.instance;
      if (instance) bound = keyOfInstance(instance);
      const useKey = () => (key ? joinKeys.consumeVerified(key.value.id, nodeId).then(() => void (consumedKey = true)) : Promise.resolve());
      const [, , overlayAddress, workloadPrefix, userJwt] = await allSettledOrFirstError([
        claimOrConflict("wgkey", req.wireguardPublicKey, `WireGuard public key ${req.wireguardPublicKey}`),
        claimOrConflict("name", req.name, `node name ${req.name}`),
        allocator.allocate(nodeId, req.overlayAddress).then((address) => {
          made.push({ kind: "addr", value: address });
          return address;
        }),
        this.deps.prefixes.allocate(nodeId).then((prefix) => {
          made.push({ kind: "wprefix", value: prefix });
          return prefix;
        }),
        this.deps.issueAgentJwt(nodeId, req.natsPublicKey),
        instance ? this.bind(instance, nodeId) : Promise.resolve(),
        key?.value.reusable ? useKey() : Promise.resolve(),
      ] as const);
      if (key && !key.value.reusable) await useKey();
      // The identity only once everything else holds: a refused request allocates none.
      const granted = this.grantedIdentity(grant.labels, instance, nodeId);
      const labels = granted.labels;
      const identity = await this.deps.allocateIdentity(granted.spiffeId);
      const node: NodeRecord = {
        version: 1,
        nodeId,
        name: req.name,
        site: site.site,
        siteSource: site.source,
        wireguardPublicKey: req.wireguardPublicKey,
        natsPublicKey: req.natsPublicKey,
        overlayAddress,
        workloadPrefix,
        endpoints: req.endpoints,
        labels,
        identity,
        joinKeyId: key?.value.id ?? "",
        ...(grant.policy === undefined ? {} : { enrollmentPolicy: grant.policy }),
        ...(grant.instance ? { instance: { provider: grant.instance.provider, account: grant.instance.account, id: grant.instance.id } } : {}),
        ...(ctx.observedAddress === undefined ? {} : { observedAddress: ctx.observedAddress }),
        enrolledAt: new Date().toISOString(),
      };
      const tookMs = Date.now() - startedAt;
      if (this.deps.giveUpAfterMs !== undefined && tookMs > this.deps.giveUpAfterMs) {
        throw new StoreUnavailableError(`the enrollment took ${Math.round(tookMs / 1000)} s (the controller or its store stalled) and was given up before the node was written; retry`, {
          reason: "enrollment_stalled",
        });
      }
      await registry.add(node);
      log.info(
        {
          node: nodeId,
          name: req.name,
          site: site.site,
          siteSource: site.source,
          overlay: overlayAddress,
          workloadPrefix,
          identity: identity.spiffeId,
          ...(key ? { joinKeyId: key.value.id } : {}),
          ...(grant.policy === undefined ? {} : { enrollmentPolicy: grant.policy }),
          ...(grant.instance ? { instance: bound } : {}),
          ...(grant.attested ? { evidence: grant.attested.evidence } : {}),
          ms: Date.now() - startedAt,
        },
        "node enrolled",
      );
      return this.answer(node, workloadPrefix, userJwt, ctx);
    } catch (err) {
      // Roll back: nothing of a failed enrollment stays, and its key use is given back.
      const undo = made.map((c) => claims.release(c.kind, c.value, nodeId));
      if (consumedKey && key) undo.push(joinKeys.unconsume(key.value.id, nodeId));
      if (bound !== undefined && this.deps.inventory) undo.push(this.deps.inventory.unbind(bound, nodeId));
      if (unconsume) undo.push(unconsume());
      for (const r of await Promise.allSettled(undo)) {
        if (r.status === "rejected") log.error({ node: nodeId, err: r.reason }, "rolling back a failed enrollment left something behind");
      }
      throw err;
    }
  }

  /**
   * Decide whether the request may enroll, before anything is claimed or written. With a join key:
   * the key must be usable, and a key with an instance selector needs a signed instance document
   * whose instance passes the inventory checks and matches it. A key without a selector still has
   * any instance identity presented checked (a node never carries an unproven binding). Without a
   * key: the instance must pass the checks and match an enrollment policy.
   */
  private async authorize(req: EnrollRequest, ctx: EnrollContext): Promise<Grant> {
    const presents = req.attestation !== undefined || req.instance !== undefined;
    if (req.joinKey !== undefined) {
      const key = await this.deps.joinKeys.verify(req.joinKey);
      const selector = key.value.instanceSelector;
      if (selector !== undefined && !presents) {
        throw new InstanceRejectedError(`join key ${key.value.id} admits only instances in the inventory: run the agent with --cloud <provider> so it presents its instance identity`, { reason: "instance_required" });
      }
      const proved = presents ? await this.checkInstance(req, ctx, selector, `join key ${key.value.id}`) : undefined;
      const site = key.value.site === undefined ? undefined : { site: key.value.site, source: "join-key" as const, what: `join key ${key.value.id}` };
      return { key, policy: undefined, labels: key.value.labels, instance: proved?.instance, attested: proved?.attested, site };
    }
    if (!presents) throw new ValidationError("enrollment request is invalid: joinKey: required unless the request carries an instance identity", { details: [{ path: "joinKey", message: "required" }] });
    const { instance, attested } = await this.checkInstance(req, ctx, undefined, "keyless join");
    const policies = (await this.deps.policies?.list()) ?? [];
    const named = describeClaim(claimOf(attested));
    if (policies.length === 0) {
      throw new InstanceRejectedError(`no enrollment policy matches ${named}: there are no enrollment policies; enroll with a join key, or create a policy with \`weft enrollment-policy apply\``, { reason: "no_policy_match" });
    }
    const misses: string[] = [];
    for (const policy of policies) {
      const why = selectorMismatch(policy.selector, instance);
      if (why.length === 0) {
        const site = policy.site === undefined ? undefined : { site: policy.site, source: "enrollment-policy" as const, what: `enrollment policy ${policy.name}` };
        return { key: undefined, policy: policy.name, labels: policy.labels, instance, attested, site };
      }
      misses.push(`${policy.name}: ${why.join(", ")}`);
    }
    throw new InstanceRejectedError(`no enrollment policy matches ${named}: ${misses.join("; ")}`, { reason: "no_policy_match" });
  }

  /**
   * The instance the request proves it runs on: its signed document verified (attest/), then the
   * instance it names checked against the inventory. An unsigned claim (`instance` alone) is refused.
   */
  private async checkInstance(req: EnrollRequest, ctx: EnrollContext, selector: InstanceSelector | undefined, what: string): Promise<{ instance: StoredInstance; attested: AttestedInstance }> {
    const { inventory, attestor } = this.deps;
    if (req.attestation === undefined) {
      throw new InstanceRejectedError(
        `${describeClaim(req.instance!)}: an unsigned instance claim proves nothing and is refused; the agent must present its cloud's signed instance document (a current agent run with --cloud <provider> does)`,
        { details: [{ path: "instance", message: "unsigned_claim" }], reason: "unsigned_claim" },
      );
    }
    if (!inventory || !attestor) throw new InstanceRejectedError(`a ${req.attestation.provider} instance document: ${what} needs the cloud inventory, and this controller has none configured`, { reason: "not_configured" });
    const attested = await attestor.verify(req.attestation);
    const checked = await checkInstanceClaim({
      claim: claimOf(attested),
      attestedAddresses: attested.privateIps,
      observedAddress: ctx.observedAddress,
      sourceAddress: attestor.sourceAddress,
      instanceAt: async (address) => (await inventory.instances()).find((i) => i.privateIps.includes(address) || i.publicIps.includes(address)),
      selector,
      inventory,
      nodeExists: (nodeId) => this.nodeExists(nodeId),
    });
    if (!checked.ok) throw new InstanceRejectedError(checked.message, { details: [{ path: "instance", message: checked.code }], reason: checked.code });
    return { instance: checked.instance, attested };
  }

  /** The node's site from what vouches for it (the key or policy, the instance's network) and the request; throws SiteRejectedError or a ValidationError. */
  private siteOf(req: EnrollRequest, grant: Grant): { site: string; source: SiteSource } {
    const vouchers: SiteVoucher[] = grant.site ? [grant.site] : [];
    const networkSite = grant.instance ? this.deps.siteOfInstance?.(grant.instance) : undefined;
    if (networkSite !== undefined && grant.instance) vouchers.push({ site: networkSite, source: "network", what: `${grant.instance.provider} network ${grant.instance.network}` });
    const decided = decideSite(req.site, vouchers);
    if (decided.ok) return { site: decided.site, source: decided.source };
    if (decided.reason === "site_missing") throw new ValidationError(`enrollment request is invalid: site: ${decided.message}`, { details: [{ path: "site", message: "required: nothing vouches for this node's site" }], reason: "site_missing" });
    throw new SiteRejectedError(`node ${req.name}: ${decided.message}`, { reason: decided.reason });
  }

  /** The labels and SPIFFE ID a new node gets: its grant's, plus what its instance's tags say. */
  private grantedIdentity(labels: Record<string, string>, instance: StoredInstance | undefined, nodeId: string): { labels: Record<string, string>; spiffeId: string } {
    if (!instance) return { labels, spiffeId: spiffeIdFromLabels(labels, this.deps.trustDomain) };
    const want = desiredNode({ labels }, instance, this.deps.trustDomain);
    for (const p of want.problems) this.deps.log.warn({ node: nodeId, instance: instance.id }, `instance ${instance.id}: ${p}`);
    return want;
  }

  /**
   * Bind `instance` to `nodeId` with compare-and-set: of two enrollments of one instance at once,
   * one wins; the other finds it bound to a node (its own check saw it free).
   */
  private async bind(instance: StoredInstance, nodeId: string): Promise<void> {
    const key = keyOfInstance(instance);
    const stale = instance.boundNode; // bound to a deleted node when the checks passed
    const now = await this.deps.inventory!.changeInstance(key, (cur) => {
      if (cur.boundNode !== undefined && cur.boundNode !== stale && cur.boundNode !== nodeId) {
        throw new InstanceRejectedError(`${describeClaim(instance)} was just bound to node ${cur.boundNode}; delete that node first (\`weft nodes delete ${cur.boundNode}\`)`, { reason: "already_bound" });
      }
      return { ...cur, boundNode: nodeId, boundAt: new Date().toISOString() };
    });
    if (!now) throw new InstanceRejectedError(`${describeClaim(instance)} left the inventory during enrollment; retry`, { reason: "not_in_inventory" });
  }

  private async nodeExists(nodeId: string): Promise<boolean> {
    try {
      await this.deps.registry.get(nodeId);
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }
}

/** Fields of an enrollment request the controller assigns: a request that sets one is refused before anything else. */
export function refuseAssignedFields(body: unknown): void {
  if (body !== null && typeof body === "object" && "nodeId" in body) {
    throw new ValidationError("nodeId is assigned by the controller; remove it from the enrollment request", {
      details: [{ path: "nodeId", message: "must not be set by the agent" }],
    });
  }
}

/** What the EnrollRequest schema cannot check: the schema checks the NATS key's shape, only the nkey codec its checksum. */
export function enrollRequestIssues(req: EnrollRequest): FieldIssue[] {
  try {
    assertUserPublicKey(req.natsPublicKey);
    return [];
  } catch (err) {
    if (!(err instanceof InvalidUserKeyError)) throw err;
    return [{ path: "natsPublicKey", message: "not a valid NATS user public nkey (bad checksum or encoding)" }];
  }
}

/** The instance a verified document names, as the inventory checks take it. */
function claimOf(a: AttestedInstance): InstanceIdentityClaim {
  return { provider: a.provider, id: a.id, account: a.account, ...(a.region === undefined ? {} : { region: a.region }), ...(a.zone === undefined ? {} : { zone: a.zone }) };
}

/**
 * Like Promise.all, but waits for every promise to settle before rejecting (with the first
 * rejection in argument order), so work that did succeed is known to the caller's cleanup.
 */
export async function allSettledOrFirstError<T extends readonly unknown[]>(promises: { readonly [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

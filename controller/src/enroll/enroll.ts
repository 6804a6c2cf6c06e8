/**
 * Enrollment: verify the join key, claim the node's WireGuard key, name, an
 * overlay address and a workload prefix (each compare-and-set), issue its NATS credentials, consume
 * the key and write the node. Any failure rolls back the claims already made,
 * so a rejected enrollment stores nothing; everything that can reject the
 * request runs before the key is consumed, so a bad request never burns a
 * one-time key.
 */
import { randomBytes } from "node:crypto";
import { EnrollRequest, type EnrollResponse, type NodeRecord, type Identity } from "@weft/protocol";
import type { Logger } from "pino";
import { ConflictError, ValidationError } from "../errors.js";
import { assertUserPublicKey, InvalidUserKeyError } from "../nats/index.js";
import type { AddressAllocator } from "../ipam/allocator.js";
import type { PrefixAllocator } from "../ipam/prefixes.js";
import type { Claims, ClaimKind } from "../ipam/claims.js";
import type { JoinKeys } from "../keys/joinkeys.js";
import type { NodeRegistry } from "../nodes/registry.js";
import { parseOrThrow } from "../validation.js";

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
  /** The identity granted by a join key's labels (allocated on first use). */
  identityFor: (labels: Record<string, string>) => Promise<Identity>;
  heartbeatSeconds: number;
  log: Logger;
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

  async enroll(body: unknown, ctx: EnrollContext = {}): Promise<EnrollResponse> {
    const req = parseEnrollRequest(body);
    const { joinKeys, claims, allocator, registry, log } = this.deps;
    const key = await joinKeys.verify(req.joinKey);
    const nodeId = newNodeId();
    const made: { kind: ClaimKind; value: string }[] = [];
    let consumedKey = false;
    const claimOrConflict = async (kind: ClaimKind, value: string, what: string) => {
      const got = await claims.claim(kind, value, nodeId);
      if (!got.ok) throw new ConflictError(`${what} is already enrolled as node ${got.owner}; delete that node first (\`weft nodes delete ${got.owner}\`)`);
      made.push({ kind, value });
    };
    try {
      await claimOrConflict("wgkey", req.wireguardPublicKey, `WireGuard public key ${req.wireguardPublicKey}`);
      await claimOrConflict("name", req.name, `node name ${req.name}`);
      const overlayAddress = await allocator.allocate(nodeId, req.overlayAddress);
      made.push({ kind: "addr", value: overlayAddress });
      const workloadPrefix = await this.deps.prefixes.allocate(nodeId);
      made.push({ kind: "wprefix", value: workloadPrefix });
      const identity = await this.deps.identityFor(key.value.labels);
      const userJwt = await this.deps.issueAgentJwt(nodeId, req.natsPublicKey);
      const consumed = await joinKeys.consume(req.joinKey, nodeId);
      consumedKey = true;
      const node: NodeRecord = {
        version: 1,
        nodeId,
        name: req.name,
        site: req.site,
        wireguardPublicKey: req.wireguardPublicKey,
        natsPublicKey: req.natsPublicKey,
        overlayAddress,
        workloadPrefix,
        endpoints: req.endpoints,
        labels: consumed.labels,
        identity,
        joinKeyId: key.value.id,
        ...(ctx.observedAddress === undefined ? {} : { observedAddress: ctx.observedAddress }),
        enrolledAt: new Date().toISOString(),
      };
      await registry.add(node);
      log.info({ node: nodeId, name: req.name, site: req.site, overlay: overlayAddress, workloadPrefix, identity: identity.spiffeId, joinKeyId: key.value.id }, "node enrolled");
      return {
        nodeId,
        overlayAddress,
        overlayCidr: allocator.rangeText,
        workloadPrefix,
        workloadCidr: this.deps.prefixes.rangeText,
        nats: { servers: this.deps.natsServersFor(ctx.apiHost), userJwt },
        heartbeatSeconds: this.deps.heartbeatSeconds,
      };
    } catch (err) {
      // Roll back: nothing of a failed enrollment stays, and its key use is given back.
      const undo = made.map((c) => claims.release(c.kind, c.value, nodeId));
      if (consumedKey) undo.push(joinKeys.unconsume(key.value.id, nodeId));
      for (const r of await Promise.allSettled(undo)) {
        if (r.status === "rejected") log.error({ node: nodeId, err: r.reason }, "rolling back a failed enrollment left something behind");
      }
      throw err;
    }
  }
}

function parseEnrollRequest(body: unknown): EnrollRequest {
  if (body !== null && typeof body === "object" && "nodeId" in body) {
    throw new ValidationError("nodeId is assigned by the controller; remove it from the enrollment request", {
      details: [{ path: "nodeId", message: "must not be set by the agent" }],
    });
  }
  const req = parseOrThrow(EnrollRequest, body, "enrollment request");
  try {
    // The schema checks the shape; only the nkey codec checks the checksum.
    assertUserPublicKey(req.natsPublicKey);
  } catch (err) {
    if (!(err instanceof InvalidUserKeyError)) throw err;
    const message = "not a valid NATS user public nkey (bad checksum or encoding)";
    throw new ValidationError(`enrollment request is invalid: natsPublicKey: ${message}`, { cause: err, details: [{ path: "natsPublicKey", message }] });
  }
  return req;
}

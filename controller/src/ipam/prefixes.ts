/**
 * Workload prefix allocation: each node gets one prefix of `overlay.workloadCidr`
 * (default a /24 of 100.80.0.0/12), the addresses of its workloads, routed to it by
 * every peer. Like overlay addresses: the lowest free prefix, claimed with
 * compare-and-set (`wprefix.<network>_<len>` in weft-ipam); a lost race moves on,
 * so two enrollments never share a prefix. A prefix that overlaps any claimed one
 * (claims made under another prefix length) is not free.
 */
import { cidrSize, cidrsOverlap, formatCidr, parseCidr, type Ipv4Cidr } from "@weft/protocol";
import { AddressExhaustedError, ValidationError } from "../errors.js";
import type { Claims } from "./claims.js";

export class PrefixAllocator {
  readonly range: Ipv4Cidr;
  readonly rangeText: string;

  constructor(
    private readonly claims: Claims,
    cidr: string,
    readonly prefixLength: number,
  ) {
    const range = parseCidr(cidr);
    if (!range) throw new ValidationError(`overlay.workloadCidr ${cidr} must be an IPv4 CIDR`);
    if (prefixLength < range.prefixLength || prefixLength > 30) {
      throw new ValidationError(`overlay.workloadPrefixLength /${prefixLength} must be between /${range.prefixLength} (the whole workloadCidr) and /30`);
    }
    this.range = range;
    this.rangeText = formatCidr(range);
  }

  /** Claim the lowest free prefix for `nodeId`. */
  async allocate(nodeId: string): Promise<string> {
    const taken = (await this.claims.claimedPrefixes()).map(parseCidr).filter((c): c is Ipv4Cidr => c !== undefined);
    const sameLength = new Set(taken.filter((c) => c.prefixLength === this.prefixLength).map((c) => c.network));
    const otherLength = taken.filter((c) => c.prefixLength !== this.prefixLength);
    const step = 2 ** (32 - this.prefixLength);
    const end = this.range.network + cidrSize(this.range);
    for (let network = this.range.network; network < end; network += step) {
      const candidate: Ipv4Cidr = { network, prefixLength: this.prefixLength };
      if (sameLength.has(network) || otherLength.some((c) => cidrsOverlap(c, candidate))) continue;
      const text = formatCidr(candidate);
      if ((await this.claims.claim("wprefix", text, nodeId)).ok) return text;
    }
    throw new AddressExhaustedError(
      `no free /${this.prefixLength} workload prefix left in overlay.workloadCidr ${this.rangeText}; widen it, lengthen overlay.workloadPrefixLength or delete stale nodes`,
    );
  }

  /** Release `prefix`, but only if `nodeId` still owns it. */
  async release(nodeId: string, prefix: string): Promise<void> {
    await this.claims.release("wprefix", prefix, nodeId);
  }
}

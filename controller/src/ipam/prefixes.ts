/**
 * Workload prefix allocation: each node gets one prefix of `overlay.workloadCidr`
 * (default a /24 of 100.80.0.0/12), the addresses of its workloads, routed to it by
 * every peer. Like overlay addresses: the lowest free prefix, claimed with
 * compare-and-set (`wprefix.<network>_<len>` in weft-ipam); a lost race moves on,
 * so two enrollments never share a prefix (and one controller's never race each other). A prefix that overlaps any claimed one
 * (claims made under another prefix length) is not free.
 */
import { cidrSize, cidrsOverlap, formatCidr, parseCidr, type Ipv4Cidr } from "@weft/protocol";
import { AddressExhaustedError, ValidationError } from "../errors.js";
import type { Claims } from "./claims.js";

export class PrefixAllocator {
  readonly range: Ipv4Cidr;
  readonly rangeText: string;
  /** Prefixes this controller is claiming right now: concurrent enrollments skip them (see AddressAllocator). */
  private readonly pending = new Set<string>();

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
    // Claims are written as formatCidr text: those of this length are compared as text, so an
    // enrollment among thousands of nodes parses only the few claimed under another length.
    const suffix = `/${this.prefixLength}`;
    const sameLength = new Set<string>();
    const otherLength: Ipv4Cidr[] = [];
    for (const text of await this.claims.claimedPrefixes()) {
      if (text.endsWith(suffix)) sameLength.add(text);
      else {
        const c = parseCidr(text);
        if (c) otherLength.push(c);
      }
    }
    const step = 2 ** (32 - this.prefixLength);
    const end = this.range.network + cidrSize(this.range);
    for (let network = this.range.network; network < end; network += step) {
      const candidate: Ipv4Cidr = { network, prefixLength: this.prefixLength };
      const text = formatCidr(candidate);
      if (sameLength.has(text) || this.pending.has(text) || otherLength.some((c) => cidrsOverlap(c, candidate))) continue;
      this.pending.add(text);
      try {
        if ((await this.claims.claim("wprefix", text, nodeId)).ok) return text;
      } finally {
        this.pending.delete(text);
      }
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

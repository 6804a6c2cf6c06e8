/**
 * Virtual IPs of services: the lowest free host address of the service range (`overlay.serviceCidr`),
 * claimed with compare-and-set in `weft-ipam` through Claims (key `addr.<ip>`, the same kind as
 * node addresses: the ranges are disjoint, and one address can never be claimed twice), owned
 * by `service:<namespace>/<name>`. A lost race moves on to the next address; a requested VIP is
 * claimed or refused.
 */
import { cidrContains, cidrSize, formatCidr, formatIpv4, parseCidr, parseIpv4, type Ipv4Cidr } from "@weft/protocol";
import { AddressExhaustedError, ConflictError, ValidationError } from "../errors.js";
import type { Claims } from "../ipam/claims.js";

/** The claim owner of a service's VIP. */
export function vipOwner(ref: string): string {
  return `service:${ref}`;
}

export class VipAllocator {
  readonly range: Ipv4Cidr;
  readonly rangeText: string;

  constructor(
    private readonly claims: Claims,
    cidr: string,
  ) {
    const range = parseCidr(cidr);
    if (!range || range.prefixLength > 30) throw new ValidationError(`overlay.serviceCidr ${cidr} must be an IPv4 CIDR of /30 or larger`);
    this.range = range;
    this.rangeText = formatCidr(range);
  }

  /** Whether `address` is a host address of the service range. */
  contains(address: string): boolean {
    const ip = parseIpv4(address);
    if (ip === undefined || !cidrContains(this.range, ip)) return false;
    const host = ip - this.range.network;
    return host !== 0 && host !== cidrSize(this.range) - 1;
  }

  /** Claims a VIP for the service `ref` (`ns/name`): `requested`, or the lowest free one. */
  async allocate(ref: string, requested?: string): Promise<string> {
    const owner = vipOwner(ref);
    if (requested !== undefined) {
      if (!this.contains(requested)) {
        throw new ValidationError(`service is invalid: vip: ${requested} is not a host address of the service range ${this.rangeText}`, { details: [{ path: "vip", message: `outside the service range ${this.rangeText}` }] });
      }
      const got = await this.claims.claim("addr", requested, owner);
      if (!got.ok && got.owner !== owner) throw new ConflictError(`vip ${requested} belongs to ${got.owner}`);
      return requested;
    }
    const taken = await this.claims.claimedAddresses();
    const first = this.range.network + 1;
    const last = this.range.network + cidrSize(this.range) - 2;
    for (let ip = first; ip <= last; ip++) {
      const candidate = formatIpv4(ip);
      if (taken.has(candidate)) continue;
      if ((await this.claims.claim("addr", candidate, owner)).ok) return candidate;
    }
    throw new AddressExhaustedError(`no free virtual IP left in the service range ${this.rangeText}; widen overlay.serviceCidr or delete services`);
  }

  async release(ref: string, vip: string): Promise<void> {
    await this.claims.release("addr", vip, vipOwner(ref));
  }
}

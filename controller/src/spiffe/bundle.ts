/**
 * Publishes the trust bundle (KV `weft-trust-bundle`, key `bundle`) that every agent reads: the
 * trust domain's CA certificates and JWT keys. Written at start when it says something new (the
 * sequence then goes up by one), never rewritten when it is the same.
 */
import { TRUST_BUNDLE_KEY, type TrustBundle } from "@weft/protocol";
import type { Logger } from "pino";
import type { RecordStore } from "../store/kv.js";
import type { TrustDomainAuthority } from "./authority.js";

/** Two bundles that trust the same authorities (sequence and time aside). */
export function sameAuthorities(a: TrustBundle, b: TrustBundle): boolean {
  return a.trustDomain === b.trustDomain && JSON.stringify(a.x509Authorities) === JSON.stringify(b.x509Authorities) && JSON.stringify(a.jwtAuthorities) === JSON.stringify(b.jwtAuthorities);
}

export async function publishTrustBundle(store: RecordStore<typeof TrustBundle>, authority: TrustDomainAuthority, log: Logger, now = () => new Date()): Promise<TrustBundle> {
  const result = await store.change(TRUST_BUNDLE_KEY, (current) => {
    const next = authority.bundle((current?.sequence ?? 0) + 1, now().toISOString());
    return current && sameAuthorities(current, next) ? undefined : next;
  });
  if (result.outcome !== "unchanged") log.info({ trustDomain: authority.trustDomain, sequence: result.value?.sequence }, "published the trust bundle");
  return result.value!;
}

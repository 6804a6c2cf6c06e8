/**
 * The trust bundle (KV `weft-trust-bundle`, key `bundle`), followed like every key an agent reads
 * (control/key-watch.ts: a core subscription on the subject the stream republishes the key's writes
 * on, with their revisions; a direct get at start and on resync). Only a valid bundle of this agent's trust domain with a higher
 * revision replaces the one held; anything else (a deletion too) is logged and the last good one
 * stays. Listeners hear of every new bundle.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { Buckets, TRUST_BUNDLE_KEY, TrustBundle, type Logger } from "@weft/protocol";
import { OwnKeyWatch } from "../control/key-watch.js";

export interface BundleSource {
  readonly current: TrustBundle | undefined;
  onChange(listener: () => void): () => void;
}

export class TrustBundleWatch implements BundleSource {
  #bundle: TrustBundle | undefined;
  readonly #listeners = new Set<() => void>();
  readonly #watch: OwnKeyWatch<typeof TrustBundle>;
  #stopped = false;

  constructor(
    nc: NatsConnection,
    private readonly log: Logger,
  ) {
    this.#watch = new OwnKeyWatch(nc, {
      bucket: Buckets.trustBundle,
      key: TRUST_BUNDLE_KEY,
      schema: TrustBundle,
      accept: (bundle) => (this.#bundle && bundle.trustDomain !== this.#bundle.trustDomain ? `a bundle of another trust domain (${bundle.trustDomain})` : undefined),
      onRecord: (bundle) => this.#apply(bundle),
      log,
    });
  }

  get current(): TrustBundle | undefined {
    return this.#bundle;
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Subscribe first (so no change between the read and the subscription is missed), then read. Also after a reconnect. */
  async resync(): Promise<void> {
    if (!this.#stopped) await this.#watch.resync(); // starts the watch the first time
  }

  stop(): void {
    this.#stopped = true;
    this.#watch.stop();
  }

  #apply(bundle: TrustBundle | null): void {
    if (!bundle) {
      if (this.#bundle) this.log.warn({}, "the trust bundle was deleted from the store; keeping the last good one");
      return;
    }
    this.#bundle = bundle;
    this.log.info({ trustDomain: bundle.trustDomain, sequence: bundle.sequence }, "trust bundle updated");
    for (const l of this.#listeners) {
      try {
        l();
      } catch (err) {
        this.log.error({ err }, "trust bundle listener threw");
      }
    }
  }
}

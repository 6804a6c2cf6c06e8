/**
 * The trust bundle (KV `weft-trust-bundle`, key `bundle`), read the way the node policy is
 * (control/policy-watch.ts): a core subscription on `$KV.weft-trust-bundle.bundle` says it changed,
 * a direct get reads it (at most one get in flight: SingleFlight). Only a valid bundle of this
 * agent's trust domain with a higher revision replaces the one held; anything else is logged and
 * the last good one stays. Listeners hear of every new bundle.
 */
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { Buckets, TRUST_BUNDLE_KEY, TrustBundle, type Logger } from "@weft/protocol";
import { SingleFlight } from "@weft/util";

export interface BundleSource {
  readonly current: TrustBundle | undefined;
  onChange(listener: () => void): () => void;
}

export class TrustBundleWatch implements BundleSource {
  #bundle: TrustBundle | undefined;
  #revision = 0;
  #sub: Subscription | undefined;
  #kv: KV | undefined;
  #stopped = false;
  readonly #listeners = new Set<() => void>();
  readonly #reads = new SingleFlight(() => this.#readOnce());

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
  ) {}

  get current(): TrustBundle | undefined {
    return this.#bundle;
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Subscribe first (so no change between the read and the subscription is missed), then read. Also after a reconnect. */
  async resync(): Promise<void> {
    if (this.#stopped) return;
    this.#kv ??= await new Kvm(this.nc).open(Buckets.trustBundle, { allow_direct: true });
    if (!this.#sub || this.#sub.isClosed()) {
      this.#sub = this.nc.subscribe(`$KV.${Buckets.trustBundle}.${TRUST_BUNDLE_KEY}`, {
        callback: (err) => {
          if (err) return this.log.warn({ err }, "trust bundle subscription failed");
          void this.#reads.run().catch((e: unknown) => this.log.warn({ err: e }, "cannot read the trust bundle; waiting for the next change"));
        },
      });
    }
    await this.#reads.run();
  }

  stop(): void {
    this.#stopped = true;
    this.#sub?.unsubscribe();
    this.#sub = undefined;
  }

  async #readOnce(): Promise<void> {
    const kv = this.#kv;
    if (!kv || this.#stopped) return;
    const entry = await kv.get(TRUST_BUNDLE_KEY);
    if (!entry || entry.operation !== "PUT" || entry.revision <= this.#revision) return;
    let json: unknown;
    try {
      json = entry.json();
    } catch {
      json = undefined;
    }
    const parsed = TrustBundle.safeParse(json);
    if (!parsed.success) {
      this.log.warn({ revision: entry.revision, problem: parsed.error.issues[0]?.message }, "ignoring a malformed trust bundle; keeping the last good one");
      return;
    }
    if (this.#bundle && parsed.data.trustDomain !== this.#bundle.trustDomain) {
      this.log.warn({ revision: entry.revision, trustDomain: parsed.data.trustDomain }, "ignoring a trust bundle of another trust domain; keeping the last good one");
      return;
    }
    this.#bundle = parsed.data;
    this.#revision = entry.revision;
    this.log.info({ trustDomain: parsed.data.trustDomain, sequence: parsed.data.sequence }, "trust bundle updated");
    for (const l of this.#listeners) {
      try {
        l();
      } catch (err) {
        this.log.error({ err }, "trust bundle listener threw");
      }
    }
  }
}

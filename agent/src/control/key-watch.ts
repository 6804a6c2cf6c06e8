/**
 * Watches ONE key of a bucket that an agent may read only that key of (its own key of
 * `weft-node-services`, of `weft-node-paths` (paths-watch.ts), like `weft-node-policies` in policy-watch.ts): nats-server 2.9 cannot
 * confine a consumer to a key, so no kv.watch(). A core subscription on `$KV.<bucket>.<key>` says
 * the key changed; a direct get of the key's last message (`$JS.API.DIRECT.GET.KV_<bucket>.$KV.
 * <bucket>.<key>`) reads the value with its revision. Gets are coalesced (SingleFlight).
 *
 * `onRecord` is called with strictly increasing revisions only: the parsed record, or null when
 * the key does not exist or was deleted (the first successful read reports (null, 0) when there is
 * no key yet). A value that does not parse, or that `accept` refuses, is logged and never reported.
 */
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "@weft/protocol";
import { SingleFlight } from "@weft/util";
import type { z } from "zod";

export interface OwnKeyWatchOptions<S extends z.ZodType> {
  bucket: string;
  key: string;
  schema: S;
  /** Extra check on a parsed record (e.g. it names this node); a string is the reason to refuse it. */
  accept?: (record: z.infer<S>) => string | undefined;
  onRecord: (record: z.infer<S> | null, revision: number) => void;
  log: Logger;
}

export class OwnKeyWatch<S extends z.ZodType> {
  #sub: Subscription | undefined;
  #kv: KV | undefined;
  #revision = -1;
  readonly #reads = new SingleFlight(() => this.#readOnce());
  #stopped = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly o: OwnKeyWatchOptions<S>,
  ) {}

  /** Subscribe first (so no change between the read and the subscription is missed), then read. */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#kv ??= await new Kvm(this.nc).open(this.o.bucket, { allow_direct: true });
    if (!this.#sub || this.#sub.isClosed()) {
      this.#sub = this.nc.subscribe(`$KV.${this.o.bucket}.${this.o.key}`, {
        callback: (err) => {
          if (err) return this.o.log.warn({ bucket: this.o.bucket, err }, "key subscription failed");
          void this.#reads.run().catch((e: unknown) => this.o.log.warn({ bucket: this.o.bucket, err: e }, "cannot read the key; waiting for the next change or resync"));
        },
      });
    }
    await this.#reads.run();
  }

  /** Read again (after a reconnect: changes made while disconnected were not seen). */
  async resync(): Promise<void> {
    if (this.#stopped) return;
    if (!this.#sub) return this.start();
    await this.#reads.run();
  }

  stop(): void {
    this.#stopped = true;
    this.#sub?.unsubscribe();
    this.#sub = undefined;
  }

  /** The highest revision reported (0: no key yet; -1: nothing read yet). */
  get revision(): number {
    return this.#revision;
  }

  async #readOnce(): Promise<void> {
    const kv = this.#kv;
    if (!kv || this.#stopped) return;
    const entry = await kv.get(this.o.key);
    if (this.#stopped) return;
    if (!entry) {
      if (this.#revision < 0) this.#report(null, 0);
      return;
    }
    if (entry.revision <= this.#revision) return;
    if (entry.operation !== "PUT") return this.#report(null, entry.revision);
    let json: unknown;
    try {
      json = entry.json();
    } catch {
      json = undefined;
    }
    const parsed = this.o.schema.safeParse(json);
    const problem = parsed.success ? this.o.accept?.(parsed.data) : parsed.error.issues[0]?.message;
    if (!parsed.success || problem !== undefined) {
      this.o.log.warn({ bucket: this.o.bucket, revision: entry.revision, problem }, "ignoring malformed record; keeping the last applied one");
      return;
    }
    this.#report(parsed.data, entry.revision);
  }

  #report(record: z.infer<S> | null, revision: number): void {
    this.#revision = revision;
    try {
      this.o.onRecord(record, revision);
    } catch (err) {
      this.o.log.error({ bucket: this.o.bucket, revision, err }, "record listener threw");
    }
  }
}

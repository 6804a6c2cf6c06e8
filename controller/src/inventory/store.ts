/**
 * The inventory as the controller keeps it, in the `weft-inventory` KV bucket:
 *
 *   i.<provider>.<account>.<id>   one StoredInstance per cloud instance
 *   n.<provider>.<account>.<id>   one StoredNetwork per VPC / VNet / GCE network / LAN
 *   s.<provider>.<account>        one AccountStatus per configured account (its last sync)
 *
 * Account and id are made KV-safe by kvToken() (kept as they are when they already are, else
 * base64url behind a `=`), so the key never loses information; the records keep the original
 * values. Every write is compare-and-set on the record's revision (RecordStore.change): a sync rewriting an instance
 * keeps the binding the join checks wrote meanwhile, and bind() keeps the sync's data.
 */
import type { KV } from "@nats-io/kv";
import { Buckets, InventoryAccountStatus, InventoryInstance, InventoryNetwork, type CloudProvider } from "@weft/protocol";
import { NotFoundError } from "../errors.js";
import { RecordStore, type Keyed, type RecordStoreOptions, type Versioned } from "../store/kv.js";

/** An instance as stored: the adapters' Instance, when a sync last listed it, the node bound to it. */
export const StoredInstance = InventoryInstance;
export type StoredInstance = InventoryInstance;
export const StoredNetwork = InventoryNetwork;
export type StoredNetwork = InventoryNetwork;
export const AccountStatus = InventoryAccountStatus;
export type AccountStatus = InventoryAccountStatus;

const SAFE_TOKEN = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * A value as one KV key token: unchanged when it is letters, digits, `_` and `-` (up to 128),
 * else `=` and its base64url. Injective: an unchanged token never starts with `=`.
 */
export function kvToken(value: string): string {
  return SAFE_TOKEN.test(value) ? value : `=${Buffer.from(value, "utf8").toString("base64url")}`;
}

export function instanceKey(provider: CloudProvider, account: string, id: string): string {
  return `i.${provider}.${kvToken(account)}.${kvToken(id)}`;
}
export function networkKey(provider: CloudProvider, account: string, id: string): string {
  return `n.${provider}.${kvToken(account)}.${kvToken(id)}`;
}
export function statusKey(provider: CloudProvider, account: string): string {
  return `s.${provider}.${kvToken(account)}`;
}
/** The key of a stored instance or network record. */
export function keyOfInstance(i: Pick<StoredInstance, "provider" | "account" | "id">): string {
  return instanceKey(i.provider, i.account, i.id);
}
export function keyOfNetwork(n: Pick<StoredNetwork, "provider" | "account" | "id">): string {
  return networkKey(n.provider, n.account, n.id);
}

export class InventoryStore {
  private readonly instancesKv: RecordStore<typeof StoredInstance>;
  private readonly networksKv: RecordStore<typeof StoredNetwork>;
  private readonly statusKv: RecordStore<typeof AccountStatus>;

  constructor(
    readonly kv: KV,
    opts: RecordStoreOptions = {},
  ) {
    this.instancesKv = new RecordStore(kv, StoredInstance, Buckets.inventory, opts);
    this.networksKv = new RecordStore(kv, StoredNetwork, Buckets.inventory, opts);
    this.statusKv = new RecordStore(kv, AccountStatus, Buckets.inventory, opts);
  }

  /**
   * One instance. Without `account`, the instance of that provider with that id in any account
   * (ids are unique per provider in practice; when two accounts list the same id, undefined).
   */
  async instance(provider: CloudProvider, account: string | undefined, id: string): Promise<StoredInstance | undefined> {
    if (account !== undefined) return (await this.instancesKv.get(instanceKey(provider, account, id)))?.value;
    const found = await this.instancesKv.list(`i.${provider}.*.${kvToken(id)}`);
    return found.length === 1 ? found[0]?.value : undefined;
  }

  /** The instance bound to `nodeId`, if any. */
  async instanceOfNode(nodeId: string): Promise<StoredInstance | undefined> {
    return (await this.instances()).find((i) => i.boundNode === nodeId);
  }

  /** Every stored instance, optionally of one provider (and account). */
  async instances(provider?: CloudProvider, account?: string): Promise<StoredInstance[]> {
    return (await this.instanceEntries(provider, account)).map((e) => e.value);
  }

  async instanceEntries(provider?: CloudProvider, account?: string): Promise<Keyed<StoredInstance>[]> {
    return this.instancesKv.list(prefixFilter("i", provider, account));
  }

  async networks(provider?: CloudProvider, account?: string): Promise<StoredNetwork[]> {
    return (await this.networksKv.list(prefixFilter("n", provider, account))).map((e) => e.value);
  }

  async networkEntries(provider?: CloudProvider, account?: string): Promise<Keyed<StoredNetwork>[]> {
    return this.networksKv.list(prefixFilter("n", provider, account));
  }

  /** Every account's last sync status. */
  async status(): Promise<AccountStatus[]> {
    return (await this.statusKv.list("s.>")).map((e) => e.value);
  }

  async accountStatus(provider: CloudProvider, account: string): Promise<AccountStatus | undefined> {
    return (await this.statusKv.get(statusKey(provider, account)))?.value;
  }

  async putStatus(status: AccountStatus): Promise<void> {
    await this.statusKv.put(statusKey(status.provider, status.account), status);
  }

  /**
   * Bind `nodeId` to the instance at `key` (from instanceKey()). Throws NotFoundError when the
   * inventory has no such instance. Rebinding to another node replaces the binding.
   */
  async bind(key: string, nodeId: string): Promise<StoredInstance> {
    const got = await this.changeInstance(key, (cur) => (cur.boundNode === nodeId ? undefined : { ...cur, boundNode: nodeId, boundAt: new Date().toISOString() }));
    if (!got) throw new NotFoundError(`inventory has no instance ${key}`);
    return got;
  }

  /** Drop the binding of the instance at `key` if it is to `nodeId` (or to anyone, when omitted). */
  async unbind(key: string, nodeId?: string): Promise<void> {
    await this.changeInstance(key, (cur) => {
      if (cur.boundNode === undefined || (nodeId !== undefined && cur.boundNode !== nodeId)) return undefined;
      const { boundNode: _n, boundAt: _a, ...rest } = cur;
      return rest;
    });
  }

  /**
   * Change one instance record with compare-and-set, retried on a lost race: `change` gets the
   * current record and returns the next, or undefined for no change. Resolves to the record as it
   * now is, or undefined when there is none.
   */
  async changeInstance(key: string, change: (cur: StoredInstance) => StoredInstance | undefined): Promise<StoredInstance | undefined> {
    return (await this.instancesKv.change(key, (cur) => (cur === undefined ? undefined : change(cur)))).value;
  }

  /**
   * Write `next` (a freshly listed instance, keeping the stored binding) unless `same` says the
   * stored record already is it. `known` is the stored entry (null: known absent) when the caller
   * has just listed it: the first attempt then needs no read. Returns what happened.
   */
  async upsertInstance(next: StoredInstance, same: (a: StoredInstance, b: StoredInstance) => boolean, known?: Versioned<StoredInstance> | null): Promise<"added" | "updated" | "unchanged"> {
    const got = await this.instancesKv.change(
      keyOfInstance(next),
      (cur) => {
        if (cur === undefined) return next;
        const merged = withBinding(next, cur);
        return same(cur, merged) ? undefined : merged;
      },
      known === undefined ? {} : { known },
    );
    return got.outcome === "created" ? "added" : got.outcome === "updated" ? "updated" : "unchanged";
  }

  /** Delete an instance record, only if it is still at `revision` (a binding written meanwhile wins). */
  async deleteInstance(key: string, revision?: number): Promise<boolean> {
    if (revision === undefined) {
      await this.instancesKv.delete(key);
      return true;
    }
    try {
      await this.kv.delete(key, { previousSeq: revision });
      return true;
    } catch {
      return false;
    }
  }

  async upsertNetwork(next: StoredNetwork, same: (a: StoredNetwork, b: StoredNetwork) => boolean): Promise<"added" | "updated" | "unchanged"> {
    const key = keyOfNetwork(next);
    const got = await this.networksKv.get(key);
    if (got && same(got.value, next)) return "unchanged";
    await this.networksKv.put(key, next);
    return got ? "updated" : "added";
  }

  async deleteNetwork(key: string): Promise<void> {
    await this.networksKv.delete(key);
  }
}

function withBinding(next: StoredInstance, cur: StoredInstance): StoredInstance {
  const { boundNode: _n, boundAt: _a, ...rest } = next;
  return cur.boundNode === undefined ? rest : { ...rest, boundNode: cur.boundNode, ...(cur.boundAt ? { boundAt: cur.boundAt } : {}) };
}

function prefixFilter(kind: "i" | "n", provider?: CloudProvider, account?: string): string {
  if (provider === undefined) return `${kind}.>`;
  if (account === undefined) return `${kind}.${provider}.>`;
  return `${kind}.${provider}.${kvToken(account)}.>`;
}

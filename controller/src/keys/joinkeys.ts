/**
 * Join keys: create, list, revoke, and verify-then-consume at enrollment.
 * One-time keys are consumed with compare-and-set, so of two agents presenting
 * the same key at once exactly one wins. A key granting `weft:gateway` must name its site, and a
 * key whose instance selector names `onprem` is refused: only signed aws/azure/gcp instance
 * documents pass a selector, so such a key could never admit anything.
 */
import { GATEWAY_LABEL, InstanceSelector, JoinKeyInfo, type JoinKeyCreateRequest, type JoinKeyCreated, labels, siteName } from "@weft/protocol";
import { KeyedSerial } from "@weft/util";
import { z } from "zod";
import { JoinKeyRejectedError, NotFoundError, StoreUnavailableError, ValidationError } from "../errors.js";
import { LostRacesError, type RecordStore, type Versioned } from "../store/kv.js";
import { JOIN_KEY_ID_PATTERN, newJoinKeySecret, parseJoinKey, secretMatches } from "./secret.js";

export const StoredJoinKey = z.object({
  id: z.string(),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  description: z.string().optional(),
  reusable: z.boolean(),
  labels,
  /** The site every node enrolled with this key is in (what vouches for it). */
  site: siteName.optional(),
  /** Set: the key enrolls only agents whose instance is in the inventory and matches this. */
  instanceSelector: InstanceSelector.optional(),
  createdAt: z.string(),
  expiresAt: z.string(),
  revokedAt: z.string().optional(),
  uses: z.number().int().nonnegative(),
  usedBy: z.array(z.string()),
});
export type StoredJoinKey = z.infer<typeof StoredJoinKey>;

export type JoinKeyStore = RecordStore<typeof StoredJoinKey>;

export class JoinKeys {
  /**
   * Uses of one key are recorded one at a time in this controller (in arrival order): enrollments
   * on a shared key would otherwise race each other's compare-and-set, and with dozens in flight an
   * unlucky one lost every race until its deadline. Other controllers still race through the CAS.
   */
  readonly #uses = new KeyedSerial();

  constructor(
    private readonly store: JoinKeyStore,
    private readonly now: () => Date = () => new Date(),
    /** Checks the labels a key would grant (e.g. identity labels); throws a ValidationError. */
    private readonly validateLabels: (labels: Record<string, string>) => void = () => undefined,
  ) {}

  async create(req: JoinKeyCreateRequest): Promise<JoinKeyCreated> {
    this.validateLabels(req.labels);
    if (req.labels[GATEWAY_LABEL]?.toLowerCase() === "true" && req.site === undefined) {
      throw new ValidationError(`join key request is invalid: site: required with the label ${GATEWAY_LABEL}=true (a gateway carries its site's routes, so its key must say which site)`, {
        details: [{ path: "site", message: `required when labels grant ${GATEWAY_LABEL}` }],
      });
    }
    if (req.instanceSelector?.provider === "onprem") {
      throw new ValidationError(
        `join key request is invalid: instanceSelector.provider: onprem admits nothing: a key with an instance selector admits only an agent presenting its cloud's signed instance document (aws, azure or gcp), and on-prem hosts have none; enroll on-prem hosts with a plain join key naming their site (\`weft keys create --site <site> --label …\`, no --instance-* flags), or select aws, azure or gcp`,
        { details: [{ path: "instanceSelector.provider", message: "onprem cannot be attested: on-prem hosts join with a plain join key naming their site" }] },
      );
    }
    const secret = newJoinKeySecret();
    const created = this.now();
    const record: StoredJoinKey = {
      id: secret.id,
      hash: secret.hash,
      ...(req.description === undefined ? {} : { description: req.description }),
      reusable: req.reusable,
      labels: req.labels,
      ...(req.site === undefined ? {} : { site: req.site }),
      ...(req.instanceSelector === undefined ? {} : { instanceSelector: req.instanceSelector }),
      createdAt: created.toISOString(),
      expiresAt: new Date(created.getTime() + req.ttlSeconds * 1000).toISOString(),
      uses: 0,
      usedBy: [],
    };
    if ((await this.store.create(record.id, record)) === false) {
      // 48 random bits colliding is not expected: an earlier attempt of this write was stored but
      // its acknowledgement lost and the store no longer shows it as ours (NATS without quorum).
      throw new StoreUnavailableError(`join key id ${record.id} already exists: the store did not confirm the write (NATS JetStream unavailable or without quorum?); retry`);
    }
    return { ...this.info(record), key: secret.key };
  }

  async list(): Promise<JoinKeyInfo[]> {
    const all = await this.store.list();
    return all.map((r) => this.info(r.value)).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async revoke(id: string): Promise<JoinKeyInfo> {
    // Anything else is not a key id we wrote (and may not even be a valid KV key: `a*b`).
    if (!JOIN_KEY_ID_PATTERN.test(id)) throw new NotFoundError(`join key ${JSON.stringify(id.slice(0, 64))} does not exist: ids are 12 hex digits`);
    const { value } = await this.store.change(id, (cur) => {
      if (!cur) throw new NotFoundError(`join key ${id} does not exist`);
      return cur.revokedAt ? undefined : { ...cur, revokedAt: this.now().toISOString() };
    });
    return this.info(value!);
  }

  /**
   * Check a presented key without consuming it. Throws JoinKeyRejectedError
   * with the reason; unknown ids and wrong secrets get the same message.
   */
  async verify(presented: string): Promise<Versioned<StoredJoinKey>> {
    const parsed = parseJoinKey(presented);
    const got = parsed ? await this.store.get(parsed.id) : undefined;
    if (!parsed || !got || !secretMatches(parsed.secret, got.value.hash)) {
      throw new JoinKeyRejectedError("join key is not valid: check it was copied whole, or create a new one with `weft keys create`", { reason: "join_key_invalid" });
    }
    this.assertUsable(got.value);
    return got;
  }

  /**
   * Whether `presented` is key `id` (right secret), not revoked and not expired, whatever its uses:
   * an enrollment repeated by the node that used it (its answer was lost) presents it again.
   */
  async presentsStill(presented: string, id: string): Promise<boolean> {
    const parsed = parseJoinKey(presented);
    if (!parsed || parsed.id !== id) return false;
    const got = await this.store.get(id);
    if (!got || !secretMatches(parsed.secret, got.value.hash)) return false;
    const state = this.state(got.value);
    return state === "active" || state === "used";
  }

  /**
   * Record one use by `nodeId` of key `id`, whose secret the caller has checked (`verify`); for
   * one-time keys only the first caller succeeds, and a key revoked or expired since is refused.
   */
  async consumeVerified(id: string, nodeId: string): Promise<StoredJoinKey> {
    try {
      // Read afresh inside: a use queued before this one has most likely changed it since it was verified.
      const { value } = await this.#uses.run(id, () =>
        this.store.change(
          id,
          (cur) => {
            // The secret was checked by the caller; what may have changed since is the key's state.
            if (!cur) throw new JoinKeyRejectedError("join key is not valid: check it was copied whole, or create a new one with `weft keys create`", { reason: "join_key_invalid" });
            this.assertUsable(cur);
            return { ...cur, uses: cur.uses + 1, usedBy: [...cur.usedBy, nodeId].slice(-100) };
          },
        ),
      );
      return value!;
    } catch (err) {
      // Transient: 503 makes the agent retry instead of giving up on a good key.
      throw err instanceof LostRacesError ? new StoreUnavailableError("join key is under heavy concurrent use; retry enrollment", { cause: err }) : err;
    }
  }

  /**
   * Give back the use `nodeId` made of key `id` (its enrollment failed after the
   * key was consumed), so a one-time key is not burned by a failure of ours.
   */
  async unconsume(id: string, nodeId: string): Promise<void> {
    await this.#uses.run(id, () =>
      this.store.change(id, (cur) =>
        cur?.usedBy.includes(nodeId) ? { ...cur, uses: Math.max(0, cur.uses - 1), usedBy: cur.usedBy.filter((n) => n !== nodeId) } : undefined,
      ),
    );
  }

  private assertUsable(key: StoredJoinKey): void {
    const state = this.state(key);
    if (state === "revoked") throw new JoinKeyRejectedError(`join key ${key.id} was revoked at ${key.revokedAt}; create a new one`, { reason: "join_key_revoked" });
    if (state === "expired") throw new JoinKeyRejectedError(`join key ${key.id} expired at ${key.expiresAt}; create a new one`, { reason: "join_key_expired" });
    if (state === "used") throw new JoinKeyRejectedError(`join key ${key.id} is one-time and was already used; create a new one`, { reason: "join_key_used" });
  }

  private state(key: StoredJoinKey): JoinKeyInfo["state"] {
    if (key.revokedAt) return "revoked";
    if (Date.parse(key.expiresAt) <= this.now().getTime()) return "expired";
    if (!key.reusable && key.uses > 0) return "used";
    return "active";
  }

  private info(key: StoredJoinKey): JoinKeyInfo {
    return JoinKeyInfo.parse({
      id: key.id,
      description: key.description,
      reusable: key.reusable,
      labels: key.labels,
      site: key.site,
      instanceSelector: key.instanceSelector,
      createdAt: key.createdAt,
      expiresAt: key.expiresAt,
      revokedAt: key.revokedAt,
      uses: key.uses,
      state: this.state(key),
    });
  }
}

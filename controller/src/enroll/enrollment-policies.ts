/**
 * Enrollment policies (keyless join): which inventory instances may enroll without a join key, and
 * the labels their nodes get. One record per policy name in `weft-enroll-policies`. A policy's
 * labels are checked like a join key's (identity labels in the trust domain) when it is applied.
 * A policy selecting `onprem` is refused: keyless enrollment needs a signed cloud instance document,
 * which on-prem hosts do not have, so such a policy could never admit anything.
 */
import { nodeName, type EnrollmentPolicy } from "@weft/protocol";
import type { Logger } from "pino";
import { NotFoundError, ValidationError } from "../errors.js";
import type { RecordStore } from "../store/kv.js";

export type EnrollmentPolicyStore = RecordStore<typeof EnrollmentPolicy>;

export interface EnrollmentPoliciesDeps {
  store: EnrollmentPolicyStore;
  /** Checks the labels a policy would grant (e.g. identity labels); throws a ValidationError. */
  validateLabels?: (labels: Record<string, string>) => void;
  log: Logger;
}

export class EnrollmentPolicies {
  constructor(private readonly deps: EnrollmentPoliciesDeps) {}

  /** Create or replace the policy `name` with `policy` (parsed by the API); the document's name must be `name`. */
  async apply(name: string, policy: EnrollmentPolicy): Promise<EnrollmentPolicy> {
    if (policy.name !== name) {
      throw new ValidationError(`enrollment policy is invalid: name: ${JSON.stringify(policy.name)} does not match the name in the path ${JSON.stringify(name.slice(0, 64))}`, {
        details: [{ path: "name", message: "must match the name in the path" }],
      });
    }
    if (policy.selector.provider === "onprem") {
      throw new ValidationError(
        `enrollment policy is invalid: selector.provider: onprem admits nothing: a keyless enrollment must present its cloud's signed instance document (aws, azure or gcp), and on-prem hosts have none; enroll on-prem hosts with a join key naming their site (\`weft keys create --site <site> --label …\`), or select aws, azure or gcp`,
        { details: [{ path: "selector.provider", message: "onprem cannot be attested: on-prem hosts join with a join key" }] },
      );
    }
    this.deps.validateLabels?.(policy.labels);
    const revision = await this.deps.store.put(name, policy);
    this.deps.log.info({ policy: name, revision, provider: policy.selector.provider }, "enrollment policy applied");
    return policy;
  }

  async get(name: string): Promise<EnrollmentPolicy> {
    const got = nodeName.safeParse(name).success ? await this.deps.store.get(name) : undefined;
    if (!got) throw new NotFoundError(`no enrollment policy named ${JSON.stringify(name.slice(0, 64))}; list them with \`weft enrollment-policy get\``);
    return got.value;
  }

  /** Every policy, sorted by name (the order keyless enrollment tries them in). */
  async list(): Promise<EnrollmentPolicy[]> {
    const all = await this.deps.store.list(undefined, (key, err) => this.deps.log.warn({ policy: key, err }, "skipping unreadable enrollment policy"));
    return all.map((r) => r.value).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Deletes the policy and returns what it was. Nodes enrolled through it stay. */
  async delete(name: string): Promise<EnrollmentPolicy> {
    const policy = await this.get(name);
    await this.deps.store.delete(name);
    this.deps.log.info({ policy: name }, "enrollment policy deleted");
    return policy;
  }
}

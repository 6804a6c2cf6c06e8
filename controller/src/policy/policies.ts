/**
 * Policies in KV: one key per policy name in `weft-policies`, written only
 * after the whole document validated (so a refused policy stores nothing), and
 * each node's compiled view of them.
 *
 * Validation fails closed (unknown keys, actions, protocols and selector shapes
 * are refused, see protocol/src/policy.ts) and every error names its field the
 * way a user reads the document: `rules[1].ports[0].port: must be 1-65535`.
 */
import { NodePolicy, Policy, nodeName, type Identity, type PolicyDelivery, type Workload } from "@weft/protocol";
import type { Logger } from "pino";
import { NotFoundError, ValidationError, type FieldIssue } from "../errors.js";
import type { RecordStore } from "../store/kv.js";
import { fieldIssues, invalid } from "../validation.js";
import { compileForNode, expandedPortCount, localIdentitiesOf, type CompileNode } from "./compile.js";

export type PolicyStore = RecordStore<typeof Policy>;

/** Most map entries (port prefixes) one rule may add per source and destination identity. */
export const MAX_ENTRIES_PER_RULE_SOURCE = 4096;

/** What the Policy schema cannot check: how many map entries each rule's ports expand to. */
export function policyIssues(policy: Policy): FieldIssue[] {
  const issues: FieldIssue[] = [];
  policy.rules.forEach((rule, i) => {
    const n = expandedPortCount(rule);
    if (n > MAX_ENTRIES_PER_RULE_SOURCE) issues.push({ path: `rules[${i}].ports`, message: `expands to ${n} map entries per source; at most ${MAX_ENTRIES_PER_RULE_SOURCE}` });
  });
  return issues;
}

/** Parses and normalises a policy document, or throws a ValidationError naming each bad field (what the API's PUT does). */
export function validatePolicy(input: unknown): Policy {
  const parsed = Policy.safeParse(input);
  const issues = parsed.success ? policyIssues(parsed.data) : fieldIssues(parsed.error);
  if (issues.length > 0 || !parsed.success) throw invalid("policy", issues);
  return parsed.data;
}

export interface PolicyServiceDeps {
  store: PolicyStore;
  /** Every allocated identity. */
  identities: () => Promise<Identity[]>;
  /** Every enrolled node (for label selectors). */
  nodes: () => Promise<(CompileNode & { nodeId: string })[]>;
  /** One node by id or name; throws NotFoundError. */
  resolveNode: (idOrName: string) => Promise<CompileNode & { nodeId: string }>;
  /** The node's workloads (from its peer record): their identities are local to it too. */
  workloadsOf: (nodeId: string) => Promise<Workload[]>;
  /** Whether the node's compiled policy is delivered (NodePolicyPublisher.delivery). */
  delivery?: (nodeId: string) => PolicyDelivery | undefined;
  log: Logger;
}

export class PolicyService {
  constructor(private readonly deps: PolicyServiceDeps) {}

  /** Create or replace the policy `name` with `policy` (parsed by the API, policyIssues); the document's name must be `name`. */
  async apply(name: string, policy: Policy): Promise<Policy> {
    if (policy.name !== name) {
      throw new ValidationError(`policy is invalid: name: ${JSON.stringify(policy.name)} does not match the name in the path ${JSON.stringify(name.slice(0, 64))}`, {
        details: [{ path: "name", message: "must match the name in the path" }],
      });
    }
    const revision = await this.deps.store.put(name, policy);
    this.deps.log.info({ policy: name, revision, rules: policy.rules.length }, "policy applied");
    return policy;
  }

  async get(name: string): Promise<Policy> {
    const got = nodeName.safeParse(name).success ? await this.deps.store.get(name) : undefined;
    if (!got) throw new NotFoundError(`no policy named ${JSON.stringify(name.slice(0, 64))}; list policies with \`weft policy get\``);
    return got.value;
  }

  async list(): Promise<Policy[]> {
    const all = await this.deps.store.list(undefined, (key, err) => this.deps.log.warn({ policy: key, err }, "skipping unreadable policy"));
    return all.map((r) => r.value).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Deletes the policy and returns what it was. */
  async delete(name: string): Promise<Policy> {
    const policy = await this.get(name);
    await this.deps.store.delete(name);
    this.deps.log.info({ policy: name }, "policy deleted");
    return policy;
  }

  /**
   * What the node `idOrName` enforces under the current policies: the same
   * compilation (node and workload identities) the publisher writes to
   * weft-node-policies.
   */
  async forNode(idOrName: string): Promise<NodePolicy> {
    const node = await this.deps.resolveNode(idOrName);
    const [policies, identities, nodes, workloads] = await Promise.all([this.list(), this.deps.identities(), this.deps.nodes(), this.deps.workloadsOf(node.nodeId)]);
    const target = { identity: node.identity, workloads };
    const { mapEntries: _count, ...compiled } = compileForNode({ policies, identities: [...identities, ...workloads.map((w) => w.identity)], nodes }, target);
    const delivery = this.deps.delivery?.(node.nodeId);
    return { nodeId: node.nodeId, ...(node.identity ? { identity: node.identity } : {}), localIdentities: localIdentitiesOf(target), ...compiled, ...(delivery ? { delivery } : {}) };
  }
}

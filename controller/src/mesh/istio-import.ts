/**
 * Istio → Weft (pure): `AuthorizationPolicy` documents translated into Weft policies, so the
 * overlay never allows what the mesh forbids. Everything L3/L4 can say exactly is translated;
 * anything else is refused with the document and field named — never dropped, widened or narrowed.
 *
 * Translated:
 * - the destination: the policy's namespace, and `selector.matchLabels` holding only
 *   `weft/service-account: S` (the label Weft's WorkloadEntries carry) → `{namespace, serviceAccount}`;
 * - `action: ALLOW | DENY` → allow | deny rules; each Istio rule is one Weft rule;
 * - sources, each `from[].source` holding one of: `principals` (`<td>/ns/N/sa/S` → that identity,
 *   `<td>/ns/N/sa/*` → the namespace), `namespaces` (exact names), `ipBlocks` (CIDRs);
 * - `to[].operation.ports` → TCP ports; no `to` → every port and protocol.
 * - An ALLOW policy without rules (deny everything) is accepted when the same file gives the
 *   destination a rule (Weft makes a destination default-deny only through a rule).
 *
 * Refused: `notPrincipals`, `notNamespaces`, `notIpBlocks`, `remoteIpBlocks`, `requestPrincipals`,
 * `notRequestPrincipals`; `hosts`, `notHosts`, `methods`, `notMethods`, `paths`, `notPaths`,
 * `notPorts`; `when`; `AUDIT` and `CUSTOM`; `provider`, `targetRef(s)`; other selector labels;
 * the root namespace; a source mixing principals, namespaces and ipBlocks (Istio ANDs them);
 * a rule with no `from` (any source); and a DENY policy for a destination the file gives no ALLOW
 * policy: Istio then lets everything else through, while Weft would make it default-deny.
 */
import { POLICY_PORT_RANGE_LIMIT, Policy, parseCidr, type PolicyInput, type Rule, type Selector } from "@weft/protocol";
import { SERVICE_ACCOUNT_LABEL } from "./istio-export.js";

export interface MeshImportOptions {
  /** The controller's trust domain: principals of it map to namespace/service-account selectors. */
  trustDomain: string;
  /** Istio's root namespace (policies there are mesh-wide, which Weft cannot scope). Default istio-system. */
  rootNamespace?: string;
}

export interface MeshImport {
  policies: Policy[];
  /** What was skipped (other kinds, deny-all ALLOW policies already expressed by a rule). */
  notes: string[];
}

/** A document or field Weft's L3/L4 policy cannot express; `where` names it. */
export class MeshImportError extends Error {
  override readonly name = "MeshImportError";
  constructor(
    readonly where: string,
    message: string,
  ) {
    super(`${where}: ${message}`);
  }
}

const REFUSED_SOURCE: Record<string, string> = {
  notPrincipals: "negated principals",
  notNamespaces: "negated namespaces",
  notIpBlocks: "negated ipBlocks",
  remoteIpBlocks: "the original client address (X-Forwarded-For)",
  requestPrincipals: "request (JWT) principals, an L7 attribute",
  notRequestPrincipals: "request (JWT) principals, an L7 attribute",
};
const REFUSED_OPERATION: Record<string, string> = {
  hosts: "HTTP hosts, an L7 attribute",
  notHosts: "HTTP hosts, an L7 attribute",
  methods: "HTTP methods, an L7 attribute",
  notMethods: "HTTP methods, an L7 attribute",
  paths: "HTTP paths, an L7 attribute",
  notPaths: "HTTP paths, an L7 attribute",
  notPorts: "negated ports",
};

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const SERVICE_ACCOUNT = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

interface Dest {
  namespace: string;
  serviceAccount: string | undefined;
}

interface Parsed {
  where: string;
  name: string;
  dest: Dest;
  action: "ALLOW" | "DENY";
  rules: Rule[];
}

/** Translate the documents (as parsed from YAML). Throws MeshImportError naming the first thing it refuses. */
export function importIstio(docs: unknown[], opts: MeshImportOptions): MeshImport {
  const root = opts.rootNamespace ?? "istio-system";
  const notes: string[] = [];
  const parsed: Parsed[] = [];
  docs.forEach((doc, i) => {
    const obj = asObject(doc, `document ${i + 1}`);
    const kind = obj.kind;
    const name = (asObject(obj.metadata ?? {}, `document ${i + 1} metadata`).name as string | undefined) ?? "";
    if (kind !== "AuthorizationPolicy") {
      notes.push(`document ${i + 1} (${String(kind)} ${name}): not an AuthorizationPolicy; skipped`);
      return;
    }
    parsed.push(parsePolicy(obj, `AuthorizationPolicy ${name || `(document ${i + 1})`}`, opts.trustDomain, root));
  });

  // A DENY needs an ALLOW for its destination (or its namespace) in the same file, else Weft narrows.
  const allowFor = new Set(parsed.filter((p) => p.action === "ALLOW").map((p) => destKey(p.dest)));
  const withRules = new Set(parsed.filter((p) => p.rules.length > 0).map((p) => destKey(p.dest)));
  for (const p of parsed) {
    if (p.action === "DENY" && !allowFor.has(destKey(p.dest)) && !allowFor.has(destKey({ namespace: p.dest.namespace, serviceAccount: undefined }))) {
      throw new MeshImportError(
        `${p.where} spec.action`,
        `DENY for ${describe(p.dest)} with no ALLOW policy for it in this file: Istio would let all other traffic through, while Weft makes a destination with any rule default-deny; add the ALLOW policy that says what may reach it`,
      );
    }
    if (p.action === "ALLOW" && p.rules.length === 0 && !withRules.has(destKey(p.dest))) {
      throw new MeshImportError(`${p.where} spec.rules`, `an ALLOW policy without rules denies everything to ${describe(p.dest)}; Weft cannot say "deny from anyone" without sources: add a DENY or ALLOW rule for it in the same file`);
    }
  }

  const policies: Policy[] = [];
  const names = new Map<string, string>();
  for (const p of parsed) {
    if (p.rules.length === 0) {
      notes.push(`${p.where}: ALLOW without rules (deny all but what is allowed) — expressed by the default deny the other rules for ${describe(p.dest)} give it`);
      continue;
    }
    const name = weftName(p.dest.namespace, p.name);
    const other = names.get(name);
    if (other) throw new MeshImportError(p.where, `translates to the Weft policy name ${name}, as ${other} does; rename one`);
    names.set(name, p.where);
    const input: PolicyInput = { name, description: `imported from Istio ${p.where} in namespace ${p.dest.namespace}`.slice(0, 200), rules: p.rules };
    const checked = Policy.safeParse(input);
    if (!checked.success) throw new MeshImportError(p.where, `the translation is not a valid Weft policy: ${checked.error.issues.map((x) => `${x.path.join(".")}: ${x.message}`).join("; ")}`);
    policies.push(checked.data);
  }
  return { policies, notes };
}

function parsePolicy(obj: Record<string, unknown>, where: string, trustDomain: string, root: string): Parsed {
  if (typeof obj.apiVersion !== "string" || !/^security\.istio\.io\/(v1|v1beta1)$/.test(obj.apiVersion)) {
    throw new MeshImportError(`${where} apiVersion`, `want security.istio.io/v1 or v1beta1, got ${JSON.stringify(obj.apiVersion)}`);
  }
  const metadata = asObject(obj.metadata, `${where} metadata`);
  const name = metadata.name;
  if (typeof name !== "string" || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(name)) throw new MeshImportError(`${where} metadata.name`, "want a Kubernetes object name");
  const namespace = metadata.namespace;
  if (typeof namespace !== "string" || !DNS_LABEL.test(namespace)) throw new MeshImportError(`${where} metadata.namespace`, "required: the namespace whose workloads the policy protects");
  if (namespace === root) throw new MeshImportError(`${where} metadata.namespace`, `${root} is the root namespace: its policies apply mesh-wide, which Weft policy cannot scope (it names namespaces or service accounts)`);
  const spec = asObject(obj.spec ?? {}, `${where} spec`);
  for (const key of Object.keys(spec)) {
    if (!["selector", "action", "rules"].includes(key)) {
      throw new MeshImportError(`${where} spec.${key}`, key === "provider" ? "CUSTOM authorization providers are outside L3/L4" : key.startsWith("targetRef") ? "gateway and service targets are outside L3/L4; use selector" : "not translatable to Weft policy");
    }
  }
  const action = spec.action ?? "ALLOW";
  if (action !== "ALLOW" && action !== "DENY") throw new MeshImportError(`${where} spec.action`, `${String(action)} is not an L3/L4 verdict; only ALLOW and DENY translate`);
  const dest: Dest = { namespace, serviceAccount: selectorServiceAccount(spec.selector, where) };
  const rulesIn = spec.rules === undefined ? [] : spec.rules;
  if (!Array.isArray(rulesIn)) throw new MeshImportError(`${where} spec.rules`, "want a list");
  if (rulesIn.length > 256) throw new MeshImportError(`${where} spec.rules`, "at most 256 rules");
  const to: Selector[] = [dest.serviceAccount === undefined ? { namespace } : { namespace, serviceAccount: dest.serviceAccount }];
  const rules = rulesIn.map((r, i) => parseRule(r, `${where} spec.rules[${i}]`, trustDomain, action === "ALLOW" ? "allow" : "deny", to));
  return { where, name, dest, action, rules };
}

function selectorServiceAccount(selector: unknown, where: string): string | undefined {
  if (selector === undefined) return undefined;
  const sel = asObject(selector, `${where} spec.selector`);
  for (const key of Object.keys(sel)) if (key !== "matchLabels") throw new MeshImportError(`${where} spec.selector.${key}`, "only matchLabels translates");
  const labels = asObject(sel.matchLabels ?? {}, `${where} spec.selector.matchLabels`);
  const keys = Object.keys(labels);
  for (const key of keys) {
    if (key !== SERVICE_ACCOUNT_LABEL) {
      throw new MeshImportError(`${where} spec.selector.matchLabels.${key}`, `Weft policy selects destinations by identity: only the ${SERVICE_ACCOUNT_LABEL} label (its service account) translates`);
    }
  }
  if (keys.length === 0) return undefined;
  const sa = labels[SERVICE_ACCOUNT_LABEL];
  if (typeof sa !== "string" || !SERVICE_ACCOUNT.test(sa)) throw new MeshImportError(`${where} spec.selector.matchLabels.${SERVICE_ACCOUNT_LABEL}`, "want a service account name");
  return sa;
}

function parseRule(raw: unknown, where: string, trustDomain: string, action: "allow" | "deny", to: Selector[]): Rule {
  const rule = asObject(raw, where);
  for (const key of Object.keys(rule)) {
    if (key === "when") throw new MeshImportError(`${where}.when`, "conditions are not translated (they name request attributes L3/L4 policy does not see, or duplicate from/to)");
    if (key !== "from" && key !== "to") throw new MeshImportError(`${where}.${key}`, "not translatable to Weft policy");
  }
  if (rule.from === undefined || (Array.isArray(rule.from) && rule.from.length === 0)) {
    throw new MeshImportError(`${where}.from`, "absent: the rule matches any source, which a Weft rule cannot say; name principals, namespaces or ipBlocks");
  }
  if (!Array.isArray(rule.from)) throw new MeshImportError(`${where}.from`, "want a list");
  const from = rule.from.flatMap((f, j) => parseSource(f, `${where}.from[${j}]`, trustDomain));
  const ports = rule.to === undefined ? undefined : parsePorts(rule.to, `${where}.to`);
  return { action, from, to, ...(ports === undefined ? {} : { ports }) };
}

function parseSource(raw: unknown, where: string, trustDomain: string): Selector[] {
  const source = asObject(asObject(raw, where).source, `${where}.source`);
  const keys = Object.keys(source);
  for (const key of keys) {
    if (REFUSED_SOURCE[key]) throw new MeshImportError(`${where}.source.${key}`, `${REFUSED_SOURCE[key]} cannot be expressed in L3/L4 policy`);
    if (!["principals", "namespaces", "ipBlocks"].includes(key)) throw new MeshImportError(`${where}.source.${key}`, "not translatable to Weft policy");
  }
  if (keys.length !== 1) {
    throw new MeshImportError(`${where}.source`, keys.length === 0 ? "empty: it would match any source" : `${keys.join(" and ")} in one source must all match (Istio ANDs them); Weft sources are alternatives: give each its own from entry`);
  }
  const key = keys[0]!;
  const values = source[key];
  if (!Array.isArray(values) || values.length === 0 || values.some((v) => typeof v !== "string")) throw new MeshImportError(`${where}.source.${key}`, "want a non-empty list of strings");
  return (values as string[]).map((v, k) => {
    const at = `${where}.source.${key}[${k}]`;
    if (key === "ipBlocks") {
      const cidr = v.includes("/") ? v : `${v}/32`;
      if (!parseCidr(cidr)) throw new MeshImportError(at, `${JSON.stringify(v)} is not an IPv4 address or CIDR`);
      return { cidr };
    }
    if (key === "namespaces") {
      if (!DNS_LABEL.test(v)) throw new MeshImportError(at, `${JSON.stringify(v)}: only exact namespace names translate (no wildcards)`);
      return { namespace: v };
    }
    return principal(v, at, trustDomain);
  });
}

function principal(v: string, where: string, trustDomain: string): Selector {
  const m = /^([a-z0-9]([a-z0-9.-]{0,253}[a-z0-9])?)\/ns\/([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)\/sa\/(\*|[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?)$/.exec(v);
  if (!m?.[1] || !m[3] || !m[5]) {
    throw new MeshImportError(where, `${JSON.stringify(v)}: want <trust domain>/ns/<namespace>/sa/<service account> (or sa/* for a whole namespace); other patterns do not translate`);
  }
  const [td, ns, sa] = [m[1], m[3], m[5]];
  if (sa === "*") {
    if (td !== trustDomain) throw new MeshImportError(where, `${v}: a whole namespace of another trust domain (${td}) does not translate`);
    return { namespace: ns };
  }
  return td === trustDomain ? { namespace: ns, serviceAccount: sa } : { identity: `spiffe://${v}` };
}

function parsePorts(raw: unknown, where: string): Rule["ports"] {
  if (!Array.isArray(raw)) throw new MeshImportError(where, "want a list");
  const ports = new Set<number>();
  let any = raw.length === 0;
  raw.forEach((t, i) => {
    const op = asObject(asObject(t, `${where}[${i}]`).operation, `${where}[${i}].operation`);
    for (const key of Object.keys(op)) {
      if (REFUSED_OPERATION[key]) throw new MeshImportError(`${where}[${i}].operation.${key}`, `${REFUSED_OPERATION[key]} cannot be expressed in L3/L4 policy`);
      if (key !== "ports") throw new MeshImportError(`${where}[${i}].operation.${key}`, "not translatable to Weft policy");
    }
    if (op.ports === undefined) {
      any = true; // an operation with no condition matches every port
      return;
    }
    if (!Array.isArray(op.ports) || op.ports.length === 0) throw new MeshImportError(`${where}[${i}].operation.ports`, "want a non-empty list");
    (op.ports as unknown[]).forEach((p, k) => {
      const n = typeof p === "number" ? p : typeof p === "string" && /^\d{1,5}$/.test(p) ? Number(p) : NaN;
      if (!(n >= 1 && n <= 65535)) throw new MeshImportError(`${where}[${i}].operation.ports[${k}]`, `${JSON.stringify(p)} is not a port 1-65535 (ranges do not exist in Istio)`);
      ports.add(n);
    });
  });
  if (any) return undefined;
  const specs = portRanges([...ports]);
  if (specs.length > 64) throw new MeshImportError(where, `${specs.length} separate ports or ranges in one rule; Weft takes at most 64 per rule: split the rule`);
  return specs;
}

/** Ports as TCP port specs, consecutive ports joined into ranges of at most POLICY_PORT_RANGE_LIMIT (pure). */
export function portRanges(ports: number[]): { protocol: "tcp"; port: number; endPort?: number }[] {
  const sorted = [...new Set(ports)].sort((a, b) => a - b);
  const out: { protocol: "tcp"; port: number; endPort?: number }[] = [];
  for (const p of sorted) {
    const last = out.at(-1);
    const end = last?.endPort ?? last?.port;
    if (last && end !== undefined && p === end + 1 && p - last.port + 1 <= POLICY_PORT_RANGE_LIMIT) last.endPort = p;
    else out.push({ protocol: "tcp", port: p });
  }
  return out;
}

function asObject(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new MeshImportError(where, "want an object");
  return v as Record<string, unknown>;
}

function destKey(d: Dest): string {
  return `${d.namespace}/${d.serviceAccount ?? ""}`;
}

function describe(d: Dest): string {
  return d.serviceAccount === undefined ? `namespace ${d.namespace}` : `service account ${d.serviceAccount} in namespace ${d.namespace}`;
}

/** A Weft policy name (a DNS label) for Istio's namespace/name: `istio-<ns>-<name>`, shortened with a hash when too long. */
export function weftName(namespace: string, name: string): string {
  const full = `istio-${namespace}-${name}`.replace(/\./g, "-");
  if (full.length <= 63) return full;
  let h = 0;
  for (const c of full) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `${full.slice(0, 54).replace(/-+$/, "")}-${h.toString(16).padStart(8, "0")}`;
}

/**
 * Which identity a join key grants: `weft:identity` (a whole SPIFFE ID in the
 * controller's trust domain), else `weft:namespace` / `weft:serviceaccount`
 * (each defaulting to `default`). Checked when the key is created, so a bad
 * label is refused then and never reaches an enrollment; so are
 * `weft:workload-namespaces` and `weft:workload-identities` (the workload identities a node may
 * host, workloads/grants.ts).
 */
import { IdentityLabels, SPIFFE_ID_PATTERN, WORKLOAD_NAMESPACES_LABEL, nodeName } from "@weft/protocol";
import { ValidationError, type FieldIssue } from "../errors.js";
import { grantLabelIssues } from "../workloads/grants.js";

export function spiffeIdFromLabels(labels: Record<string, string>, trustDomain: string): string {
  const whole = labels[IdentityLabels.spiffeId];
  if (whole !== undefined) return whole;
  const ns = labels[IdentityLabels.namespace] ?? "default";
  const sa = labels[IdentityLabels.serviceAccount] ?? "default";
  return `spiffe://${trustDomain}/ns/${ns}/sa/${sa}`;
}

/** Throws a ValidationError naming each identity label that is not usable. */
export function validateIdentityLabels(labels: Record<string, string>, trustDomain: string): void {
  const issues: FieldIssue[] = [];
  const whole = labels[IdentityLabels.spiffeId];
  if (whole !== undefined) {
    const match = SPIFFE_ID_PATTERN.exec(whole);
    if (!match) issues.push({ path: `labels.${IdentityLabels.spiffeId}`, message: "must be spiffe://<trust-domain>/ns/<namespace>/sa/<service-account> in lower case" });
    else if (match[1] !== trustDomain) issues.push({ path: `labels.${IdentityLabels.spiffeId}`, message: `must be in this controller's trust domain ${trustDomain}` });
    if (labels[IdentityLabels.namespace] !== undefined || labels[IdentityLabels.serviceAccount] !== undefined) {
      issues.push({ path: "labels", message: `give either ${IdentityLabels.spiffeId} or ${IdentityLabels.namespace}/${IdentityLabels.serviceAccount}, not both` });
    }
  }
  for (const key of [IdentityLabels.namespace, IdentityLabels.serviceAccount]) {
    const value = labels[key];
    if (value !== undefined && !nodeName.safeParse(value).success) issues.push({ path: `labels.${key}`, message: "must be a DNS label: lowercase letters, digits and '-'" });
  }
  const workloadNamespaces = labels[WORKLOAD_NAMESPACES_LABEL];
  if (workloadNamespaces !== undefined) {
    const list = workloadNamespaces.split(",").map((s) => s.trim());
    if (workloadNamespaces.trim() !== "*" && (list.length === 0 || list.some((ns) => !nodeName.safeParse(ns).success))) {
      issues.push({ path: `labels.${WORKLOAD_NAMESPACES_LABEL}`, message: "must be * or comma-separated namespaces (DNS labels: lowercase letters, digits and '-')" });
    }
  }
  issues.push(...grantLabelIssues(labels));
  if (issues.length > 0) {
    throw new ValidationError(`join key request is invalid: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`, { details: issues });
  }
}

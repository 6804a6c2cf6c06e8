/**
 * `weft inventory sync | list`: the controller's cloud inventory through its API. `sync` runs a
 * sync of every configured account now and prints what each did (instances, changes, nodes
 * removed and held back, issues); `list` prints instances (state, bound node, tags), networks,
 * site routes (with the remapped prefix of a network that overlaps another site's) and overlapping CIDRs.
 */
import { CloudProvider, type InventoryAccountStatus, type InventorySyncResult, type InventoryView } from "@weft/protocol";
import { UsageError } from "../errors.js";
import { formatTable, printJson, printLines } from "../output.js";
import { adminClient, type AdminOptions } from "./admin-client.js";

/** One block per account: a summary line, then removals, held-back removals, stopped nodes and issues. */
export function formatSync(result: InventorySyncResult): string {
  if (result.accounts.length === 0) return "no inventory accounts are configured (controller config `inventory.accounts`, or --inventory-config)";
  return result.accounts.map(formatAccount).join("\n\n");
}

export function formatAccount(s: InventoryAccountStatus): string {
  const lines: string[] = [];
  const c = s.changes;
  const head = `${s.provider}:${s.account}  ${s.result}${s.error ? ` (${s.error.code})` : ""}`;
  lines.push(
    s.result === "failed"
      ? `${head}: ${s.error?.message ?? "fetch failed"}; nothing stored or removed`
      : `${head}: ${s.counts.instances} instances, ${s.counts.networks} networks, ${s.counts.bound} bound nodes; +${c.added} ~${c.updated} -${c.deleted} records; ${s.removed.length} removed, ${s.heldBack.length} held back`,
  );
  for (const r of s.removed) lines.push(`  removed   ${r.name ?? r.nodeId} (${r.nodeId}): ${r.evidence}`);
  for (const r of s.heldBack) lines.push(`  held back ${r.name ?? r.nodeId} (${r.nodeId}): ${r.reason}, instance ${r.instance}`);
  if (s.heldBack.length > 0 && s.heldBackReason) lines.push(`  why held back: ${s.heldBackReason}`);
  for (const x of s.stopped) lines.push(`  kept      ${x.nodeId}: instance ${x.instance} is ${x.state}`);
  for (const r of s.relabelled) lines.push(`  relabelled ${r}: labels or identity follow the instance's tags`);
  for (const i of s.issues) lines.push(`  issue     ${i.scope}: ${i.code}: ${i.message}`);
  return lines.join("\n");
}

/** The view, or its part of one provider. */
export function filterView(view: InventoryView, provider: string | undefined): InventoryView {
  if (provider === undefined) return view;
  const mine = (x: { provider: string }) => x.provider === provider;
  return {
    instances: view.instances.filter(mine),
    networks: view.networks.filter(mine),
    statuses: view.statuses.filter(mine),
    siteRoutes: view.siteRoutes.filter((r) => view.networks.some((n) => mine(n) && r.networks.includes(n.id))),
    overlaps: view.overlaps.filter((o) => mine(o.a) || mine(o.b)),
  };
}

const tagsText = (tags: Record<string, string>) =>
  Object.entries(tags)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");

export function formatView(view: InventoryView): string {
  const out: string[] = [];
  out.push(
    formatTable(
      ["PROVIDER", "ACCOUNT", "REGION", "ID", "NAME", "STATE", "PRIVATE IPS", "NODE", "TAGS"],
      view.instances.map((i) => [i.provider, i.account, i.region, i.id, i.name, i.absentSince ? `${i.state} (absent)` : i.state, i.privateIps.join(","), i.boundNode ?? "-", tagsText(i.tags)]),
    ),
  );
  out.push("", formatTable(["PROVIDER", "ACCOUNT", "NETWORK", "CIDRS", "SUBNETS"], view.networks.map((n) => [n.provider, n.account, n.id, n.cidrs.join(","), n.subnets.map((s) => s.cidr).join(",")])));
  out.push(
    "",
    formatTable(
      ["SITE", "ROUTES", "NETWORKS", "GATEWAY", "ADVERTISED", "REMAPPED", "WITHHELD"],
      view.siteRoutes.map((r) => [
        r.inferred ? `${r.site} (no node)` : r.site,
        r.cidrs.join(","),
        r.networks.join(","),
        r.gateway?.name ?? "-",
        r.advertised.join(",") || "-",
        (r.remaps ?? []).map((m) => `${m.cidr} as ${m.remapped}`).join(",") || "-",
        r.withheld.map((w) => `${w.cidr} (${w.reason})`).join("; ") || "-",
      ]),
    ),
  );
  if (view.overlaps.length > 0) {
    out.push("", "OVERLAPPING CIDRS (not merged; across sites remapped where the pool allows, see REMAPPED):");
    for (const o of view.overlaps) out.push(`  ${o.a.cidr} ${o.a.provider}:${o.a.network} (site ${o.a.site})  overlaps  ${o.b.cidr} ${o.b.provider}:${o.b.network} (site ${o.b.site})${o.sameSite ? "  same site" : ""}`);
  }
  if (view.statuses.length > 0) {
    out.push("", formatTable(["ACCOUNT", "LAST SYNC", "RESULT", "INSTANCES", "HELD BACK", "ISSUES"], view.statuses.map((s) => [`${s.provider}:${s.account}`, s.syncedAt, s.result, String(s.counts.instances), String(s.heldBack.length), String(s.issues.length + (s.error ? 1 : 0))])));
  }
  return out.join("\n");
}

export async function syncInventory(o: AdminOptions & { json?: boolean }): Promise<void> {
  const result = await (await adminClient(o)).syncInventory();
  if (o.json) return printJson(result);
  printLines(formatSync(result));
  if (result.accounts.some((a) => a.result === "failed")) process.exitCode = 1;
}

export async function listInventory(o: AdminOptions & { json?: boolean; provider?: string }): Promise<void> {
  if (o.provider !== undefined && !CloudProvider.safeParse(o.provider).success) throw new UsageError(`--provider ${o.provider}: want one of ${CloudProvider.options.join(", ")}`);
  const view = filterView(await (await adminClient(o)).inventory(), o.provider);
  if (o.json) return printJson(view);
  printLines(formatView(view));
}

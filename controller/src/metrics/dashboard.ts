/**
 * The Grafana dashboard's contract with what Weft exports (pure): every metric name its queries
 * use, and the families a Prometheus text exposition declares. A query name matches a family of
 * its own name, or a histogram's `_bucket`/`_sum`/`_count` series. Used by the dashboard tests
 * (against the registries, and against the real /metrics of a running controller and agent).
 */

/** The metric names (`weft_…`) of every PromQL expression in a dashboard's panels, with the panel titles. */
export function dashboardQueries(dashboard: unknown): { panel: string; expr: string; metrics: string[] }[] {
  const out: { panel: string; expr: string; metrics: string[] }[] = [];
  const walk = (panels: unknown) => {
    if (!Array.isArray(panels)) return;
    for (const p of panels as { title?: string; targets?: { expr?: string }[]; panels?: unknown }[]) {
      for (const t of p.targets ?? []) {
        if (typeof t.expr !== "string") continue;
        // Label names and values are quoted or inside braces; metric names are the bare weft_ identifiers.
        const bare = t.expr.replace(/"[^"]*"/g, '""').replace(/\{[^}]*\}/g, "{}");
        out.push({ panel: p.title ?? "?", expr: t.expr, metrics: [...new Set(bare.match(/\bweft_[a-zA-Z0-9_:]+/g) ?? [])] });
      }
      walk(p.panels);
    }
  };
  walk((dashboard as { panels?: unknown }).panels);
  return out;
}

/** Family name → type, from the `# TYPE` lines of a Prometheus text exposition. */
export function exposedFamilies(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1]!, m[2]!);
  return out;
}

/** The names `queries` use that none of `families` exports. */
export function unknownMetrics(names: Iterable<string>, families: ReadonlyMap<string, string>): string[] {
  const missing: string[] = [];
  for (const name of names) {
    if (families.has(name)) continue;
    const base = name.replace(/_(bucket|sum|count)$/, "");
    if (base !== name && families.get(base) === "histogram") continue;
    missing.push(name);
  }
  return [...new Set(missing)].sort();
}

/** How Weft names a field of a document or body in an error: the one spelling for CLI, controller and adapters. */

/**
 * `["rules", 1, "ports", 0, "port"]` (a zod issue's path) as a user reads the document:
 * `rules[1].ports[0].port`; the empty path (the whole document) is `whole`.
 */
export function fieldPath(path: readonly PropertyKey[], whole = "(document)"): string {
  if (path.length === 0) return whole;
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`)).join("");
}

/**
 * Printing: JSON for --json, aligned text tables otherwise. Every table cell and printed line may
 * hold strings others control (cloud tags, names): they go through `printable`, which turns
 * control characters into visible escapes. JSON output escapes them by its own rules.
 */
// The zod-free subpath: `weft status` prints through this module and must not load the schemas.
import { printable } from "@weft/protocol/text";

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function formatTable(headers: string[], rawRows: string[][]): string {
  const rows = rawRows.map((r) => r.map((c) => printable(c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ").trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

export function printTable(headers: string[], rows: string[][]): void {
  process.stdout.write(`${formatTable(headers, rows)}\n`);
}

/** "12s", "3m", "2h" ago, or "never". */
export function age(epochSeconds: number | undefined, now = Date.now()): string {
  if (!epochSeconds) return "never";
  const s = Math.max(0, Math.round(now / 1000 - epochSeconds));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

/** Parse durations like 90s, 15m, 24h, 7d into seconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^([0-9]+)([smhd])$/.exec(text.trim());
  if (!m?.[1] || !m[2]) return undefined;
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as "s" | "m" | "h" | "d"];
  return Number(m[1]) * unit;
}

/** Writes lines of text, each made printable (control characters shown as escapes). */
export function printLines(text: string): void {
  process.stdout.write(`${text.split("\n").map((l) => printable(l)).join("\n")}\n`);
}

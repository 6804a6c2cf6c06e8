/**
 * Where a process's resident memory is, from /proc/<pid>/smaps: every mapping's Rss, Pss and
 * Anonymous summed by what the mapping is — the executable's code and read-only data (file pages
 * shared with every process running the same binary), shared libraries and native addons, glibc's
 * main malloc arena (`[heap]`), the 64 MB-aligned arenas of other threads, thread stacks (a stack
 * follows its guard page), executable anonymous memory (V8's code) and the rest of the anonymous
 * memory (V8's heap, ArrayBuffers, large mallocs). PSS splits each shared page among the processes
 * mapping it, so its total is what this process really costs the machine.
 */
import { basename } from "node:path";

export type MappingKind = "executable code" | "executable data" | "shared libraries" | "native addons" | "other files" | "malloc main arena" | "malloc thread arenas" | "thread stacks" | "anonymous executable" | "anonymous other" | "kernel";

/** kB per kind. */
export interface KindFigures {
  mappings: number;
  rssKb: number;
  pssKb: number;
  anonKb: number;
}

export interface SmapsSummary {
  rssKb: number;
  pssKb: number;
  anonKb: number;
  byKind: Partial<Record<MappingKind, KindFigures>>;
  /** Rss of each shared library and addon by file name (libbpf.so.1, koffi.node), kB. */
  byLibrary: Record<string, number>;
}

interface Mapping {
  start: bigint;
  end: bigint;
  perms: string;
  path: string;
  fields: Record<string, number>;
}

const HEADER = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$/;
const ARENA = 64n << 20n;

export function parseSmaps(text: string): Mapping[] {
  const maps: Mapping[] = [];
  for (const line of text.split("\n")) {
    const h = HEADER.exec(line);
    if (h) {
      maps.push({ start: BigInt(`0x${h[1]}`), end: BigInt(`0x${h[2]}`), perms: h[3] as string, path: (h[4] as string).trim(), fields: {} });
      continue;
    }
    const f = /^(\w+):\s+(\d+) kB$/.exec(line);
    const last = maps[maps.length - 1];
    if (f && last) last.fields[f[1] as string] = Number(f[2]);
  }
  return maps;
}

function kindOf(maps: Mapping[], i: number, exe: string): MappingKind {
  const m = maps[i] as Mapping;
  if (m.path === exe) return m.perms.includes("x") ? "executable code" : "executable data";
  if (m.path.endsWith(".node")) return "native addons";
  if (/\.so(\.|$)/.test(m.path)) return "shared libraries";
  if (m.path === "[heap]") return "malloc main arena";
  if (m.path.startsWith("[")) return "kernel";
  if (m.path !== "") return "other files";
  const prev = maps[i - 1];
  if (prev && prev.perms.startsWith("---") && prev.end === m.start && prev.path === "" && prev.end - prev.start <= 65536n && m.perms.startsWith("rw")) return "thread stacks";
  // A thread arena: a 64 MB-aligned reservation, its used part read-write and the rest PROT_NONE.
  const next = maps[i + 1];
  if (m.start % ARENA === 0n && m.perms.startsWith("rw") && next && next.path === "" && next.perms.startsWith("---") && next.start === m.end && next.end - m.start === ARENA) return "malloc thread arenas";
  return m.perms.includes("x") ? "anonymous executable" : "anonymous other";
}

export function summarizeSmaps(text: string, exe: string): SmapsSummary {
  const maps = parseSmaps(text);
  const out: SmapsSummary = { rssKb: 0, pssKb: 0, anonKb: 0, byKind: {}, byLibrary: {} };
  maps.forEach((m, i) => {
    const kind = kindOf(maps, i, exe);
    const rss = m.fields.Rss ?? 0;
    const pss = m.fields.Pss ?? 0;
    const anon = m.fields.Anonymous ?? 0;
    const k = (out.byKind[kind] ??= { mappings: 0, rssKb: 0, pssKb: 0, anonKb: 0 });
    k.mappings++;
    k.rssKb += rss;
    k.pssKb += pss;
    k.anonKb += anon;
    out.rssKb += rss;
    out.pssKb += pss;
    out.anonKb += anon;
    if (kind === "shared libraries" || kind === "native addons") out.byLibrary[basename(m.path)] = (out.byLibrary[basename(m.path)] ?? 0) + rss;
  });
  return out;
}

/** One line per kind, largest first: `kind  Rss  Pss  (anon)` in MB. */
export function formatSmaps(s: SmapsSummary): string[] {
  const mb = (kb: number) => (kb / 1024).toFixed(1).padStart(6);
  return Object.entries(s.byKind)
    .filter(([, f]) => f.rssKb > 0)
    .sort(([, a], [, b]) => b.rssKb - a.rssKb)
    .map(([kind, f]) => `${kind.padEnd(22)}${mb(f.rssKb)} MB RSS${mb(f.pssKb)} MB PSS${f.anonKb > 0 ? `  (anonymous ${(f.anonKb / 1024).toFixed(1)})` : ""}`);
}

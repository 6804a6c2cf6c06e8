/**
 * The numbers protocol shares with the eBPF datapath are the datapath's: the policy verdict codes
 * (`VerdictCodes`, carried in every compact policy entry) equal `enum weft_verdict` of
 * bpf/progs/lib/verdict.h, and the reserved identities (`ReservedIdentities`) equal `WEFT_ID_*` of
 * bpf/progs/lib/ipcache.h. Both are read from the C headers, the ABI the pinned maps hold; bpf's
 * own copies (bpf/src/layout.ts `Verdict`, `ReservedIdentity`) are checked against the same headers
 * by bpf/src/layout.test.ts, so all three agree. (protocol imports no workspace, bpf included.)
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { FIRST_ALLOCATED_IDENTITY, ReservedIdentities } from "./messages.js";
import { VerdictCodes } from "./policy.js";

const header = (name: string) => readFileSync(fileURLToPath(new URL(`../../bpf/progs/lib/${name}`, import.meta.url)), "utf8");

/** `NAME = 1` enum members and `#define NAME 1` lines whose name starts with `prefix`, by lower-camel name without the prefix. */
function constants(text: string, prefix: string): Record<string, number> {
  const out: Record<string, number> = {};
  const re = new RegExp(`(?:#define\\s+|\\b)${prefix}([A-Z][A-Z_]*)(?:\\s*=\\s*|\\s+)(0x[0-9a-fA-F]+|\\d+)\\b`, "g");
  for (const m of text.matchAll(re)) {
    const name = (m[1] ?? "").toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    out[name] = Number(m[2]);
  }
  return out;
}

describe("datapath codes", () => {
  it("datapath codes - protocol's verdict codes are verdict.h's enum weft_verdict (0 is 'no entry', never sent)", () => {
    const c = constants(header("verdict.h"), "WEFT_VERDICT_");
    expect(c, "verdict.h WEFT_VERDICT_*").toEqual({ none: 0, allow: VerdictCodes.allow, deny: VerdictCodes.deny });
  });

  it("datapath codes - protocol's reserved identities are ipcache.h's WEFT_ID_*, all below the first allocated one", () => {
    const c = constants(header("ipcache.h"), "WEFT_ID_");
    expect(c, "ipcache.h WEFT_ID_*").toEqual({ ...ReservedIdentities });
    for (const [name, id] of Object.entries(ReservedIdentities)) expect(id, `reserved identity ${name}`).toBeLessThan(FIRST_ALLOCATED_IDENTITY);
  });
});

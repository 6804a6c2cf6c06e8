/**
 * The join key file: one key read from a private file; a file others may read, a missing, empty,
 * multi-word or oversized one is refused with what to do, and the key never appears in the error.
 */
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readJoinKeyFile } from "./join-key-file.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "weft-joinkey-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const file = async (name: string, text: string, mode: number) => {
  const path = join(dir, name);
  await writeFile(path, text, { mode });
  await chmod(path, mode);
  return path;
};

describe("join key file", () => {
  it("join key file - one line in a 0600 file is the key, trimmed", async () => {
    expect(await readJoinKeyFile(await file("ok", "weft_abc123\n", 0o600))).toBe("weft_abc123");
  });

  it("join key file - refused: readable by others, missing, empty, two words, too long; the key is never echoed", async () => {
    const cases: [string, Promise<string>, RegExp][] = [
      ["mode 0644", file("open", "weft_secret1\n", 0o644), /readable by others \(mode 644\): chmod 600/],
      ["mode 0640", file("group", "weft_secret2\n", 0o640), /readable by others/],
      ["missing", Promise.resolve(join(dir, "nope")), /cannot read the join key file/],
      ["empty", file("empty", "\n", 0o600), /exactly one join key/],
      ["two words", file("two", "weft_secret3 weft_secret4\n", 0o600), /exactly one join key/],
      ["too long", file("long", "x".repeat(5000), 0o600), /holds 5000 bytes/],
    ];
    for (const [what, path, want] of cases) {
      const err = await readJoinKeyFile(await path).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err?.message, what).toMatch(want);
      expect(err?.message, `${what}: the key is not in the message`).not.toMatch(/weft_secret/);
    }
  });
});

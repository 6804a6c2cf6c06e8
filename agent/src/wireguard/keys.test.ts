import { execFileSync } from "node:child_process";
import { chmod, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InsecureKeyFileError, InvalidKeyError } from "./errors.js";
import {
  PrivateKey,
  derivePublicKey,
  generateKeyPair,
  isValidKey,
  loadOrCreatePrivateKey,
  readPrivateKeyFile,
  writePrivateKeyFile,
} from "./keys.js";
import { findExecutableSync } from "../exec/testing.js";

const wg = findExecutableSync("wg");
const wgPubkey = (priv: string): string => execFileSync("wg", ["pubkey"], { input: `${priv}\n` }).toString().trim();

describe("wireguard - keys", () => {
  it.skipIf(wg === undefined)("generates pairs that `wg pubkey` agrees with", () => {
    for (let i = 0; i < 20; i++) {
      const { privateKey, publicKey } = generateKeyPair();
      const want = wgPubkey(privateKey.toBase64());
      expect(publicKey, `pair ${i}: got public ${publicKey}, want (wg pubkey) ${want}`).toBe(want);
    }
  });

  it.skipIf(wg === undefined)("derives the same public key as `wg pubkey` from `wg genkey` output", () => {
    for (let i = 0; i < 5; i++) {
      const priv = execFileSync("wg", ["genkey"]).toString().trim();
      const got = derivePublicKey(priv);
      const want = wgPubkey(priv);
      expect(got, `got ${got}, want ${want}`).toBe(want);
    }
  });

  it("clamps generated private keys like wg genkey", () => {
    for (let i = 0; i < 20; i++) {
      const raw = Buffer.from(generateKeyPair().privateKey.toBase64(), "base64");
      expect(raw.length, `got ${raw.length} bytes, want 32`).toBe(32);
      expect((raw[0] ?? 0) & 7, "low 3 bits of byte 0 must be 0").toBe(0);
      expect((raw[31] ?? 0) >> 6, "top bits of byte 31 must be 01").toBe(1);
    }
  });

  it("validates keys", () => {
    const good = generateKeyPair().publicKey;
    const cases: Array<[string, boolean]> = [
      [good, true],
      [good.slice(0, 43), false],
      [`${good.slice(0, 43)}==`, false],
      ["A".repeat(43) + "=", true],
      ["A".repeat(42) + "B=", false], // non-canonical trailing bits
      ["_".repeat(43) + "=", false], // base64url alphabet
      ["", false],
    ];
    for (const [key, want] of cases) {
      const got = isValidKey(key);
      expect(got, `isValidKey(${JSON.stringify(key)}): got ${got}, want ${want}`).toBe(want);
    }
    expect(() => PrivateKey.fromBase64("not a key"), "want InvalidKeyError").toThrow(InvalidKeyError);
  });

  it("redacts private keys in strings, JSON and inspection", () => {
    const k = PrivateKey.generate();
    const secret = k.toBase64();
    for (const [how, text] of [
      ["String", String(k)],
      ["JSON", JSON.stringify({ k })],
      ["inspect", inspect({ k })],
      ["template", `${k}`],
    ] as const) {
      expect(text.includes(secret), `${how}: got ${text}, want no secret`).toBe(false);
    }
  });
});

describe("wireguard - key files", () => {
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "weft-wg-keys-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes atomically with mode 0600 and reads back", async () => {
    const path = join(dir, "sub", "private.key");
    const k = PrivateKey.generate();
    await writePrivateKeyFile(path, k);
    const mode = (await stat(path)).mode & 0o777;
    expect(mode, `got mode ${mode.toString(8)}, want 600`).toBe(0o600);
    const back = await readPrivateKeyFile(path);
    expect(back.equals(k), "read key should equal written key").toBe(true);
    // overwrite in place, leaving no temporary file behind
    await writePrivateKeyFile(path, PrivateKey.generate());
    const files = await readdir(join(dir, "sub"));
    expect(files, `got ${files.join(",")}, want only private.key`).toEqual(["private.key"]);
  });

  it("refuses a key file readable by group or others, telling the user to chmod 600", async () => {
    const path = join(dir, "open.key");
    await writePrivateKeyFile(path, PrivateKey.generate());
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      await chmod(path, mode);
      const err = await readPrivateKeyFile(path).catch((e: unknown) => e);
      expect(err, `mode ${mode.toString(8)}: got ${String(err)}, want InsecureKeyFileError`).toBeInstanceOf(InsecureKeyFileError);
      expect(String(err), "message should say how to fix it").toContain(`chmod 600 ${path}`);
    }
    await chmod(path, 0o400);
    await expect(readPrivateKeyFile(path), "mode 0400 is fine").resolves.toBeInstanceOf(PrivateKey);
  });

  it("rejects a file that does not hold a key", async () => {
    const path = join(dir, "junk.key");
    await writeFile(path, "hello\n", { mode: 0o600 });
    const err = await readPrivateKeyFile(path).catch((e: unknown) => e);
    expect(err, `got ${String(err)}, want InvalidKeyError`).toBeInstanceOf(InvalidKeyError);
  });

  it("loads or creates a key", async () => {
    const path = join(dir, "identity.key");
    const first = await loadOrCreatePrivateKey(path);
    const second = await loadOrCreatePrivateKey(path);
    expect(first.created, "first call creates").toBe(true);
    expect(second.created, "second call loads").toBe(false);
    expect(second.publicKey, `got ${second.publicKey}, want ${first.publicKey}`).toBe(first.publicKey);
  });
});

/**
 * WireGuard keys: Curve25519 key pairs from node:crypto (byte-identical to `wg genkey` /
 * `wg pubkey`), key validation, and private key files written atomically with mode 0600.
 * A private key is a `PrivateKey` object that redacts itself in logs, JSON and inspection.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { inspect } from "node:util";
import { InsecureKeyFileError, InvalidKeyError } from "./errors.js";

const KEY_BYTES = 32;
// Standard base64 of 32 bytes: 43 characters, the last of which carries 2 zero bits, then "=".
const KEY_RE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;
// PKCS#8 DER prefix of an X25519 private key (OID 1.3.101.110), followed by the 32 raw bytes.
const X25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const REDACTED = "[redacted WireGuard private key]";

/** True if `text` is a WireGuard key: standard base64 of exactly 32 bytes. */
export function isValidKey(text: string): boolean {
  return KEY_RE.test(text) && Buffer.from(text, "base64").length === KEY_BYTES;
}

/** Throws `InvalidKeyError` unless `text` is a valid key; `what` names it in the message. */
export function assertValidKey(text: string, what = "key"): void {
  if (!isValidKey(text)) {
    throw new InvalidKeyError(`invalid WireGuard ${what}: expected base64 of 32 bytes (44 characters ending in "=")`);
  }
}

function clamp(raw: Buffer): Buffer {
  const b = Buffer.from(raw);
  b[0] = (b[0] ?? 0) & 248;
  b[31] = ((b[31] ?? 0) & 127) | 64;
  return b;
}

function publicFromRaw(raw: Buffer): string {
  const key = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, raw]), format: "der", type: "pkcs8" });
  const x = createPublicKey(key).export({ format: "jwk" }).x;
  if (x === undefined) throw new InvalidKeyError("X25519 public key export returned no key");
  return Buffer.from(x, "base64url").toString("base64");
}

/** A WireGuard private key. Prints as "[redacted ...]"; call `toBase64()` to reveal it. */
export class PrivateKey {
  readonly #raw: Buffer;
  #publicKey: string | undefined;

  private constructor(raw: Buffer) {
    this.#raw = raw;
  }

  /** Parses a base64 private key (e.g. `wg genkey` output); throws `InvalidKeyError`. */
  static fromBase64(text: string): PrivateKey {
    const s = text.trim();
    assertValidKey(s, "private key");
    return new PrivateKey(Buffer.from(s, "base64"));
  }

  /** A fresh random key, clamped exactly as `wg genkey` does. */
  static generate(): PrivateKey {
    const { privateKey } = generateKeyPairSync("x25519");
    const d = privateKey.export({ format: "jwk" }).d;
    if (d === undefined) throw new InvalidKeyError("X25519 private key export returned no key");
    return new PrivateKey(clamp(Buffer.from(d, "base64url")));
  }

  /** The secret, as standard base64. Never log it. */
  toBase64(): string {
    return this.#raw.toString("base64");
  }

  /** The matching public key, as standard base64 (what `wg pubkey` prints). */
  publicKey(): string {
    this.#publicKey ??= publicFromRaw(this.#raw);
    return this.#publicKey;
  }

  equals(other: PrivateKey): boolean {
    return this.toBase64() === other.toBase64();
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

export interface KeyPair {
  privateKey: PrivateKey;
  publicKey: string;
}

/** Generates a key pair (same format as `wg genkey | tee priv | wg pubkey`). */
export function generateKeyPair(): KeyPair {
  const privateKey = PrivateKey.generate();
  return { privateKey, publicKey: privateKey.publicKey() };
}

/** Derives the public key from a private key (object or base64 text). */
export function derivePublicKey(privateKey: PrivateKey | string): string {
  return (typeof privateKey === "string" ? PrivateKey.fromBase64(privateKey) : privateKey).publicKey();
}

/**
 * Writes `key` to `path` atomically: a temporary file created with mode 0600 in the same
 * directory, fsynced, then renamed over `path`. Creates the directory (mode 0700) if missing.
 */
export async function writePrivateKeyFile(path: string, key: PrivateKey): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await fh.chmod(0o600); // independent of umask and of any odd filesystem default
    await fh.writeFile(`${key.toBase64()}\n`, "utf8");
    await fh.sync();
    await fh.close();
    await rename(tmp, path);
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Reads a private key file. Refuses (`InsecureKeyFileError`) a file with any group/other
 * permission bit, and (`InvalidKeyError`) one that does not hold a single base64 key.
 */
export async function readPrivateKeyFile(path: string): Promise<PrivateKey> {
  const fh = await open(path, constants.O_RDONLY);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new InvalidKeyError(`private key file ${path} is not a regular file`);
    if ((st.mode & 0o077) !== 0) throw new InsecureKeyFileError(path, st.mode);
    const text = await fh.readFile("utf8");
    try {
      return PrivateKey.fromBase64(text);
    } catch (err) {
      throw new InvalidKeyError(`private key file ${path} does not contain a WireGuard private key`, { cause: err });
    }
  } finally {
    await fh.close();
  }
}

/**
 * Loads the private key at `path`, generating and writing a new one if the file does not
 * exist. `created` tells the caller a new identity was made (its public key must be published).
 */
export async function loadOrCreatePrivateKey(path: string): Promise<KeyPair & { created: boolean }> {
  try {
    const privateKey = await readPrivateKeyFile(path);
    return { privateKey, publicKey: privateKey.publicKey(), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const pair = generateKeyPair();
  await writePrivateKeyFile(path, pair.privateKey);
  return { ...pair, created: true };
}

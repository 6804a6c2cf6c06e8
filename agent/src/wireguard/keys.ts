/**
 * WireGuard private key files: written atomically with mode 0600, refused when readable by others.
 * The keys themselves (generation, validation, the redacting `PrivateKey`) live in @weft/protocol,
 * which the controller's tests use too; they are re-exported here for the agent's modules.
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { mkdir, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { InvalidKeyError, PrivateKey, generateKeyPair, type KeyPair } from "@weft/protocol";
import { InsecureKeyFileError } from "./errors.js";

export { PrivateKey, assertValidKey, derivePublicKey, generateKeyPair, isValidKey, type KeyPair } from "@weft/protocol";

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

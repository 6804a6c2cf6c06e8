/**
 * Join key secrets: generation, parsing and constant-time verification.
 * A key reads `weft_<id>_<secret>`; only sha256(secret) is ever stored.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

const KEY_PATTERN = /^weft_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
/** A join key id: the public part of the key, 12 lowercase hex digits. */
export const JOIN_KEY_ID_PATTERN = /^[0-9a-f]{12}$/;

export interface NewSecret {
  id: string;
  key: string;
  hash: string;
}

export function newJoinKeySecret(): NewSecret {
  const id = randomBytes(6).toString("hex");
  const secret = randomBytes(32).toString("base64url");
  return { id, key: `weft_${id}_${secret}`, hash: hashSecret(secret) };
}

export function parseJoinKey(key: string): { id: string; secret: string } | undefined {
  const match = KEY_PATTERN.exec(key);
  if (!match?.[1] || !match[2]) return undefined;
  return { id: match[1], secret: match[2] };
}

export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** Compare a presented secret with a stored hash in constant time. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const want = Buffer.from(storedHash, "hex");
  const got = createHash("sha256").update(secret).digest();
  return want.length === got.length && timingSafeEqual(want, got);
}

/** Constant-time comparison of two bearer tokens of any length. */
export function tokensMatch(presented: string, expected: string): boolean {
  const a = createHash("sha256").update(presented).digest();
  const b = createHash("sha256").update(expected).digest();
  return timingSafeEqual(a, b);
}

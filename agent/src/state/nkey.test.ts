import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAccount, createUser, fromSeed } from "@nats-io/nkeys";
import { describe, expect, it } from "vitest";
import { NATS_SEED_FILE } from "./store.js";
import { loadOrCreateNatsIdentity, natsPublicKey } from "./nkey.js";

describe("nats identity", () => {
  it("nats identity - natsPublicKey is what nkeys derives, for users and other roles", () => {
    for (const kp of [createUser(), createUser(), createUser(), createAccount()]) {
      expect(natsPublicKey(kp.getSeed())).toBe(kp.getPublicKey());
    }
  });

  it("nats identity - natsPublicKey refuses a malformed seed", () => {
    const seed = createUser().getSeed();
    const broken = seed.slice();
    broken[10] = broken[10] === 65 ? 66 : 65; // one character changed: the checksum fails
    expect(() => natsPublicKey(broken)).toThrow();
    expect(() => natsPublicKey(new TextEncoder().encode("not a seed"))).toThrow();
  });

  it("nats identity - created once (mode 0600), then loaded with the same public key", async () => {
    const dir = await mkdtemp(join(tmpdir(), "weft-nkey-"));
    try {
      const created = await loadOrCreateNatsIdentity(dir);
      expect(created.publicKey).toBe(fromSeed(created.seed).getPublicKey());
      expect((await stat(join(dir, NATS_SEED_FILE))).mode & 0o777).toBe(0o600);
      const loaded = await loadOrCreateNatsIdentity(dir);
      expect(loaded.publicKey).toBe(created.publicKey);
      expect((await readFile(join(dir, NATS_SEED_FILE), "utf8")).trim()).toBe(new TextDecoder().decode(created.seed));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

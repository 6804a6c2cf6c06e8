import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { decode, type Account, type User } from "@nats-io/jwt";
import { createAccount, createUser } from "@nats-io/nkeys";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AGENT_CREDENTIAL_MAX_LIFETIME_SECONDS, Authority } from "./authority.js";
import { authorityPath, loadAuthority, loadOrCreateAuthority } from "./authority-file.js";
import { claimsUpdateSubject, SYSTEM_USER_INBOX_PREFIX } from "./jwts.js";
import { AuthorityStateError, InvalidNodeIdError, InvalidUserKeyError } from "./errors.js";
import { agentPermissions } from "./permissions.js";
import { revocationsPath } from "./revocations.js";

function accountRevocations(jwt: string): Record<string, number> {
  return decode<Account>(jwt).nats.revocations ?? {};
}

const nodeId = "n-0123456789abcdef";
let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "weft-authority-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("nats authority", () => {
  it("nats - authority is created once (dir 0700, file 0600) and reloads with the same keys", async () => {
    const dir = join(root, "a1");
    const first = await loadOrCreateAuthority(dir);
    const dirMode = (await stat(dir)).mode & 0o777;
    const fileMode = (await stat(authorityPath(dir))).mode & 0o777;
    expect(dirMode, `dir mode: got ${dirMode.toString(8)}, want 700`).toBe(0o700);
    expect(fileMode, `file mode: got ${fileMode.toString(8)}, want 600`).toBe(0o600);

    const again = await loadOrCreateAuthority(dir);
    const loaded = await loadAuthority(dir);
    for (const a of [again, loaded]) {
      expect(a.operatorPublicKey, "operator key after reload").toBe(first.operatorPublicKey);
      expect(a.accountPublicKey, "account key after reload").toBe(first.accountPublicKey);
      expect(a.systemAccountPublicKey, "system account key after reload").toBe(first.systemAccountPublicKey);
      expect(a.signingKeyPublicKey, "signing key after reload").toBe(first.signingKeyPublicKey);
    }
  });

  it("nats - two concurrent creations agree on one authority", async () => {
    const dir = join(root, "race");
    const [a, b] = await Promise.all([loadOrCreateAuthority(dir), loadOrCreateAuthority(dir)]);
    expect(b.operatorPublicKey, `operator: got ${b.operatorPublicKey}, want ${a.operatorPublicKey}`).toBe(a.operatorPublicKey);
  });

  it("nats - authority and credentials redact seeds in JSON and inspect", async () => {
    const dir = join(root, "redact");
    const a = await loadOrCreateAuthority(dir);
    const seeds = Object.values(JSON.parse(await readFile(authorityPath(dir), "utf8")) as Record<string, unknown>).filter(
      (v): v is string => typeof v === "string" && v.startsWith("S"),
    );
    expect(seeds.length, "seeds in the file").toBe(4);
    const user = await a.issueControllerUser();
    const userSeed = new TextDecoder().decode(user.seed());
    const outputs = [JSON.stringify(a), inspect(a), JSON.stringify(user), inspect(user), JSON.stringify({ a, user }), String(a)];
    for (const out of outputs) {
      for (const s of [...seeds, userSeed]) {
        expect(out.includes(s), `output ${out.slice(0, 80)}…: got a seed in it, want it redacted`).toBe(false);
      }
    }
  });

  it("nats - agent JWT binds the agent's key, is signed by the signing key and carries the template", async () => {
    const a = await loadOrCreateAuthority(join(root, "jwt"));
    const kp = createUser();
    const jwt = await a.issueAgentUser({ nodeId, userPublicKey: kp.getPublicKey() });
    const claims = decode<User>(jwt);
    expect(claims.sub, "sub").toBe(kp.getPublicKey());
    expect(claims.iss, "iss (signing key)").toBe(a.signingKeyPublicKey);
    expect(claims.nats.issuer_account, "issuer_account").toBe(a.accountPublicKey);
    const perms = agentPermissions(nodeId);
    expect(claims.nats.pub?.allow, "pub.allow").toEqual(perms.pub.allow);
    expect(claims.nats.sub?.allow, "sub.allow").toEqual(perms.sub.allow);
    expect(claims.nats.bearer_token, "bearer_token").toBe(false);
  });

  it("nats - issueAgentUser rejects bad node ids and keys with typed errors", async () => {
    const a = await loadOrCreateAuthority(join(root, "bad"));
    const user = createUser();
    await expect(a.issueAgentUser({ nodeId: "n-XYZ", userPublicKey: user.getPublicKey() }), "bad node id").rejects.toBeInstanceOf(
      InvalidNodeIdError,
    );
    const seed = new TextDecoder().decode(user.getSeed());
    const pub = user.getPublicKey();
    const broken = pub.slice(0, -1) + (pub.endsWith("A") ? "B" : "A");
    for (const [what, key] of [
      ["account key", createAccount().getPublicKey()],
      ["seed", seed],
      ["bad checksum", broken],
      ["empty", ""],
    ] as const) {
      const err = await a.issueAgentUser({ nodeId, userPublicKey: key }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, `${what}: got ${String(err)}, want InvalidUserKeyError`).toBeInstanceOf(InvalidUserKeyError);
      expect((err as Error).message.includes(seed), `${what}: error message contains the seed`).toBe(false);
    }
  });

  it("nats - a group-readable or corrupt authority file is refused", async () => {
    const dir = join(root, "perm");
    await loadOrCreateAuthority(dir);
    await chmod(authorityPath(dir), 0o644);
    await expect(loadOrCreateAuthority(dir), "mode 644").rejects.toBeInstanceOf(AuthorityStateError);
    await writeFile(authorityPath(dir), "{not json", { mode: 0o600 });
    await chmod(authorityPath(dir), 0o600);
    await expect(loadAuthority(dir), "corrupt file").rejects.toBeInstanceOf(AuthorityStateError);
    await expect(loadAuthority(join(root, "missing")), "missing").rejects.toBeInstanceOf(AuthorityStateError);
  });

  it("nats - server config fragment trusts the operator and preloads both accounts", async () => {
    const a = await loadOrCreateAuthority(join(root, "frag"));
    const frag = a.serverConfigFragment();
    for (const want of [
      `operator: "${a.operatorJwt}"`,
      `system_account: "${a.systemAccountPublicKey}"`,
      "resolver: MEMORY",
      `"${a.systemAccountPublicKey}": "${a.systemAccountJwt}"`,
      `"${a.accountPublicKey}": "${a.accountJwt}"`,
    ]) {
      expect(frag.includes(want), `fragment: missing ${want.slice(0, 60)}…`).toBe(true);
    }
    expect(/"S[OAU][A-Z2-7]{50,}"/.test(frag), "fragment: got a seed, want none").toBe(false);
  });

  it("nats - server config fragment with a resolver dir uses the full resolver", async () => {
    const a = await loadOrCreateAuthority(join(root, "frag-full"));
    const frag = a.serverConfigFragment({ resolverDir: "/var/lib/weft/nats/jwt" });
    const want = 'resolver: { type: full, dir: "/var/lib/weft/nats/jwt", allow_delete: false, interval: "2m" }';
    expect(frag.includes(want), `fragment: got\n${frag.slice(0, 400)}\nwant a line ${want}`).toBe(true);
    expect(frag.includes("resolver: MEMORY"), "fragment: MEMORY resolver as well").toBe(false);
    expect(frag.includes(`"${a.accountPublicKey}": "${a.accountJwt}"`), "fragment: preloads the account JWT").toBe(true);
  });

  it("nats - revokeUser persists the list (0600), re-signs the account JWT, and a reload keeps it", async () => {
    const dir = join(root, "revoke");
    const a = await loadOrCreateAuthority(dir);
    expect(accountRevocations(a.accountJwt), "fresh account JWT revocations").toEqual({});
    const user = createUser().getPublicKey();
    const before = Math.floor(Date.now() / 1000);
    const rev = await a.revokeUser(user);
    const at = rev.revokedAt.getTime() / 1000;
    expect(at >= before && at <= Math.floor(Date.now() / 1000), `revokedAt ${at}, want now (${before})`).toBe(true);
    expect(rev.wasRevoked, "wasRevoked").toBe(false);
    expect(accountRevocations(a.accountJwt), "account JWT after revokeUser").toEqual({ [user]: at });
    expect(decode(a.accountJwt).iss, "account JWT signer").toBe(a.operatorPublicKey);
    expect(a.serverConfigFragment().includes(`"${a.accountPublicKey}": "${a.accountJwt}"`), "fragment carries the new JWT").toBe(true);

    const mode = (await stat(revocationsPath(dir))).mode & 0o777;
    expect(mode, `revocations file mode: got ${mode.toString(8)}, want 600`).toBe(0o600);
    const reloaded = await loadAuthority(dir);
    expect(reloaded.revokedAt(user)?.getTime(), "reloaded revokedAt").toBe(at * 1000);
    expect(accountRevocations(reloaded.accountJwt), "re-signed account JWT after reload").toEqual({ [user]: at });
    expect(JSON.parse(JSON.stringify(reloaded)).revokedUsers, "toJSON revokedUsers").toBe(1);
  });

  it("nats - revoking again moves the time forward; a bad key is refused and nothing is written", async () => {
    const dir = join(root, "revoke-again");
    const a = await loadOrCreateAuthority(dir);
    const user = createUser().getPublicKey();
    const first = await a.revokeUser(user);
    await new Promise((r) => setTimeout(r, 1100));
    const second = await a.revokeUser(user);
    expect(second.wasRevoked, "wasRevoked").toBe(true);
    expect(second.revokedAt > first.revokedAt, `second revokedAt ${second.revokedAt.toISOString()}, want after ${first.revokedAt.toISOString()}`).toBe(true);

    const seed = new TextDecoder().decode(createUser().getSeed());
    const jwtBefore = a.accountJwt;
    const fileBefore = await readFile(revocationsPath(dir), "utf8");
    for (const [what, key] of [
      ["seed", seed],
      ["account key", createAccount().getPublicKey()],
      ["empty", ""],
    ] as const) {
      const err = await a.revokeUser(key).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, `${what}: got ${String(err)}, want InvalidUserKeyError`).toBeInstanceOf(InvalidUserKeyError);
      expect((err as Error).message.includes(seed), `${what}: message contains the seed`).toBe(false);
    }
    expect(a.accountJwt, "account JWT after refused revocations").toBe(jwtBefore);
    expect(await readFile(revocationsPath(dir), "utf8"), "revocations file after refused revocations").toBe(fileBefore);
  });

  it("nats - concurrent revocations and two authority instances on one dir all end up in the list", async () => {
    const dir = join(root, "revoke-many");
    const a = await loadOrCreateAuthority(dir);
    const b = await loadAuthority(dir); // e.g. a second process, loaded before a's revocations
    const keys = Array.from({ length: 8 }, () => createUser().getPublicKey());
    await Promise.all(keys.slice(0, 6).map((k) => a.revokeUser(k)));
    await b.revokeUser(keys[6]!);
    await a.revokeUser(keys[7]!);
    const reloaded = await loadAuthority(dir);
    const got = Object.keys(accountRevocations(reloaded.accountJwt)).sort();
    expect(got, "revoked keys after reload").toEqual([...keys].sort());
    expect(Object.keys(accountRevocations(b.accountJwt)).length, "b's JWT merges what a wrote before").toBe(7);
  });

  it("nats - a corrupt or group-writable revocation list is refused, not read as empty", async () => {
    const dir = join(root, "revoke-bad");
    const a = await loadOrCreateAuthority(dir);
    await a.revokeUser(createUser().getPublicKey());
    await chmod(revocationsPath(dir), 0o664);
    const writable = await loadAuthority(dir).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(writable, `mode 664: got ${String(writable)}, want AuthorityStateError`).toBeInstanceOf(AuthorityStateError);
    expect(String(writable), "message says what to do").toMatch(/chmod 600/);
    for (const [what, text] of [
      ["not JSON", "{"],
      ["wrong version", '{"version":2,"users":{}}'],
      ["bad key", '{"version":1,"users":{"UNOTAKEY":1}}'],
      ["bad time", `{"version":1,"users":{"${createUser().getPublicKey()}":"yesterday"}}`],
    ] as const) {
      await writeFile(revocationsPath(dir), text, { mode: 0o600 });
      await chmod(revocationsPath(dir), 0o600);
      await expect(loadAuthority(dir), what).rejects.toBeInstanceOf(AuthorityStateError);
    }
  });

  it("nats - a JWT for a revoked key is issued after the revocation second", async () => {
    const a = await loadOrCreateAuthority(join(root, "reissue"));
    const kp = createUser();
    const rev = await a.revokeUser(kp.getPublicKey());
    const jwt = await a.issueAgentUser({ nodeId, userPublicKey: kp.getPublicKey() });
    const iat = decode(jwt).iat;
    expect(iat > rev.revokedAt.getTime() / 1000, `iat ${iat}, want > ${rev.revokedAt.getTime() / 1000}`).toBe(true);
  });

  it("nats - the system user may only push the WEFT account's claims", async () => {
    const a = await loadOrCreateAuthority(join(root, "sys"));
    const user = await a.issueSystemUser();
    const claims = decode<User>(user.jwt);
    expect(claims.iss, "iss (system account)").toBe(a.systemAccountPublicKey);
    expect(claims.nats.pub?.allow, "pub.allow").toEqual([claimsUpdateSubject(a.accountPublicKey)]);
    expect(claims.nats.sub?.allow, "sub.allow").toEqual([`${SYSTEM_USER_INBOX_PREFIX}.>`]);
    expect(claims.nats.bearer_token, "bearer_token").toBe(false);
  });

  it("nats - revocations are pruned once every JWT they cover has expired, only where agent JWTs always expired", async () => {
    const dir = join(root, "prune");
    const a = await loadOrCreateAuthority(dir);
    const raw = JSON.parse(await readFile(authorityPath(dir), "utf8")) as { agentJwtsExpireSince?: number };
    expect(typeof raw.agentJwtsExpireSince, "a new authority records since when agent JWTs expire").toBe("number");
    const old = createUser().getPublicKey();
    const recent = createUser().getPublicKey();
    await a.revokeUser(old);
    const later = new Date(Date.now() + (AGENT_CREDENTIAL_MAX_LIFETIME_SECONDS + 120) * 1000);
    expect(await a.pruneRevocations(new Date()), "nothing to prune right after revoking").toEqual([]);
    await a.revokeUser(recent);
    // A revocation older than the longest credential lifetime covers only expired JWTs.
    const keep = (await a.pruneRevocations(new Date(Date.now() + 60_000))).length;
    expect(keep, "nothing pruned a minute later").toBe(0);
    expect(await a.pruneRevocations(later), "pruned past the longest lifetime").toEqual(expect.arrayContaining([old, recent]));
    expect(a.revokedAt(old), "pruned key").toBeUndefined();
    expect(decode<Account>(a.accountJwt).nats.revocations?.[old], "re-signed account JWT without it").toBeUndefined();
    expect((await loadAuthority(dir)).revocations().size, "persisted").toBe(0);

    // An authority from before expiring credentials (no agentJwtsExpireSince) never prunes.
    const legacyDir = join(root, "prune-legacy");
    await loadOrCreateAuthority(legacyDir);
    const text = JSON.parse(await readFile(authorityPath(legacyDir), "utf8")) as Record<string, unknown>;
    delete text["agentJwtsExpireSince"];
    await writeFile(authorityPath(legacyDir), JSON.stringify(text), { mode: 0o600 });
    const legacy = await loadAuthority(legacyDir);
    await legacy.revokeUser(old);
    expect(await legacy.pruneRevocations(later), "legacy authority: nothing pruned").toEqual([]);
    expect(legacy.revokedAt(old), "legacy authority keeps the revocation").toBeDefined();
  });

  it("nats - agent JWTs expire after the configured lifetime", async () => {
    const a = await Authority.generate();
    a.agentCredentialLifetimeSeconds = 3600;
    const jwt = await a.issueAgentUser({ nodeId: "n-0123456789abcdef", userPublicKey: createUser().getPublicKey() });
    const c = decode<User>(jwt);
    // exp is set from the clock before signing and iat by the library while it signs: a second may tick in between.
    expect((c.exp ?? 0) - c.iat, "exp - iat").toBeGreaterThanOrEqual(3599);
    expect((c.exp ?? 0) - c.iat, "exp - iat").toBeLessThanOrEqual(3600);
    expect(() => (a.agentCredentialLifetimeSeconds = 8 * 24 * 3600), "a lifetime over 7 days").toThrow(RangeError);
  });
});

import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { decode, type User } from "@nats-io/jwt";
import { createAccount, createUser } from "@nats-io/nkeys";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authorityPath, loadAuthority, loadOrCreateAuthority } from "./authority.js";
import { AuthorityStateError, InvalidNodeIdError, InvalidUserKeyError } from "./errors.js";
import { agentPermissions } from "./permissions.js";

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
});

/**
 * WireGuard key rotation on a fake host: the interface switches to the new key before the
 * controller is told (so peers that take the new record already find it), the key file follows
 * once the controller confirms, a refusal puts the old key back, an unreachable controller is
 * asked again and, when it stays unreachable, leaves `.next` for the next start to finish. On a
 * peer, a record with a new key replaces the old peer and is greeted at once (warm-up).
 */
import { access, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { AgentError } from "../errors.js";
import { PrivateKey } from "../wireguard/index.js";
import { enrolledNode, peerRecord, peerSet, type Node } from "./testing.js";

const nodes: Node[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.cleanup();
});
async function node(...args: Parameters<typeof enrolledNode>): Promise<Node> {
  const n = await enrolledNode(...args);
  nodes.push(n);
  return n;
}

const keyFile = (n: Node) => join(n.dir, "wireguard.key");
const fileKey = async (path: string) => PrivateKey.fromBase64(await readFile(path, "utf8")).publicKey();
const hostKey = (n: Node) => (n.host.privateKey ? PrivateKey.fromBase64(n.host.privateKey).publicKey() : undefined);
const exists = (path: string) => access(path).then(() => true, () => false);
const fast = { initialMs: 1, maxMs: 2, maxAttempts: 3 };

describe("reconcile/interface key rotation", () => {
  it("rotation - the interface takes the new key before the controller is told; the key file follows; the old key is gone", async () => {
    const n = await node();
    await n.iface.bringUp([]);
    const old = hostKey(n);
    const seen: { published: string; onInterface: string | undefined }[] = [];
    const got = await n.iface.rotateKey(async (publicKey) => void seen.push({ published: publicKey, onInterface: hostKey(n) }));
    expect(seen, "published once, with the interface already on the new key").toEqual([{ published: got.publicKey, onInterface: got.publicKey }]);
    expect(got.publicKey, "a new key").not.toBe(old);
    expect(hostKey(n), "interface key after").toBe(got.publicKey);
    expect(await fileKey(keyFile(n)), "key file after").toBe(got.publicKey);
    expect(await exists(`${keyFile(n)}.next`), ".next left behind").toBe(false);
  });

  it("rotation - a refusal puts the old key back on the interface and leaves nothing pending", async () => {
    const n = await node();
    await n.iface.bringUp([]);
    const old = hostKey(n);
    const refused = n.iface.rotateKey(async () => {
      throw new AgentError("the controller refused the new WireGuard key: conflict: taken");
    });
    await expect(refused, "the refusal").rejects.toThrow(/conflict/);
    expect(hostKey(n), "interface key after a refusal").toBe(old);
    expect(await fileKey(keyFile(n)), "key file after a refusal").toBe(old);
    expect(await exists(`${keyFile(n)}.next`), ".next after a refusal").toBe(false);
  });

  it("rotation - an unreachable controller is asked again; when it stays away the old key returns and the next start finishes the rotation", async () => {
    const n = await node();
    const { OverlayInterface } = await import("./interface.js");
    const iface = new OverlayInterface({ wireguard: n.wireguard, state: n.state, settings: { privateKeyPath: keyFile(n), listenPort: 51820, mtu: 1420, addresses: ["100.64.0.1/32"] }, overlayRanges: ["100.64.0.0/16"], log: n.log, publishRetry: fast });
    await iface.bringUp([]);
    const old = hostKey(n);
    let calls = 0;
    const unreachable = async () => {
      calls++;
      throw new AgentError("cannot reach the controller", { retryable: true });
    };
    await expect(iface.rotateKey(unreachable), "unreachable").rejects.toThrow(/cannot reach/);
    expect(calls, "attempts").toBe(fast.maxAttempts);
    expect(hostKey(n), "interface key while the outcome is unknown").toBe(old);
    expect(await exists(`${keyFile(n)}.next`), ".next kept for later").toBe(true);
    const pending = await fileKey(`${keyFile(n)}.next`);

    const published: string[] = [];
    const resumed = await iface.resumeRotation(async (k) => void published.push(k));
    expect(resumed?.publicKey, "the pending key is the one finished").toBe(pending);
    expect(published, "published again (idempotent on the controller)").toEqual([pending]);
    expect([hostKey(n), await fileKey(keyFile(n))], "interface and file after resuming").toEqual([pending, pending]);
    expect(await iface.resumeRotation(async () => undefined), "nothing left to resume").toBeUndefined();
  });

  it("rotation - a peer whose key changed is replaced, not duplicated, and greeted at once", async () => {
    const n = await node();
    await n.iface.bringUp([]);
    const me = peerRecord(1, "aws", { wireguardPublicKey: hostKey(n)! });
    const other = peerRecord(2, "azure", { endpoints: { public: "198.51.100.2:51820" } });
    n.peers.submit(peerSet([me, other], 1));
    await n.peers.idle();
    const rotated = { ...other, wireguardPublicKey: PrivateKey.generate().publicKey() };
    n.warmed.length = 0;
    n.peers.submit(peerSet([me, rotated], 2));
    await n.peers.idle();
    expect((n.host.peers ?? []).map((p) => [p.publicKey, p.allowedIps.join(",")]), "peers after the rotation").toEqual([[rotated.wireguardPublicKey, "100.64.0.2/32"]]);
    expect(n.warmed, "warm-up (starts the handshake with the new key)").toEqual([["100.64.0.2"]]);
  });
});

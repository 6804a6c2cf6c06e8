import { describe, expect, it } from "vitest";
import { InvalidNodeIdError } from "./errors.js";
import { agentPermissions, kvBucketReadSubjects } from "./permissions.js";

const id = "n-0123456789abcdef";

describe("nats permissions", () => {
  it("nats - agent template publishes only under its node root and reads weft-peers", () => {
    const got = agentPermissions(id);
    const want = {
      pub: {
        allow: [
          "weft.v1.node.n-0123456789abcdef.>",
          "$JS.API.DIRECT.GET.KV_weft-peers",
          "$JS.API.DIRECT.GET.KV_weft-node-policies.$KV.weft-node-policies.n-0123456789abcdef",
          "$JS.API.DIRECT.GET.KV_weft-node-policies.$KV.weft-node-policies.n-0123456789abcdef.*",
          "$JS.API.DIRECT.GET.KV_weft-node-services.$KV.weft-node-services.n-0123456789abcdef",
          "$JS.API.DIRECT.GET.KV_weft-node-paths.$KV.weft-node-paths.n-0123456789abcdef",
          "$JS.API.DIRECT.GET.KV_weft-trust-bundle.$KV.weft-trust-bundle.bundle",
        ],
      },
      sub: {
        allow: [
          "_INBOX_n-0123456789abcdef.>",
          "weft.v1.peers.>",
          "weft.v1.kv.weft-node-policies.n-0123456789abcdef",
          "$KV.weft-node-policies.n-0123456789abcdef",
          "weft.v1.kv.weft-node-services.n-0123456789abcdef",
          "$KV.weft-node-services.n-0123456789abcdef",
          "weft.v1.kv.weft-node-paths.n-0123456789abcdef",
          "$KV.weft-node-paths.n-0123456789abcdef",
          "weft.v1.kv.weft-trust-bundle.bundle",
          "$KV.weft-trust-bundle.bundle",
        ],
      },
    };
    expect(got, `agentPermissions(${id}): got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`).toEqual(want);
  });

  it("nats - agent template never grants bucket writes, other buckets or other nodes", () => {
    const { pub, sub } = agentPermissions(id);
    for (const s of pub.allow) {
      expect(s.startsWith("$KV."), `pub allow ${s}: got a $KV subject, want none (no bucket writes)`).toBe(false);
      if (s.includes("weft-node-policies")) {
        expect([`$JS.API.DIRECT.GET.KV_weft-node-policies.$KV.weft-node-policies.${id}`, `$JS.API.DIRECT.GET.KV_weft-node-policies.$KV.weft-node-policies.${id}.*`], `pub allow ${s}: want only direct gets of the node's own key and its chunks`).toContain(s);
      }
      if (s.includes("weft-node-paths")) expect(s, `pub allow ${s}: want only a direct get of the node's own key`).toBe(`$JS.API.DIRECT.GET.KV_weft-node-paths.$KV.weft-node-paths.${id}`);
      if (s.includes("weft-node-services")) expect(s, `pub allow ${s}: want only a direct get of the node's own key`).toBe(`$JS.API.DIRECT.GET.KV_weft-node-services.$KV.weft-node-services.${id}`);
      if (s.includes("weft-trust-bundle")) expect(s, `pub allow ${s}: want only a direct get of the bundle key`).toBe("$JS.API.DIRECT.GET.KV_weft-trust-bundle.$KV.weft-trust-bundle.bundle");
      for (const other of ["weft-nodes", "weft-keys", "weft-ipam", "weft-services"]) {
        expect(s.includes(other), `pub allow ${s}: got access to ${other}, want none`).toBe(false);
      }
      if (s.startsWith("weft.")) {
        expect(s, `pub allow ${s}: got a subject outside the node root`).toBe(`weft.v1.node.${id}.>`);
      }
      expect(["*", ">", "$JS.API.>", "$JS.>"].includes(s), `pub allow ${s}: got a broad wildcard`).toBe(false);
      expect(s.includes("CONSUMER"), `pub allow ${s}: got a consumer API subject, want none (agents create no consumers)`).toBe(false);
    }
    for (const s of sub.allow) {
      const ownKey = (bucket: string, key = id) => s === `weft.v1.kv.${bucket}.${key}` || s === `$KV.${bucket}.${key}`;
      const ok = s.startsWith(`_INBOX_${id}.`) || ownKey("weft-node-policies") || ownKey("weft-node-services") || ownKey("weft-node-paths") || s === "weft.v1.peers.>" || ownKey("weft-trust-bundle", "bundle");
      expect(ok, `sub allow ${s}: got a subject outside the agent's inbox, the peers republish subject, its own node-policy, node-services and node-paths keys and the trust bundle`).toBe(true);
    }
  });

  it("nats - two nodes' templates do not overlap on node subjects or inboxes", () => {
    const a = agentPermissions(id);
    const b = agentPermissions("n-fedcba9876543210");
    const own = (p: typeof a) => [...p.pub.allow.filter((s) => s.startsWith("weft.") || s.includes("node-policies") || s.includes("node-services") || s.includes("node-paths")), ...p.sub.allow.filter((s) => s !== "weft.v1.peers.>")];
    const shared = own(a).filter((s) => own(b).includes(s));
    // The trust bundle is one public key every agent reads on purpose; nothing node-scoped is shared.
    expect(shared, `shared node-scoped subjects: got ${JSON.stringify(shared)}, want only the trust bundle's`).toEqual(["weft.v1.kv.weft-trust-bundle.bundle", "$KV.weft-trust-bundle.bundle"]);
  });

  it("nats - invalid node ids are rejected with InvalidNodeIdError", () => {
    for (const bad of ["", "n-0123", "n-0123456789ABCDEF", "n-0123456789abcdef.>", "weft.>", "n-0123456789abcdeg", " n-0123456789abcdef"]) {
      expect(() => agentPermissions(bad), `agentPermissions(${JSON.stringify(bad)}): want InvalidNodeIdError`).toThrow(InvalidNodeIdError);
    }
  });

  it("nats - kv read subjects are scoped to the bucket's stream", () => {
    const { pub, sub } = kvBucketReadSubjects("weft-peers", "weft.v1.peers.>");
    expect(sub, "sub: the republish subject only").toEqual(["weft.v1.peers.>"]);
    for (const s of pub) {
      expect(s.includes("KV_weft-peers"), `subject ${s}: got unscoped, want KV_weft-peers in it`).toBe(true);
    }
  });
});

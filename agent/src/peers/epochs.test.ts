import type { PeerRecord } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { newSessionEpoch, renewedSessions } from "./epochs.js";

const peer = (n: number, epoch?: string, key = `${"A".repeat(42)}${"AEIM"[n % 4]}=`): PeerRecord => ({
  version: 1,
  nodeId: `n-${String(n).padStart(16, "0")}`,
  name: `node-${n}`,
  site: "aws",
  wireguardPublicKey: key,
  overlayAddress: `100.64.0.${n}`,
  allowedIps: [`100.64.0.${n}/32`],
  endpoints: {},
  ...(epoch ? { sessionEpoch: epoch } : {}),
  updatedAt: "2026-11-22T00:00:00Z",
});

describe("epochs", () => {
  it("epochs - a new epoch is 16 hex digits and differs each time", () => {
    const a = newSessionEpoch();
    expect(a, "epoch format").toMatch(/^[0-9a-f]{16}$/);
    expect(newSessionEpoch(), "second epoch").not.toBe(a);
  });

  it("epochs - only peers whose epoch changed are renewed", () => {
    const before = [peer(1, "1111111111111111"), peer(2, "2222222222222222"), peer(3)];
    const after = [peer(1, "1111111111111111"), peer(2, "9999999999999999"), peer(3, "3333333333333333"), peer(4, "4444444444444444")];
    expect([...renewedSessions(before, after)], "renewed").toEqual([peer(2).wireguardPublicKey]);
  });

  it("epochs - nothing is renewed without a previous set, or when a node changed its key", () => {
    expect(renewedSessions(undefined, [peer(1, "1111111111111111")]).size, "first sight").toBe(0);
    const rekeyed = peer(1, "2222222222222222", `${"B".repeat(42)}A=`);
    expect(renewedSessions([peer(1, "1111111111111111")], [rekeyed]).size, "new key is a new peer, not a renewal").toBe(0);
  });
});

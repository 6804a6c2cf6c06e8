import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { InvalidDesiredStateError } from "./errors.js";
import { commandFailure, createFakeRunner } from "../exec/runner_fake.js";
import { createWireGuard, type Logger } from "./index.js";
import { generateKeyPair } from "./keys.js";

const self = generateKeyPair();
const [A, B, C] = [0, 1, 2].map(() => generateKeyPair().publicKey).sort() as [string, string, string];

interface Line {
  msg: string;
  [k: string]: unknown;
}

function recordingPino(): { logger: Logger; lines: Line[]; raw: string[] } {
  const lines: Line[] = [];
  const raw: string[] = [];
  const stream = {
    write: (s: string) => {
      raw.push(s);
      lines.push(JSON.parse(s) as Line);
    },
  };
  return { logger: pino({ level: "debug" }, stream), lines, raw };
}

describe("wireguard - createWireGuard", () => {
  it("syncPeers applies one wg set and summarises, logging peer and iface but no secret", async () => {
    const dump = [
      `${self.privateKey.toBase64()}\t${self.publicKey}\t51820\toff`,
      `${A}\t(none)\t192.0.2.1:51820\t100.64.0.1/32\t1732240000\t10\t20\toff`,
      `${B}\t(none)\t198.51.100.9:4000\t100.64.0.2/32\t1732240000\t10\t20\t25`,
    ].join("\n");
    const runner = createFakeRunner((argv) => (argv.join(" ") === "wg show weft0 dump" ? dump : undefined));
    const { logger, lines, raw } = recordingPino();
    const wg = createWireGuard({ name: "weft0", runner, logger: logger.child({ component: "wireguard" }) });
    const got = await wg.syncPeers([
      { publicKey: B, allowedIps: ["100.64.0.2", "10.2.0.0/16"], persistentKeepalive: 25 },
      { publicKey: C, endpoint: "192.0.2.3:51820", allowedIps: ["100.64.0.3/32"] },
    ]);
    expect([got.added, got.removed, got.updated], `got ${JSON.stringify(got)}, want 1 added, 1 removed, 1 updated`).toEqual([1, 1, 1]);
    const sets = runner.calls.filter((c) => c.argv[1] === "set").map((c) => c.argv.join(" "));
    const want = [
      `wg set weft0 peer ${A} remove peer ${B} allowed-ips 10.2.0.0/16,100.64.0.2/32 peer ${C} endpoint 192.0.2.3:51820 allowed-ips 100.64.0.3/32`,
    ];
    expect(sets, `got ${JSON.stringify(sets)}, want ${JSON.stringify(want)}`).toEqual(want);
    const peerLines = lines.filter((l) => typeof l["peer"] === "string");
    expect(peerLines.map((l) => l["peer"]), "one log line per change, with peer").toEqual([A, B, C]);
    expect(peerLines.every((l) => l["iface"] === "weft0" && l["component"] === "wireguard"), "iface and component fields").toBe(true);
    const dupes = raw.filter((r) => r.split('"component"').length > 2);
    expect(dupes, "no duplicated component field").toEqual([]);
    const all = raw.join("");
    expect(all.includes(self.privateKey.toBase64()), "private key must never be logged").toBe(false);
  });

  it("refuses its own public key as a peer", async () => {
    const runner = createFakeRunner(() => `${self.privateKey.toBase64()}\t${self.publicKey}\t51820\toff\n`);
    const wg = createWireGuard({ name: "weft0", runner });
    const err = await wg.syncPeers([{ publicKey: self.publicKey, allowedIps: [] }]).catch((e: unknown) => e);
    expect(err, `got ${String(err)}, want InvalidDesiredStateError`).toBeInstanceOf(InvalidDesiredStateError);
    expect(runner.calls.filter((c) => c.argv[1] === "set"), "nothing applied").toEqual([]);
  });

  it("show() omits the private key and returns undefined for a missing interface", async () => {
    const runner = createFakeRunner((argv) => {
      if (argv[0] === "ip") {
        return JSON.stringify([{ ifindex: 3, ifname: "weft0", flags: ["UP"], mtu: 1420, linkinfo: { info_kind: "wireguard" }, addr_info: [] }]);
      }
      return `${self.privateKey.toBase64()}\t${self.publicKey}\t51820\toff\n`;
    });
    const status = await createWireGuard({ name: "weft0", runner }).show();
    expect(status?.publicKey, "public key shown").toBe(self.publicKey);
    expect(JSON.stringify(status).includes(self.privateKey.toBase64()), "no private key in status").toBe(false);
    const missing = createFakeRunner((argv) => {
      throw commandFailure(argv, 'Device "weft0" does not exist.\n');
    });
    const none = await createWireGuard({ name: "weft0", runner: missing }).show();
    expect(none, "show() of a missing interface").toBeUndefined();
  });
});

import { describe, expect, it } from "vitest";
import { parseDump } from "./dump.js";
import { OutputParseError } from "./errors.js";

// In the format `wg show wgt-a0 dump` printed here (wireguard-go 0.0.20220316, wireguard-tools
// 1.0.20210914): a peer with handshake and keepalive, and a fresh peer with "(none)"/"off"/0.
const SAMPLE = [
  "aHdz2jvz6L5f8KYG1LOBoQOl6lpwMcZcCn4x9EMTZFs=\tT4Jmbx2Ubx6e4N/bFqDxFOwCEpvxDjHoHC+4o7BglU8=\t51820\toff",
  "nGlbfysiTf/6bt4Bm/BsQuwFMWMPf9Ues9O7oOmOPHA=\t(none)\t10.99.0.2:51820\t100.64.200.2/32,10.0.0.0/24\t1732240000\t1972\t2140\t25",
  "UeXq3Q36zvbhUAhwk0pcoIz0KcD4ZYt2yRYBd/1dUWQ=\t(none)\t(none)\t(none)\t0\t0\t0\toff",
  "",
].join("\n");

describe("wireguard - dump parser", () => {
  it("parses the interface line and peers, mapping (none)/off/0 to absent", () => {
    const got = parseDump(SAMPLE);
    const want = {
      privateKey: "aHdz2jvz6L5f8KYG1LOBoQOl6lpwMcZcCn4x9EMTZFs=",
      publicKey: "T4Jmbx2Ubx6e4N/bFqDxFOwCEpvxDjHoHC+4o7BglU8=",
      listenPort: 51820,
      fwmark: undefined,
      peers: [
        {
          publicKey: "nGlbfysiTf/6bt4Bm/BsQuwFMWMPf9Ues9O7oOmOPHA=",
          endpoint: "10.99.0.2:51820",
          allowedIps: ["100.64.200.2/32", "10.0.0.0/24"],
          latestHandshake: new Date(1732240000 * 1000),
          rxBytes: 1972,
          txBytes: 2140,
          persistentKeepalive: 25,
        },
        { publicKey: "UeXq3Q36zvbhUAhwk0pcoIz0KcD4ZYt2yRYBd/1dUWQ=", allowedIps: [], rxBytes: 0, txBytes: 0 },
      ],
    };
    expect(got, `got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`).toEqual(want);
  });

  it("parses a fresh wireguard-go interface with no key and a hex fwmark", () => {
    const got = parseDump("(none)\t(none)\t39319\t0x1f\n");
    const want = { privateKey: undefined, publicKey: undefined, listenPort: 39319, fwmark: 0x1f, peers: [] };
    expect(got, `got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`).toEqual(want);
  });

  it("rejects `wg show all dump` output and garbage", () => {
    for (const text of ["", "wg0\t(none)\t(none)\t1\toff\n", "a\tb\t1\toff\npeer\tonly\n", "a\tb\tport\toff\n"]) {
      expect(() => parseDump(text), `parseDump(${JSON.stringify(text)}): want OutputParseError`).toThrow(OutputParseError);
    }
  });
});

/** The relay forwards WireGuard-shaped datagrams only. */
import { describe, expect, it } from "vitest";
import { wireGuardMessage } from "./wire.js";

const msg = (type: number, length: number, pad = 0) => {
  const b = Buffer.alloc(length);
  b[0] = type;
  b[1] = pad;
  return b;
};

describe("relay/wire", () => {
  it("wire - each WireGuard message type at its length is recognised", () => {
    expect(wireGuardMessage(msg(1, 148)), "initiation").toBe("initiation");
    expect(wireGuardMessage(msg(2, 92)), "response").toBe("response");
    expect(wireGuardMessage(msg(3, 64)), "cookie").toBe("cookie");
    expect(wireGuardMessage(msg(4, 32)), "keepalive").toBe("data");
    expect(wireGuardMessage(msg(4, 32 + 16 * 90)), "data").toBe("data");
    // A full-size packet of a 1420-byte tunnel is padded to the MTU, not to 16: 1420 + 32 bytes.
    expect(wireGuardMessage(msg(4, 1420 + 32)), "data padded to an MTU that is not a multiple of 16").toBe("data");
    expect(wireGuardMessage(msg(4, 1300 + 32)), "data of a 1300-byte tunnel").toBe("data");
  });

  it("wire - anything else is not WireGuard", () => {
    const cases: [string, Buffer][] = [
      ["empty", Buffer.alloc(0)],
      ["short", msg(4, 16)],
      ["type 0", msg(0, 148)],
      ["type 5", msg(5, 148)],
      ["initiation of the wrong length", msg(1, 149)],
      ["response of the wrong length", msg(2, 148)],
      ["reserved bytes set", msg(4, 32, 1)],
      ["a probe datagram", Buffer.from("WEFTPING01234567")],
    ];
    for (const [what, b] of cases) expect(wireGuardMessage(b), what).toBeUndefined();
  });
});

/** The UAPI answer parser: the same DeviceDump as `wg show dump` (dump.test.ts) for the same device. */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseDump } from "./dump.js";
import { derivePublicKey } from "./keys.js";
import { OutputParseError } from "./errors.js";
import { UapiError } from "./errors.js";
import { parseUapiGet, uapiGet, uapiPeerLines, uapiSet, type UapiPeerMemo } from "./uapi.js";

const hex = (b64: string) => Buffer.from(b64, "base64").toString("hex");
const PRIVATE = "aHdz2jvz6L5f8KYG1LOBoQOl6lpwMcZcCn4x9EMTZFs=";
const PEER_A = "nGlbfysiTf/6bt4Bm/BsQuwFMWMPf9Ues9O7oOmOPHA=";
const PEER_B = "UeXq3Q36zvbhUAhwk0pcoIz0KcD4ZYt2yRYBd/1dUWQ=";

// The device of dump.test.ts's SAMPLE as wireguard-go answers `get=1` (device/uapi.go's order and keys).
const ANSWER = [
  `private_key=${hex(PRIVATE)}`,
  "listen_port=51820",
  `public_key=${hex(PEER_A)}`,
  `preshared_key=${"0".repeat(64)}`,
  "protocol_version=1",
  "endpoint=10.99.0.2:51820",
  "last_handshake_time_sec=1732240000",
  "last_handshake_time_nsec=120000",
  "tx_bytes=2140",
  "rx_bytes=1972",
  "persistent_keepalive_interval=25",
  "allowed_ip=100.64.200.2/32",
  "allowed_ip=10.0.0.0/24",
  `public_key=${hex(PEER_B)}`,
  `preshared_key=${"0".repeat(64)}`,
  "protocol_version=1",
  "last_handshake_time_sec=0",
  "last_handshake_time_nsec=0",
  "tx_bytes=0",
  "rx_bytes=0",
  "persistent_keepalive_interval=0",
  "errno=0",
  "",
  "",
].join("\n");

const DUMP = [
  `${PRIVATE}\t${derivePublicKey(PRIVATE)}\t51820\toff`, // wg derives it too (the root test compares with a real device)
  `${PEER_A}\t(none)\t10.99.0.2:51820\t100.64.200.2/32,10.0.0.0/24\t1732240000\t1972\t2140\t25`,
  `${PEER_B}\t(none)\t(none)\t(none)\t0\t0\t0\toff`,
  "",
].join("\n");

describe("wireguard - UAPI parser", () => {
  it("wireguard - a UAPI answer parses to what `wg show dump` gives for the same device (keys base64, public key derived)", () => {
    const got = parseUapiGet(ANSWER);
    const want = parseDump(DUMP);
    expect(got, `got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`).toEqual(want);
  });

  it("wireguard - a fresh device (no key, no peers) and a fwmark", () => {
    const got = parseUapiGet("listen_port=39319\nfwmark=31\nerrno=0\n\n");
    const want = { privateKey: undefined, publicKey: undefined, listenPort: 39319, fwmark: 31, peers: [] };
    expect(got, `got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`).toEqual(want);
  });

  it("wireguard - an error answer, a cut-short answer and garbage are refused", () => {
    for (const text of ["errno=1\n\n", "listen_port=1\n", `public_key=${hex(PEER_A)}\nrx_bytes=x\nerrno=0\n\n`, "public_key=zz\nerrno=0\n\n", "garbage\nerrno=0\n\n"]) {
      expect(() => parseUapiGet(text), `parseUapiGet(${JSON.stringify(text)}): want OutputParseError`).toThrow(OutputParseError);
    }
  });

  it("wireguard - with a memo, a peer whose lines did not change is the last answer's (frozen) object; a changed one is parsed again", () => {
    const memo: UapiPeerMemo = { peers: new Map() };
    const before = parseUapiGet(ANSWER, memo);
    const after = parseUapiGet(ANSWER.replace("tx_bytes=2140", "tx_bytes=2200"), memo);
    expect(after.peers[1], "the unchanged peer").toBe(before.peers[1]);
    expect(after.peers[0], "the peer whose tx_bytes moved").not.toBe(before.peers[0]);
    expect(after.peers[0]?.txBytes, "its new tx_bytes").toBe(2200);
    expect(after, "the same as without a memo").toEqual(parseUapiGet(ANSWER.replace("tx_bytes=2140", "tx_bytes=2200")));
    expect(memo.peers.size, "memo holds the last answer's peers only").toBe(2);
    expect(Object.isFrozen(after.peers[1]), "a shared peer is frozen").toBe(true);
  });
});

describe("uapiGet", () => {
  it("uapi - the answer is read whole however the socket splits it, also between its last two newlines", async () => {
    const dir = await mkdtemp(join(tmpdir(), "weft-uapi-"));
    const path = join(dir, "wg-test.sock");
    const answer = Buffer.from(ANSWER);
    // Split points: each position of the last 24 bytes (the blank line's two newlines apart, together, and
    // before them), plus an answer sent a byte at a time.
    const splits: number[][] = [];
    for (let cut = answer.length - 24; cut < answer.length; cut++) splits.push([cut]);
    splits.push(Array.from({ length: answer.length - 1 }, (_, i) => i + 1));
    let nextSplit: number[] = [];
    const server = createServer((socket: Socket) => {
      socket.once("data", async () => {
        // Like wireguard-go: the answer in pieces, and the connection left open for the next request.
        let from = 0;
        for (const at of [...nextSplit, answer.length]) {
          socket.write(answer.subarray(from, at));
          from = at;
          await new Promise((r) => setImmediate(r));
        }
      });
    });
    await new Promise<void>((r) => server.listen(path, r));
    try {
      for (const split of splits) {
        nextSplit = split;
        const got = await uapiGet(path);
        expect(got.equals(answer), `split at ${split.length > 3 ? "every byte" : split.join(",")}: ${got.length} of ${answer.length} bytes`).toBe(true);
      }
    } finally {
      await new Promise((r) => server.close(r));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("uapiSet", () => {
  it("uapi - peer changes become the lines `wg set` sends: remove, add with its endpoint, keepalive and allowed IPs, partial updates", () => {
    expect(
      uapiPeerLines([
        { kind: "remove", publicKey: PEER_B },
        { kind: "update", publicKey: PEER_A, allowedIps: [] },
        { kind: "update", publicKey: PEER_A, endpoint: "[2001:db8::1]:51820", persistentKeepalive: 0 },
        { kind: "add", peer: { publicKey: PEER_B, endpoint: "10.99.0.3:51820", allowedIps: ["100.64.0.3/32", "10.3.0.0/16"], persistentKeepalive: 25 } },
        { kind: "add", peer: { publicKey: PEER_B, allowedIps: [] } },
      ]),
    ).toEqual([
      `public_key=${hex(PEER_B)}`,
      "remove=true",
      `public_key=${hex(PEER_A)}`,
      "replace_allowed_ips=true",
      `public_key=${hex(PEER_A)}`,
      "endpoint=[2001:db8::1]:51820",
      "persistent_keepalive_interval=0",
      `public_key=${hex(PEER_B)}`,
      "endpoint=10.99.0.3:51820",
      "persistent_keepalive_interval=25",
      "replace_allowed_ips=true",
      "allowed_ip=100.64.0.3/32",
      "allowed_ip=10.3.0.0/16",
      `public_key=${hex(PEER_B)}`,
      "replace_allowed_ips=true",
    ]);
    expect(() => uapiPeerLines([{ kind: "remove", publicKey: "c2hvcnQ=" }])).toThrow(UapiError);
  });

  it("uapi - a set request is sent whole and resolves on errno=0; another errno is a UapiError", async () => {
    const dir = await mkdtemp(join(tmpdir(), "weft-uapi-"));
    const path = join(dir, "wg-test.sock");
    const requests: string[] = [];
    let answer = "errno=0\n\n";
    const server = createServer((socket: Socket) => {
      let got = "";
      socket.on("data", (b) => {
        got += b.toString();
        if (got.endsWith("\n\n")) {
          requests.push(got);
          socket.write(answer);
        }
      });
    });
    await new Promise<void>((r) => server.listen(path, r));
    try {
      await uapiSet(path, [`public_key=${hex(PEER_A)}`, "remove=true"]);
      expect(requests, "the request").toEqual([`set=1\npublic_key=${hex(PEER_A)}\nremove=true\n\n`]);
      answer = "errno=22\n\n";
      const err = await uapiSet(path, ["listen_port=x"]).catch((e: unknown) => e);
      expect(err, String(err)).toBeInstanceOf(UapiError);
      expect(String(err), "names the errno").toContain("errno=22");
    } finally {
      await new Promise((r) => server.close(r));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

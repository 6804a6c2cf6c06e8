/**
 * Reading and changing a userspace WireGuard device (wireguard-go) through its UAPI socket
 * (`/var/run/wireguard/<name>.sock`, the cross-platform protocol `wg` itself speaks to it):
 * `get=1` answered with `key=value` lines, `set=1` with its lines answered by `errno=0`. The same
 * facts as `wg show <name> dump` and the same changes as `wg set`, without spawning a process: the
 * agent reads its peers every second (nat/manager.ts) and at every heartbeat, and on a small host a
 * fork+exec of `wg` costs more CPU than everything else the idle agent does (test/bench/README.md,
 * agent.ts); at start every peer set is a `wg set` less. A kernel device has no socket: `wg` is used there.
 */
import { connect } from "node:net";
import { join } from "node:path";
import { derivePublicKey } from "./keys.js";
import type { ActualPeer, DeviceDump } from "./dump.js";
import { OutputParseError, UapiError } from "./errors.js";
import type { PeerChange } from "./peers.js";

/** Bound on one UAPI exchange (wireguard-go answers within microseconds). */
const UAPI_TIMEOUT_MS = 2000;
/** Bound on an answer's size (~300 bytes per peer; ample for tens of thousands of peers). */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024;

export const uapiSocketPath = (dir: string, name: string): string => join(dir, `${name}.sock`);

/** Whether the bytes received so far end with "\n\n" (the two may arrive in different chunks; chunks are never empty). */
function endsWithBlankLine(chunks: readonly Buffer[]): boolean {
  const last = chunks[chunks.length - 1]!;
  if (last[last.length - 1] !== 0x0a) return false;
  if (last.length >= 2) return last[last.length - 2] === 0x0a;
  const before = chunks[chunks.length - 2];
  return before !== undefined && before[before.length - 1] === 0x0a;
}

/** Sends `get=1` to a UAPI socket and resolves with the whole answer (ends with a blank line). */
export function uapiGet(socketPath: string): Promise<Buffer> {
  return uapiExchange(socketPath, "get=1\n\n");
}

/**
 * Sends a `set=1` request of these `key=value` lines and resolves once the device answers
 * `errno=0`; any other answer is a UapiError (the device applies a request's lines in order and
 * stops at the first it refuses, as it does for `wg set`).
 */
export async function uapiSet(socketPath: string, lines: readonly string[]): Promise<void> {
  const answer = (await uapiExchange(socketPath, `set=1\n${lines.map((l) => `${l}\n`).join("")}\n`)).toString("latin1").trim();
  if (answer !== "errno=0") throw new UapiError(`UAPI ${socketPath}: the device refused the change (${answer.slice(0, 100)})`);
}

/**
 * The `set=1` lines for peer changes: what `wg set <name> peer …` sends a userspace device for the
 * same changes (wireguard-tools' ipc-uapi.h): keys in hex, `replace_allowed_ips` before a peer's
 * complete set of allowed IPs, keepalive 0 for off.
 */
export function uapiPeerLines(changes: readonly PeerChange[]): string[] {
  const lines: string[] = [];
  const allowed = (ips: readonly string[]) => ["replace_allowed_ips=true", ...ips.map((ip) => `allowed_ip=${ip}`)];
  for (const c of changes) {
    switch (c.kind) {
      case "remove":
        lines.push(`public_key=${keyHex(c.publicKey)}`, "remove=true");
        break;
      case "add":
        lines.push(`public_key=${keyHex(c.peer.publicKey)}`);
        if (c.peer.endpoint !== undefined) lines.push(`endpoint=${c.peer.endpoint}`);
        if (c.peer.persistentKeepalive !== undefined && c.peer.persistentKeepalive !== 0) lines.push(`persistent_keepalive_interval=${c.peer.persistentKeepalive}`);
        lines.push(...allowed(c.peer.allowedIps));
        break;
      case "update":
        lines.push(`public_key=${keyHex(c.publicKey)}`);
        if (c.endpoint !== undefined) lines.push(`endpoint=${c.endpoint}`);
        if (c.persistentKeepalive !== undefined) lines.push(`persistent_keepalive_interval=${c.persistentKeepalive}`);
        if (c.allowedIps !== undefined) lines.push(...allowed(c.allowedIps));
        break;
    }
  }
  return lines;
}

/** A base64 key (validated by the diff) in the hex the UAPI speaks. */
function keyHex(b64: string): string {
  const bytes = Buffer.from(b64, "base64");
  if (bytes.length !== 32) throw new UapiError(`UAPI: ${JSON.stringify(b64)} is not a 32-byte key`);
  return bytes.toString("hex");
}

/** One request on a UAPI socket; resolves with the whole answer (it ends with a blank line). */
function uapiExchange(socketPath: string, request: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const socket = connect(socketPath);
    const fail = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    socket.setTimeout(UAPI_TIMEOUT_MS, () => fail(new Error(`UAPI ${socketPath}: no answer within ${UAPI_TIMEOUT_MS} ms`)));
    socket.on("error", fail);
    socket.on("data", (b: Buffer) => {
      chunks.push(b);
      size += b.length;
      if (size > MAX_ANSWER_BYTES) return fail(new Error(`UAPI ${socketPath}: answer larger than ${MAX_ANSWER_BYTES} bytes`));
      // The answer ends with "errno=N\n\n"; the device then keeps the connection open for the next request.
      if (endsWithBlankLine(chunks)) {
        socket.end();
        resolve(Buffer.concat(chunks, size));
      }
    });
    socket.on("end", () => fail(new Error(`UAPI ${socketPath}: connection closed before the answer ended`)));
    socket.write(request);
  });
}

/** Keys seen, hex → base64: the same peers come back every read, and converting each one every time was most of a read's cost. */
const base64Of = new Map<string, string>();
const MAX_CACHED_KEYS = 65_536;

const hexKey = (v: string, line: number): string => {
  const known = base64Of.get(v);
  if (known !== undefined) return known;
  if (!/^[0-9a-f]{64}$/i.test(v)) throw new OutputParseError(`UAPI (${line}): not a 32-byte hex key`);
  if (base64Of.size >= MAX_CACHED_KEYS) base64Of.clear();
  const b64 = Buffer.from(v, "hex").toString("base64");
  base64Of.set(v, b64);
  return b64;
};

function int(v: string, field: string, line: number): number {
  if (!/^\d+$/.test(v)) throw new OutputParseError(`UAPI (${line}): ${field} is not a number: ${JSON.stringify(v)}`);
  return Number(v);
}

/** The device's private key: converted each read, never cached beside the peers' public keys. */
const secretKey = (v: string, line: number): string => {
  if (!/^[0-9a-f]{64}$/i.test(v)) throw new OutputParseError(`UAPI (${line}): not a 32-byte hex key`);
  return Buffer.from(v, "hex").toString("base64");
};

/** The private key seen last and its public key: deriving one per read would cost more than the read. */
let derived: { privateKey: string; publicKey: string } | undefined;
const publicKeyOf = (privateKey: string): string => {
  if (derived?.privateKey !== privateKey) derived = { privateKey, publicKey: derivePublicKey(privateKey) };
  return derived.publicKey;
};

/**
 * Each peer of the last answer by its key (hex, as in the answer), with the bytes of its block: a
 * block unchanged since is neither decoded nor parsed again.
 */
export interface UapiPeerMemo {
  peers: Map<string, { bytes: Buffer; peer: Readonly<ActualPeer> }>;
}

const PUBLIC_KEY = "public_key=";
const NEXT_PEER = "\npublic_key=";

/**
 * Parses the answer to `get=1` into what `wg show <name> dump` gives (dump.ts): keys in base64,
 * no handshake for 0, no keepalive for 0, no fwmark for 0, and the device's public key derived from
 * its private key (`wg` does the same). A non-zero `errno` is an error. With `memo` (kept by the
 * caller from one read to the next) a peer whose lines are the same as in the last answer is that
 * answer's object again (frozen: peers are read, never changed): most peers of an idle device do
 * not change from one second to the next, and the answer is never decoded as a whole. Pure but for
 * the memo and one-entry caches.
 */
export function parseUapiGet(answer: string | Buffer, memo?: UapiPeerMemo): DeviceDump {
  const buf = typeof answer === "string" ? Buffer.from(answer, "utf8") : answer;
  const errnoAt = buf.lastIndexOf("errno=");
  if (errnoAt < 0 || (errnoAt > 0 && buf[errnoAt - 1] !== 0x0a)) throw new OutputParseError("UAPI: answer without errno (cut short?)");
  const errno = int(buf.toString("latin1", errnoAt + 6).trim(), "errno", -1);
  if (errno !== 0) throw new OutputParseError(`UAPI: the device answered errno=${errno}`);
  const first = buf.indexOf(PUBLIC_KEY) === 0 ? 0 : buf.indexOf(NEXT_PEER);
  const headerEnd = first < 0 || first >= errnoAt ? errnoAt : first === 0 ? 0 : first + 1;
  const device = parseHeader(buf.toString("utf8", 0, headerEnd));
  const seen: UapiPeerMemo["peers"] | undefined = memo ? new Map() : undefined;
  for (let at = headerEnd, n = 1; at < errnoAt; n++) {
    const next = buf.indexOf(NEXT_PEER, at);
    const end = next < 0 || next >= errnoAt ? errnoAt : next + 1;
    const bytes = buf.subarray(at, end);
    const keyHex = buf.toString("latin1", at + PUBLIC_KEY.length, Math.min(end, at + PUBLIC_KEY.length + 64));
    const known = memo?.peers.get(keyHex);
    const same = known !== undefined && known.bytes.equals(bytes);
    const peer = same ? known.peer : Object.freeze(parsePeer(bytes.toString("utf8"), n));
    seen?.set(keyHex, same ? known : { bytes: Buffer.from(bytes), peer }); // a copy: a view would keep the whole answer
    device.peers.push(peer as ActualPeer);
    at = end;
  }
  if (memo && seen) memo.peers = seen;
  if (device.privateKey !== undefined) device.publicKey = publicKeyOf(device.privateKey);
  return device;
}

/** The device's lines (before the first peer). */
function parseHeader(text: string): DeviceDump {
  const device: DeviceDump = { privateKey: undefined, publicKey: undefined, listenPort: 0, fwmark: undefined, peers: [] };
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const [key, value] = keyValue(lines[i] as string, i + 1);
    if (key === "private_key") device.privateKey = secretKey(value, i + 1);
    else if (key === "listen_port") device.listenPort = int(value, "listen_port", i + 1);
    else if (key === "fwmark") device.fwmark = int(value, "fwmark", i + 1) || undefined;
  }
  return device;
}

/** One peer's lines, from its `public_key` on (`n`: the peer's place in the answer, for errors). */
function parsePeer(text: string, n: number): ActualPeer {
  const lines = text.split("\n");
  const [, hex] = keyValue(lines[0] as string, n);
  const peer: ActualPeer = { publicKey: hexKey(hex, n), allowedIps: [], rxBytes: 0, txBytes: 0 };
  const where = `peer ${n}`;
  for (let i = 1; i < lines.length; i++) {
    const [key, value] = keyValue(lines[i] as string, n);
    switch (key) {
      case "":
        break;
      case "endpoint":
        peer.endpoint = value;
        break;
      case "allowed_ip":
        peer.allowedIps.push(value);
        break;
      case "last_handshake_time_sec": {
        const seconds = int(value, `${where} last_handshake_time_sec`, n);
        if (seconds > 0) peer.latestHandshake = new Date(seconds * 1000);
        break;
      }
      case "rx_bytes":
        peer.rxBytes = int(value, `${where} rx_bytes`, n);
        break;
      case "tx_bytes":
        peer.txBytes = int(value, `${where} tx_bytes`, n);
        break;
      case "persistent_keepalive_interval": {
        const k = int(value, `${where} persistent_keepalive_interval`, n);
        if (k > 0) peer.persistentKeepalive = k;
        break;
      }
      default: // preshared_key, protocol_version, last_handshake_time_nsec: not in the dump's model
    }
  }
  return peer;
}

/** A `key=value` line split; an empty line is ["", ""]. */
function keyValue(line: string, n: number): [string, string] {
  if (line === "") return ["", ""];
  const eq = line.indexOf("=");
  if (eq <= 0) throw new OutputParseError(`UAPI (${n}): expected key=value, got ${JSON.stringify(line.slice(0, 80))}`);
  return [line.slice(0, eq), line.slice(eq + 1)];
}

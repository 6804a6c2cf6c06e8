/**
 * Parser for `wg show <iface> dump`: tab-separated, first line the interface
 * (private-key, public-key, listen-port, fwmark), then one line per peer (public-key,
 * preshared-key, endpoint, allowed-ips, latest-handshake, rx, tx, persistent-keepalive).
 * "(none)" and "off" become absent fields; a handshake time of 0 means never.
 */
import { OutputParseError } from "./errors.js";

/** One peer as WireGuard has it (a line of the dump). */
export interface ActualPeer {
  publicKey: string;
  endpoint?: string;
  allowedIps: string[];
  persistentKeepalive?: number;
  latestHandshake?: Date;
  rxBytes: number;
  txBytes: number;
}

export interface DeviceDump {
  /** Secret. Kept only to compare against the desired key; never log or return it. */
  privateKey: string | undefined;
  publicKey: string | undefined;
  listenPort: number;
  fwmark: number | undefined;
  peers: ActualPeer[];
}

const none = (v: string): string | undefined => (v === "(none)" || v === "" ? undefined : v);

function int(v: string, field: string, line: number): number {
  if (!/^\d+$/.test(v)) throw new OutputParseError(`wg show dump line ${line}: ${field} is not a number: ${JSON.stringify(v)}`);
  return Number(v);
}

/** Parses the output of `wg show <iface> dump` (single interface form, no ifname column). */
export function parseDump(text: string): DeviceDump {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const head = lines[0];
  if (head === undefined) throw new OutputParseError("wg show dump: empty output");
  const h = head.split("\t");
  const [privateKey = "", publicKey = "", listenPort = "", fwmark = ""] = h;
  if (h.length !== 4) {
    throw new OutputParseError(`wg show dump line 1: expected 4 fields, got ${h.length} (was "wg show all dump" used?)`);
  }
  const peers = lines.slice(1).map((line, i) => parsePeerLine(line, i + 2));
  return {
    privateKey: none(privateKey),
    publicKey: none(publicKey),
    listenPort: int(listenPort, "listen-port", 1),
    fwmark: parseFwmark(fwmark),
    peers,
  };
}

// wg prints the fwmark as "off" or in hex ("0x1234").
function parseFwmark(v: string): number | undefined {
  if (v === "off") return undefined;
  if (/^0x[0-9a-f]+$/i.test(v)) return parseInt(v.slice(2), 16);
  return int(v, "fwmark", 1);
}

function parsePeerLine(line: string, n: number): ActualPeer {
  const f = line.split("\t");
  if (f.length !== 8) throw new OutputParseError(`wg show dump line ${n}: expected 8 fields, got ${f.length}`);
  const [publicKey = "", , endpoint = "", allowedIps = "", handshake = "", rx = "", tx = "", keepalive = ""] = f;
  const seconds = int(handshake, "latest-handshake", n);
  const peer: ActualPeer = {
    publicKey,
    allowedIps: none(allowedIps)?.split(",") ?? [],
    rxBytes: int(rx, "transfer-rx", n),
    txBytes: int(tx, "transfer-tx", n),
  };
  const ep = none(endpoint);
  if (ep !== undefined) peer.endpoint = ep;
  if (seconds > 0) peer.latestHandshake = new Date(seconds * 1000);
  if (keepalive !== "off") peer.persistentKeepalive = int(keepalive, "persistent-keepalive", n);
  return peer;
}

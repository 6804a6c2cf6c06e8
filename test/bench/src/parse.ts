/**
 * Parsers for what the benchmark's tools print: `ping` (iputils), `iperf3 -J` and the
 * WireGuard UAPI `get=1` dump (what `wg show` itself reads from wireguard-go). Pure, so they are
 * unit-tested without root.
 */

export interface PingResult {
  /** Round-trip time of every reply, in ms, in the order received. */
  samplesMs: number[];
  transmitted: number;
  received: number;
}

/** Parses iputils `ping -n` output: one `time=… ms` per reply plus the packets summary line. */
export function parsePing(stdout: string): PingResult {
  const samplesMs: number[] = [];
  for (const m of stdout.matchAll(/\bicmp_seq=\d+ .*?\btime[=<]([\d.]+) ms/g)) samplesMs.push(Number(m[1]));
  const summary = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(stdout);
  return {
    samplesMs,
    transmitted: summary ? Number(summary[1]) : samplesMs.length,
    received: summary ? Number(summary[2]) : samplesMs.length,
  };
}

export interface IperfResult {
  /** What the receiver counted, bits per second: the throughput figure. */
  receivedBitsPerSecond: number;
  sentBitsPerSecond: number;
  retransmits: number | null;
  seconds: number;
  /** Per-interval (1 s) throughput seen by the client, bits per second. */
  intervalsBitsPerSecond: number[];
}

/** Thrown when iperf3 reported an error in its JSON (e.g. "the server is busy"). */
export class IperfReportedError extends Error {
  override name = "IperfReportedError";
}

/** Parses `iperf3 -c … -J` output (TCP). Throws IperfReportedError or SyntaxError. */
export function parseIperfJson(stdout: string): IperfResult {
  const doc = JSON.parse(stdout) as {
    error?: string;
    intervals?: { sum?: { bits_per_second?: number } }[];
    end?: {
      sum_sent?: { bits_per_second?: number; retransmits?: number; seconds?: number };
      sum_received?: { bits_per_second?: number; seconds?: number };
    };
  };
  if (doc.error) throw new IperfReportedError(`iperf3: ${doc.error}`);
  const received = doc.end?.sum_received?.bits_per_second;
  const sent = doc.end?.sum_sent?.bits_per_second;
  if (typeof received !== "number" || typeof sent !== "number") throw new IperfReportedError("iperf3: no end.sum_received/sum_sent in its JSON");
  return {
    receivedBitsPerSecond: received,
    sentBitsPerSecond: sent,
    retransmits: typeof doc.end?.sum_sent?.retransmits === "number" ? doc.end.sum_sent.retransmits : null,
    seconds: doc.end?.sum_received?.seconds ?? doc.end?.sum_sent?.seconds ?? Number.NaN,
    intervalsBitsPerSecond: (doc.intervals ?? []).map((i) => i.sum?.bits_per_second ?? Number.NaN),
  };
}

export interface UapiPeer {
  /** Hex, as the UAPI prints it (`wg show` prints base64). */
  publicKeyHex: string;
  endpoint: string | undefined;
  /** Latest handshake as epoch milliseconds (ns precision kept as a fraction); 0 = never. */
  lastHandshakeMs: number;
}

export interface UapiDevice {
  listenPort: number | undefined;
  peers: UapiPeer[];
  /** The `errno=` the device answered with (0 = fine). */
  errno: number;
}

/** Parses the reply to a UAPI `get=1` request (key=value lines; `public_key=` starts a peer). */
export function parseUapiGet(text: string): UapiDevice {
  const device: UapiDevice = { listenPort: undefined, peers: [], errno: Number.NaN };
  let peer: { publicKeyHex: string; endpoint: string | undefined; sec: number; nsec: number } | undefined;
  const flush = () => {
    if (peer) device.peers.push({ publicKeyHex: peer.publicKeyHex, endpoint: peer.endpoint, lastHandshakeMs: peer.sec * 1000 + peer.nsec / 1e6 });
    peer = undefined;
  };
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === "public_key") {
      flush();
      peer = { publicKeyHex: value, endpoint: undefined, sec: 0, nsec: 0 };
    } else if (key === "errno") {
      flush();
      device.errno = Number(value);
    } else if (peer) {
      if (key === "endpoint") peer.endpoint = value;
      else if (key === "last_handshake_time_sec") peer.sec = Number(value);
      else if (key === "last_handshake_time_nsec") peer.nsec = Number(value);
    } else if (key === "listen_port") {
      device.listenPort = Number(value);
    }
  }
  flush();
  return device;
}

/** The first line of `wireguard-go --version`, e.g. "wireguard-go v0.0.20220316" → "v0.0.20220316". */
export function parseWireguardGoVersion(stdout: string): string | null {
  return /wireguard-go\s+(\S+)/.exec(stdout)?.[1] ?? null;
}

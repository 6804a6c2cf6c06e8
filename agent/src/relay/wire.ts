/**
 * The shape of a WireGuard datagram (pure), so a relay forwards WireGuard and nothing else:
 * a message type 1-4 followed by three zero bytes, and the length of that message type —
 * handshake initiation 148 bytes, response 92, cookie reply 64, transport data 32 or more in
 * 16-byte steps (16-byte header, padded payload, 16-byte tag). The relay cannot decrypt any of it.
 */
export type WireGuardMessage = "initiation" | "response" | "cookie" | "data";

const FIXED: Record<number, [WireGuardMessage, number]> = { 1: ["initiation", 148], 2: ["response", 92], 3: ["cookie", 64] };

export function wireGuardMessage(buf: Uint8Array): WireGuardMessage | undefined {
  if (buf.length < 32 || buf[1] !== 0 || buf[2] !== 0 || buf[3] !== 0) return undefined;
  const type = buf[0]!;
  if (type === 4) return (buf.length - 32) % 16 === 0 ? "data" : undefined;
  const fixed = FIXED[type];
  return fixed && buf.length === fixed[1] ? fixed[0] : undefined;
}

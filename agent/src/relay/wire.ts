/**
 * The shape of a WireGuard datagram (pure), so a relay forwards WireGuard and nothing else:
 * a message type 1-4 followed by three zero bytes, and the length of that message type —
 * handshake initiation 148 bytes, response 92, cookie reply 64, transport data 32 or more
 * (16-byte header, payload, 16-byte tag). The payload is padded to 16 bytes only up to the
 * sender's interface MTU (wireguard-go and the kernel pad to min(16-byte multiple, MTU)), so a
 * full-size packet of a tunnel whose MTU is not a multiple of 16 (1420, 1300) has any length:
 * the relay cannot know the sender's MTU and does not check steps. It cannot decrypt any of it.
 */
export type WireGuardMessage = "initiation" | "response" | "cookie" | "data";

const FIXED: Record<number, [WireGuardMessage, number]> = { 1: ["initiation", 148], 2: ["response", 92], 3: ["cookie", 64] };

export function wireGuardMessage(buf: Uint8Array): WireGuardMessage | undefined {
  if (buf.length < 32 || buf[1] !== 0 || buf[2] !== 0 || buf[3] !== 0) return undefined;
  const type = buf[0]!;
  if (type === 4) return "data";
  const fixed = FIXED[type];
  return fixed && buf.length === fixed[1] ? fixed[0] : undefined;
}

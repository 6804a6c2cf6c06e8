/**
 * Tunnel warm-up: WireGuard only handshakes when traffic needs the tunnel, so
 * after a peer is added (or its endpoint changes) the agent sends one small
 * UDP datagram to the peer's overlay address (discard port 9). The datagram
 * travels inside the tunnel and makes WireGuard handshake at once, so the mesh
 * is up before an application needs it. Only overlay addresses are targeted.
 */
import { createSocket } from "node:dgram";

export const DISCARD_PORT = 9;

export async function warmUp(overlayAddresses: readonly string[]): Promise<void> {
  if (overlayAddresses.length === 0) return;
  const socket = createSocket("udp4");
  try {
    await Promise.all(
      overlayAddresses.map(
        (address) => new Promise<void>((resolve) => socket.send(Buffer.from("weft-warmup"), DISCARD_PORT, address, () => resolve())),
      ),
    );
  } finally {
    socket.close();
  }
}

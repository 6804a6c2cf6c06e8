/** The relay forwards WireGuard datagrams between the two sides of a session over loopback UDP. */
import { createSocket, type Socket } from "node:dgram";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { RelayServer } from "./server.js";

const sockets: Socket[] = [];
const relays: RelayServer[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
  for (const r of relays.splice(0)) r.close();
});

async function side(): Promise<{ socket: Socket; port: number; got: Buffer[] }> {
  const socket = createSocket("udp4");
  sockets.push(socket);
  const got: Buffer[] = [];
  socket.on("message", (m) => got.push(m));
  await new Promise<void>((r) => socket.bind(0, "127.0.0.1", r));
  return { socket, port: socket.address().port, got };
}

async function freePorts(n: number): Promise<number[]> {
  const taken = await Promise.all(Array.from({ length: n }, () => side()));
  const ports = taken.map((t) => t.port);
  for (const t of taken) t.socket.close();
  sockets.splice(0);
  return ports;
}

const wg = (type: number, length: number, fill = 0) => {
  const b = Buffer.alloc(length, fill);
  b[0] = type;
  b[1] = b[2] = b[3] = 0;
  return b;
};
const send = (s: Socket, msg: Buffer, port: number) => new Promise<void>((r) => s.send(msg, port, "127.0.0.1", () => r()));
const settle = () => new Promise((r) => setTimeout(r, 100));

describe("relay/server", () => {
  it("relay - each side sends to its own port and hears the other from it; nothing before both are known", async () => {
    const [pa, pb] = await freePorts(2);
    const relay = new RelayServer(pino({ level: "silent" }), "127.0.0.1");
    relays.push(relay);
    await relay.apply([{ id: "a-b", ports: [pa!, pb!], nodes: ["n-0000000000000001", "n-0000000000000002"] }]);
    const a = await side();
    const b = await side();
    await send(a.socket, wg(1, 148, 7), pa!);
    await settle();
    expect(b.got.length, "b before the relay heard from b").toBe(0);
    await send(b.socket, wg(2, 92, 8), pb!);
    await settle();
    expect(a.got.map((m) => m[0]), "a got b's response").toEqual([2]);
    await send(a.socket, wg(4, 64, 9), pa!);
    await settle();
    expect(b.got.map((m) => m.length), "b got a's data").toEqual([64]);
    expect(b.got[0]!.equals(wg(4, 64, 9)), "forwarded unchanged").toBe(true);
    const st = relay.status();
    expect({ sessions: st.sessions, packets: st.packets, dropped: st.dropped }, "status").toEqual({ sessions: 1, packets: 2, dropped: 1 });
  });

  it("relay - datagrams that are not WireGuard are dropped; a side that moves is followed", async () => {
    const [pa, pb] = await freePorts(2);
    const relay = new RelayServer(pino({ level: "silent" }), "127.0.0.1");
    relays.push(relay);
    await relay.apply([{ id: "a-b", ports: [pa!, pb!], nodes: ["n-0000000000000001", "n-0000000000000002"] }]);
    const a = await side();
    const b = await side();
    await send(a.socket, wg(4, 32), pa!);
    await send(b.socket, wg(4, 32), pb!);
    await send(b.socket, Buffer.from("GET / HTTP/1.1\r\n\r\n"), pb!);
    await settle();
    expect(a.got.length, "a got only the WireGuard datagram").toBe(1);
    const a2 = await side(); // a's NAT gave it a new port
    await send(a2.socket, wg(4, 48), pa!);
    await send(b.socket, wg(4, 80), pb!);
    await settle();
    expect(a2.got.map((m) => m.length), "the moved side hears b").toEqual([80]);
  });

  it("relay - sessions no longer in the plan close; a port in use is reported, not fatal", async () => {
    const [pa, pb, pc] = await freePorts(3);
    const relay = new RelayServer(pino({ level: "silent" }), "127.0.0.1");
    relays.push(relay);
    await relay.apply([{ id: "a-b", ports: [pa!, pb!], nodes: ["n-0000000000000001", "n-0000000000000002"] }]);
    await relay.apply([]);
    expect(relay.status().sessions, "closed").toBe(0);
    const blocker = await side();
    await relay.apply([{ id: "c-d", ports: [pc!, blocker.port], nodes: ["n-0000000000000003", "n-0000000000000004"] }]);
    const st = relay.status();
    expect(st.sessions, "sessions open").toBe(0);
    expect(st.failed.map((f) => f.id), "failed sessions").toEqual(["c-d"]);
    // The first port was released again: a session on it opens.
    await relay.apply([{ id: "e-f", ports: [pc!, pa!], nodes: ["n-0000000000000005", "n-0000000000000006"] }]);
    expect(relay.status().sessions, "the freed port is usable").toBe(1);
  });
});

/** Listening and closing for every simulator's servers, and the base URL a client uses to reach one. */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

export function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** Stops listening and drops open keep-alive connections, so close() does not wait on idle clients. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** `http://127.0.0.1:port` for a bound address (a wildcard bind is reached on loopback). */
export function baseUrl(scheme: "http" | "https", a: AddressInfo): string {
  const host = a.address === "0.0.0.0" ? "127.0.0.1" : a.address === "::" ? "[::1]" : a.family === "IPv6" ? `[${a.address}]` : a.address;
  return `${scheme}://${host}:${a.port}`;
}

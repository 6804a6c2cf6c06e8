/**
 * The addresses this agent reaches its controller at: the API URL's host and every NATS server's
 * host, resolved when they are names. No site route may cover one (peers/site-routes.ts): the
 * control connection must never be pulled into a tunnel towards a site.
 */
import { lookup } from "node:dns/promises";
import { parseIpv4 } from "@weft/protocol";

export interface ControllerAddress {
  address: string;
  /** `API` or `NATS`. */
  what: string;
}

/** IPv4 addresses of the controller's API (`controllerUrl`) and NATS (`natsServers`); names resolved, failures skipped. */
export async function controllerAddresses(controllerUrl: string, natsServers: readonly string[]): Promise<ControllerAddress[]> {
  const out = new Map<string, string>();
  const add = async (url: string, what: string) => {
    let host: string;
    try {
      host = new URL(url.includes("://") ? url : `nats://${url}`).hostname.replace(/^\[|\]$/g, "");
    } catch {
      return;
    }
    const addresses = parseIpv4(host) !== undefined ? [host] : await lookup(host, { all: true, family: 4 }).then((r) => r.map((a) => a.address), () => []);
    for (const a of addresses) out.set(a, out.has(a) && out.get(a) !== what ? "API and NATS" : what);
  };
  await add(controllerUrl, "API");
  for (const s of natsServers) await add(s, "NATS");
  return [...out].map(([address, what]) => ({ address, what }));
}

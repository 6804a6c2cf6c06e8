/**
 * ToLeader without a cluster: what is forwarded and what is refused. The leader's side — a real
 * forward between two controllers — is in leader.test.ts.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { z } from "zod";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NotLeaderError, StoreUnavailableError } from "../errors.js";
import { FORWARDED_BY_HEADER, ToLeader } from "./forward.js";

const silent = pino({ level: "silent" });
const refused = () => Promise.reject(new NotLeaderError("not the leader; the leader is ctl-2"));

describe("forward to the leader", () => {
  let server: Server;
  let url = "";
  const seen: { authorization?: string; forwardedBy?: string }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push({ authorization: req.headers.authorization, forwardedBy: req.headers[FORWARDED_BY_HEADER] as string | undefined });
      res.writeHead(req.headers.authorization === "Bearer shared-token" ? 200 : 401, { "content-type": "application/json" });
      res.end(req.headers.authorization === "Bearer shared-token" ? '{"ran":"on the leader"}' : '{"error":"unauthorized","message":"admin token required"}');
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const toLeader = (api: string | undefined, adminToken = "shared-token") =>
    new ToLeader({ election: { id: "ctl-1", leader: () => ({ holder: "ctl-2", term: 3, api }) }, adminToken, caPem: undefined, log: silent });
  const viaClient = (leader: Parameters<Parameters<ToLeader["orForward"]>[3]>[0]) => leader.call("POST", "/v1/inventory/sync", z.unknown(), {});

  it("forward - refused here: asked of the leader with the shared token and the forwarding controller named; its answer returned", async () => {
    seen.length = 0;
    expect(await toLeader(url).orForward("sync", undefined, refused, viaClient)).toEqual({ ran: "on the leader" });
    expect(seen, "one request to the leader").toEqual([{ authorization: "Bearer shared-token", forwardedBy: "ctl-1" }]);
  });

  it("forward - run here when this controller leads; other errors and already forwarded requests are not forwarded", async () => {
    seen.length = 0;
    expect(await toLeader(url).orForward("sync", undefined, async () => "here", viaClient)).toBe("here");
    const other = new StoreUnavailableError("store down");
    await expect(toLeader(url).orForward("sync", undefined, () => Promise.reject(other), viaClient)).rejects.toBe(other);
    await expect(toLeader(url).orForward("sync", "ctl-3", refused, viaClient)).rejects.toThrow(/^not the leader; the leader is ctl-2$/);
    await expect(toLeader(undefined).orForward("sync", undefined, refused, viaClient), "no API in the lease").rejects.toThrow(/^not the leader; the leader is ctl-2$/);
    expect(seen, "nothing asked of the leader").toEqual([]);
  });

  it("forward - a leader that cannot be asked (unreachable, another admin token): this controller's refusal stands, with why", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const unreachable = toLeader(`http://127.0.0.1:${port}`).orForward("sync", undefined, refused, viaClient);
    await expect(unreachable).rejects.toBeInstanceOf(NotLeaderError);
    await expect(unreachable).rejects.toThrow(/^not the leader; the leader is ctl-2; asking it failed: .*cannot reach the controller/);
    const otherToken = toLeader(url, "not-the-leaders-token").orForward("sync", undefined, refused, viaClient);
    await expect(otherToken).rejects.toBeInstanceOf(NotLeaderError);
    await expect(otherToken).rejects.toThrow(/asking it failed: .*admin token required/);
    // A lease URL in plain HTTP while this controller's API (and CA) is HTTPS: refused by the client, not asked.
    const plain = new ToLeader({ election: { id: "ctl-1", leader: () => ({ holder: "ctl-2", term: 3, api: url }) }, adminToken: "shared-token", caPem: "-----BEGIN CERTIFICATE-----", log: silent });
    seen.length = 0;
    const mixed = plain.orForward("sync", undefined, refused, viaClient);
    await expect(mixed).rejects.toBeInstanceOf(NotLeaderError);
    await expect(mixed).rejects.toThrow(/asking it failed: .*a CA pin needs an https:\/\/ URL/);
    expect(seen, "nothing sent in clear text").toEqual([]);
  });
});

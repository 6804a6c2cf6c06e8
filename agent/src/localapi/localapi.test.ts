/**
 * The agent's local API: routes answer JSON over the unix socket, unknown routes and bad bodies get
 * the error shape, a handler's LocalApiError keeps its status, the socket is 0660 and is removed on close.
 */
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "@weft/protocol";
import type { Logger } from "pino";
import { callLocalApi, LocalApiCallError } from "./client.js";
import { groupId } from "./group.js";
import { LocalApi, LocalApiError } from "./server.js";

describe("agent/localapi", () => {
  let dir: string;
  let api: LocalApi;
  let sock: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "weft-localapi-"));
    sock = join(dir, "agent.sock");
    api = new LocalApi({ path: sock, log: silentLogger as unknown as Logger });
    api.route("POST", "/v1/echo", async (req) => ({ got: req.body }));
    api.route("GET", "/v1/refuse", async () => {
      throw new LocalApiError(403, "forbidden", "not for you");
    });
    await api.listen();
  });
  afterAll(async () => {
    await api.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("localapi - a route answers its JSON and the socket is 0660", async () => {
    expect(await callLocalApi(sock, "POST", "/v1/echo", { a: 1 })).toEqual({ got: { a: 1 } });
    expect((await stat(sock)).mode & 0o777, "socket mode").toBe(0o660);
  });

  it("localapi - unknown route, handler refusal and bad JSON keep the error shape", async () => {
    await expect(callLocalApi(sock, "GET", "/v1/nothing")).rejects.toMatchObject({ status: 404, code: "not_found" });
    await expect(callLocalApi(sock, "GET", "/v1/refuse")).rejects.toMatchObject({ status: 403, code: "forbidden", message: "not for you" });
    const bad = await fetchRaw(sock, "{not json");
    expect(bad, "bad JSON").toMatchObject({ status: 400 });
  });

  it("localapi - a missing socket says the agent is not running", async () => {
    const err = await callLocalApi(join(dir, "nope.sock"), "GET", "/v1/x").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LocalApiCallError);
    expect((err as Error).message).toContain("not running");
  });

  it("localapi - groupId reads the group's number, undefined when absent", async () => {
    const file = join(dir, "group");
    await writeFile(file, "root:x:0:\nweft:x:998:alice\nbad:x:notanumber:\n");
    expect(await groupId("weft", file)).toBe(998);
    expect(await groupId("bad", file)).toBeUndefined();
    expect(await groupId("nobody-here", file)).toBeUndefined();
    expect(await groupId("weft", join(dir, "missing"))).toBeUndefined();
  });

  it("localapi - a route cannot be registered twice; close removes the socket", async () => {
    expect(() => api.route("POST", "/v1/echo", async () => ({}))).toThrow("twice");
    const other = new LocalApi({ path: join(dir, "other.sock"), log: silentLogger as unknown as Logger });
    await other.listen();
    await other.close();
    await expect(stat(join(dir, "other.sock"))).rejects.toMatchObject({ code: "ENOENT" });
  });
});

async function fetchRaw(socketPath: string, body: string): Promise<{ status: number | undefined }> {
  const { request } = await import("node:http");
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method: "POST", path: "/v1/echo", headers: { "content-type": "application/json" } }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

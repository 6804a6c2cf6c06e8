/**
 * Route bodies validated by the server, on a real Fastify server with a table of its own: a body
 * that fails its route's schema, its screen or its check is a 400 in the API's error shape naming
 * each field, and the handler never runs; a good body reaches the handler parsed (defaults
 * applied, typed); the OpenAPI document describes the same schema.
 */
import { ApiError } from "@weft/protocol";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { z } from "zod";
import { ValidationError } from "../errors.js";
import { buildApiServer } from "./server.js";
import { openApiDocument, route } from "./routes.js";

const Thing = z
  .object({
    name: z.string().regex(/^[a-z]+$/, "must be lowercase letters"),
    sizes: z.array(z.number().int().positive()).default([1]),
    tags: z.record(z.string(), z.string()).optional(),
  })
  .strict();

const ran: unknown[] = [];
const routes = [
  route({
    method: "POST",
    path: "/things",
    summary: "make a thing",
    auth: "none",
    body: {
      schema: Thing,
      what: "thing",
      screen: (raw) => {
        if (raw !== null && typeof raw === "object" && "id" in raw) throw new ValidationError("id is assigned by the server", { details: [{ path: "id", message: "must not be set" }] });
      },
      check: (t) => (t.sizes.length > 3 ? [{ path: "sizes", message: "at most 3" }] : []),
    },
    response: Thing,
    status: 201,
    handler: async (ctx) => {
      expectTypeOf(ctx.body).toEqualTypeOf<z.infer<typeof Thing>>();
      ran.push(ctx.body);
      return ctx.body;
    },
  }),
  route({
    method: "POST",
    path: "/optional",
    summary: "all fields optional",
    auth: "none",
    body: { schema: z.object({ dryRun: z.boolean().default(false) }).strict(), what: "option request", emptyIsObject: true },
    response: z.unknown(),
    handler: async (ctx) => {
      ran.push(ctx.body);
      return ctx.body;
    },
  }),
];
const app = buildApiServer({ routes, adminToken: "t", log: pino({ level: "silent" }), version: "test" });

beforeAll(async () => {
  await app.ready();
});
afterAll(async () => {
  await app.close();
});

async function post(path: string, body?: unknown) {
  const res = await app.inject({
    method: "POST",
    url: path,
    ...(body === undefined ? {} : { payload: JSON.stringify(body), headers: { "content-type": "application/json" } }),
  });
  return { status: res.statusCode, body: res.json() as unknown };
}

describe("api body validation", () => {
  it("api body - a body failing its schema is 400 naming each field, and the handler never runs", async () => {
    const cases: [string, unknown, string[], RegExp][] = [
      ["bad field", { name: "Upper" }, ["name"], /^thing is invalid: name: must be lowercase letters$/],
      ["array element", { name: "ok", sizes: [1, -2] }, ["sizes[1]"], /sizes\[1\]: /],
      ["unknown field", { name: "ok", colour: "red" }, ["(body)"], /Unrecognized key/],
      ["not an object", "hello", ["(body)"], /^thing is invalid: \(body\): /],
      ["no body", undefined, ["(body)"], /^thing is invalid: \(body\): /],
      ["screened field", { name: "ok", id: "x" }, ["id"], /^id is assigned by the server$/],
      ["failed check", { name: "ok", sizes: [1, 2, 3, 4] }, ["sizes"], /^thing is invalid: sizes: at most 3$/],
    ];
    for (const [what, body, paths, message] of cases) {
      ran.length = 0;
      const res = await post("/things", body);
      expect(res.status, `${what}: status ${JSON.stringify(res.body)}`).toBe(400);
      const err = ApiError.parse(res.body);
      expect(err.error, `${what}: error code`).toBe("invalid_request");
      expect(err.message, `${what}: message`).toMatch(message);
      expect(err.details?.map((d) => d.path), `${what}: fields named`).toEqual(paths);
      expect(ran, `${what}: the handler ran`).toEqual([]);
    }
  });

  it("api body - a good body reaches the handler parsed, with defaults applied", async () => {
    ran.length = 0;
    const res = await post("/things", { name: "box" });
    expect([res.status, res.body], "answer").toEqual([201, { name: "box", sizes: [1] }]);
    expect(ran, "the handler got the parsed value").toEqual([{ name: "box", sizes: [1] }]);
  });

  it("api body - a route whose fields are all optional reads an absent body as {}", async () => {
    ran.length = 0;
    expect((await post("/optional")).status, "no body").toBe(200);
    expect((await post("/optional", { dryRun: true })).status, "a body").toBe(200);
    expect(ran, "parsed values").toEqual([{ dryRun: false }, { dryRun: true }]);
    const bad = await post("/optional", { dryRun: "yes" });
    expect([bad.status, (bad.body as ApiError).details?.map((d) => d.path)], "a bad one").toEqual([400, ["dryRun"]]);
  });

  it("api body - the OpenAPI document shows the schema the server parses with", () => {
    const doc = openApiDocument(routes, "test") as { paths: Record<string, Record<string, { requestBody?: { required: boolean; content: Record<string, { schema: { properties?: Record<string, unknown>; required?: string[] } }> } }>> };
    const things = doc.paths["/things"]?.post?.requestBody;
    expect(things?.required, "required").toBe(true);
    expect(Object.keys(things?.content["application/json"]?.schema.properties ?? {}).sort(), "properties").toEqual(["name", "sizes", "tags"]);
    expect(things?.content["application/json"]?.schema.required, "required fields (input side: sizes has a default)").toEqual(["name"]);
    expect(doc.paths["/optional"]?.post?.requestBody?.required, "a body that may be absent").toBe(false);
  });
});

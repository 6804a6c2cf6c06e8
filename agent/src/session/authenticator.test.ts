import { jwtAuthenticator } from "@nats-io/transport-node";
import { createUser } from "@nats-io/nkeys";
import { describe, expect, it } from "vitest";
import { agentAuthenticator } from "./authenticator.js";

describe("agent authenticator", () => {
  it("agent authenticator - sends exactly what nats.js's jwtAuthenticator sends", () => {
    const kp = createUser();
    const seed = kp.getSeed();
    let jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.first.sig";
    const ours = agentAuthenticator(() => jwt, seed);
    const theirs = jwtAuthenticator(() => jwt, seed);
    for (const nonce of ["Q2hhbGxlbmdl", "x".repeat(22), undefined]) {
      const got = JSON.stringify(ours(nonce));
      const want = JSON.stringify(theirs(nonce));
      expect(got, `nonce ${String(nonce)}: got ${got}, want ${want}`).toBe(want);
    }
    jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.renewed.sig";
    expect((ours("n") as { jwt?: string }).jwt, "the JWT is read on every connect (a renewed one is used)").toBe(jwt);
  });
});

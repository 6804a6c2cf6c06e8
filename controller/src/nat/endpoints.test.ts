/** Endpoint updates: which public endpoints are accepted, and how the node record changes. */
import type { NodeRecord } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { publicEndpointProblem, withPublicEndpoint } from "./endpoints.js";

describe("nat/endpoints", () => {
  it("endpoints - a public endpoint must be a unicast IPv4 ip:port outside loopback, link-local, multicast and reserved space", () => {
    expect(publicEndpointProblem("198.18.3.112:51820"), "fine").toBeUndefined();
    const bad: [string, string][] = [
      ["127.0.0.1:51820", "a loopback address"],
      ["169.254.1.1:51820", "a link-local address"],
      ["224.0.0.1:51820", "a multicast address"],
      ["255.255.255.255:51820", "a reserved or broadcast address"],
      ["0.0.0.0:51820", "the unspecified address"],
      ["0.1.2.3:51820", "in 0.0.0.0/8"],
      ["host:51820", "not an IPv4 ip:port"],
      ["198.18.3.112:0", "not an IPv4 ip:port"],
    ];
    for (const [e, want] of bad) expect(publicEndpointProblem(e), e).toBe(want);
  });

  it("endpoints - the node record takes the new public endpoint and drops reflexive ones; the same one changes nothing", () => {
    const node = { endpoints: { private: "10.30.0.12:51820", public: "198.18.3.12:51820", reflexive: ["1.2.3.4:5"], mapping: "endpoint-independent" } } as unknown as NodeRecord;
    expect(withPublicEndpoint(node, "198.18.3.112:51820")?.endpoints, "moved").toEqual({ private: "10.30.0.12:51820", public: "198.18.3.112:51820" });
    expect(withPublicEndpoint(node, "198.18.3.12:51820"), "unchanged").toBeUndefined();
  });
});

/** `weft whois` and `weft mesh` helpers: the text form strips control characters from tenant strings; the trust domain comes from the identities. */
import { describe, expect, it } from "vitest";
import { trustDomainOf } from "./mesh.js";
import { formatWhois, printable } from "./whois.js";

describe("cli whois", () => {
  it("cli whois - prints every field, and no terminal escape from a label", () => {
    const text = formatWhois({
      address: "100.80.2.1",
      port: 55842,
      node: { id: "n-0000000000000001", name: "aws-1", overlayAddress: "100.64.0.2" },
      workload: "web",
      spiffeId: "spiffe://weft.internal/ns/shop/sa/web",
      identity: 258,
      site: "aws",
      cloud: "aws",
      labels: { env: "prod", evil: "\u001b[2Jgone" },
    });
    expect(text).toContain("address:   100.80.2.1:55842\n");
    expect(text).toContain("workload:  web\n");
    expect(text).toContain("spiffe id: spiffe://weft.internal/ns/shop/sa/web\n");
    expect(text.includes("\u001b"), "an escape character in the output").toBe(false);
    expect(printable("a\u0007b\u009bc"), "C0 and C1 controls").toBe("a?b?c");
  });

  it("cli mesh - the trust domain is the identities' own, else weft.internal", () => {
    expect(trustDomainOf([undefined, "spiffe://example.org/ns/a/sa/b"])).toBe("example.org");
    expect(trustDomainOf([undefined])).toBe("weft.internal");
  });
});

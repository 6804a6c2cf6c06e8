import { describe, expect, it } from "vitest";
import { screenSiteRoute, type RouteScreen } from "./route-screen.js";

const screen: RouteScreen = {
  site: "gcp",
  reserved: [{ cidr: "100.64.0.0/16", what: "overlay.cidr" }],
  controllerAddresses: [{ address: "198.19.0.2", what: "API and NATS" }],
  endpoints: [
    { address: "198.18.3.11", node: "gcp-1", site: "gcp", kind: "public" },
    { address: "10.30.0.11", node: "gcp-1", site: "gcp", kind: "private" },
    { address: "10.10.0.11", node: "aws-1", site: "aws", kind: "private" },
  ],
  publicRoutes: (site) => (site === "gcp" ? ["203.0.113.0/24"] : []),
};
const reason = (cidr: string, s: RouteScreen = screen) => screenSiteRoute(cidr, [], s).reason;

describe("route screen", () => {
  it("route screen - a private route of the site passes, even over its own nodes' private endpoints", () => {
    expect(screenSiteRoute("10.30.0.0/16", [], screen), "the site's own LAN").toEqual({ reason: undefined, explicit: false });
  });

  it("route screen - routes that would hijack are held back, each with its reason", () => {
    expect(reason("128.0.0.0/1"), "half the internet, the controller's address in it").toBe("covers the controller's API and NATS address 198.19.0.2");
    expect(reason("1.0.0.0/8"), "public space").toMatch(/^outside private and CGNAT space; name it in the inventory config's sites\[gcp\]\.publicRoutes/);
    expect(reason("198.19.0.0/24"), "over the controller").toBe("covers the controller's API and NATS address 198.19.0.2");
    expect(reason("198.18.3.0/24"), "over a public endpoint").toBe("covers 198.18.3.11, the public tunnel endpoint of node gcp-1");
    expect(reason("10.10.0.0/24"), "over another site's private endpoint").toBe("covers 10.10.0.11, the private tunnel endpoint of node aws-1");
    expect(reason("100.64.0.0/10"), "over the overlay").toBe("overlaps overlay.cidr 100.64.0.0/16");
    expect(screenSiteRoute("10.30.0.0/16", ["10.30.0.0/16"], screen).reason, "a conflict").toMatch(/overlaps another network/);
    expect(reason("12.0.0.0/7"), "a public /7").toMatch(/^outside private/);
    expect(reason("10.0.0.0/7"), "wider than 10/8, over another site's endpoint").toMatch(/^covers 10.10.0.11/);
  });

  it("route screen - a public range is advertised only when named for that very site", () => {
    expect(screenSiteRoute("203.0.113.0/24", [], screen), "named for gcp").toEqual({ reason: undefined, explicit: true });
    expect(reason("203.0.113.0/25"), "a part of it is not the named CIDR").toMatch(/^outside private/);
    expect(reason("203.0.113.0/24", { ...screen, site: "aws" }), "named for another site").toMatch(/^outside private/);
  });
});

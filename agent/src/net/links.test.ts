/** What `ip -json link show dev NAME` says of an interface (pure parsing). */
import { describe, expect, it } from "vitest";
import { AgentError } from "../errors.js";
import { parseLinkState } from "./links.js";

describe("links", () => {
  it("links - the ifindex and whether the interface is administratively up; anything else is an error naming the interface", () => {
    const up = '[{"ifindex":7,"ifname":"weft-vxlan","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1450,"operstate":"UNKNOWN"}]';
    const down = '[{"ifindex":7,"ifname":"weft-vxlan","flags":["BROADCAST","MULTICAST"],"mtu":1450,"operstate":"DOWN"}]';
    expect(parseLinkState(up, "weft-vxlan"), "up").toEqual({ ifindex: 7, up: true });
    expect(parseLinkState(down, "weft-vxlan"), "down").toEqual({ ifindex: 7, up: false });
    expect(parseLinkState('[{"ifindex":3}]', "x"), "no flags").toEqual({ ifindex: 3, up: false });
    for (const bad of ["", "[]", "{}", '[{"ifindex":"7"}]', "not json"]) {
      expect(() => parseLinkState(bad, "weft-vxlan"), JSON.stringify(bad)).toThrow(AgentError);
      expect(() => parseLinkState(bad, "weft-vxlan"), JSON.stringify(bad)).toThrow(/weft-vxlan/);
    }
  });
});

/** Controller config: workload range defaults and the checks that keep node and workload ranges apart. */
import { describe, expect, it } from "vitest";
import { ControllerConfig } from "./config.js";

const messageOf = (input: unknown): string => {
  const r = ControllerConfig.safeParse(input);
  return r.success ? "(accepted)" : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
};

describe("controller config", () => {
  it("config - overlay defaults: workloads 100.80.0.0/12 in /24 prefixes, service VIPs 100.96.0.0/16, no plaintext sites, orphaned claims released after 10 min", () => {
    const c = ControllerConfig.parse({});
    expect(c.overlay, "overlay defaults").toEqual({ cidr: "100.64.0.0/16", workloadCidr: "100.80.0.0/12", workloadPrefixLength: 24, serviceCidr: "100.96.0.0/16", plaintextSites: [], orphanClaimGraceSeconds: 600 });
    expect(messageOf({ overlay: { orphanClaimGraceSeconds: 30 } }), "a grace shorter than a minute").toContain("overlay.orphanClaimGraceSeconds");
  });

  it("config - overlapping node and workload ranges, a prefix longer than the range, bad sites are refused with the field named", () => {
    expect(messageOf({ overlay: { workloadCidr: "100.64.128.0/17" } }), "overlap").toContain("overlay.workloadCidr: overlay.workloadCidr 100.64.128.0/17 overlaps overlay.cidr 100.64.0.0/16");
    expect(messageOf({ overlay: { cidr: "100.80.0.0/16" } }), "overlay.cidr inside the default workload range").toContain("overlaps overlay.cidr 100.80.0.0/16");
    expect(messageOf({ overlay: { workloadCidr: "10.0.0.0/24", workloadPrefixLength: 16 } }), "prefix shorter than the range").toContain("overlay.workloadPrefixLength: overlay.workloadPrefixLength /16 is shorter than overlay.workloadCidr 10.0.0.0/24");
    expect(messageOf({ overlay: { workloadPrefixLength: 31 } }), "prefix /31").toContain("overlay.workloadPrefixLength");
    expect(messageOf({ overlay: { plaintextSites: ["Site A"] } }), "site name").toContain("overlay.plaintextSites.0");
    expect(messageOf({ overlay: { workloadCidr: "10.0.0.0/8", workloadPrefixLength: 26, plaintextSites: ["aws-vpc-1"] } }), "a valid custom range").toBe("(accepted)");
  });
});

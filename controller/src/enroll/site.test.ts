import { describe, expect, it } from "vitest";
import { decideSite, siteVouched, type SiteVoucher } from "./site.js";

const key: SiteVoucher = { site: "aws", source: "join-key", what: "join key 0a1b2c3d4e5f" };
const network: SiteVoucher = { site: "aws", source: "network", what: "aws network vpc-1" };
const policy: SiteVoucher = { site: "gcp", source: "enrollment-policy", what: "enrollment policy gcp-web" };

describe("enroll site", () => {
  it("site - the vouched site wins: an agent naming none gets it, naming the same is fine, naming another is refused", () => {
    expect(decideSite(undefined, [key]), "no site asked").toEqual({ ok: true, site: "aws", source: "join-key" });
    expect(decideSite("aws", [key, network]), "agreeing vouchers").toEqual({ ok: true, site: "aws", source: "join-key" });
    const got = decideSite("onprem", [key]);
    expect(got.ok === false && [got.reason, got.message], "another site").toEqual(["site_mismatch", "the agent names site onprem, but join key 0a1b2c3d4e5f says aws; run the agent with --site aws or without --site"]);
  });

  it("site - vouchers that disagree refuse; with no voucher the agent's word is taken and marked as its own", () => {
    const conflict = decideSite(undefined, [network, policy]);
    expect(conflict.ok === false && conflict.reason, "conflict").toBe("site_conflict");
    expect(decideSite("lab", []), "nothing vouches").toEqual({ ok: true, site: "lab", source: "request" });
    const missing = decideSite(undefined, []);
    expect(missing.ok === false && missing.reason, "nothing at all").toBe("site_missing");
    expect([siteVouched({ siteSource: "network" }), siteVouched({ siteSource: "request" }), siteVouched({})], "vouched").toEqual([true, false, false]);
  });
});

import { describe, expect, it } from "vitest";
import { describeGrants, grantLabelIssues, mayHoldIdentity, parseGrants, workloadGrants } from "./grants.js";

const node = (labels: Record<string, string>, own = "spiffe://weft.internal/ns/infra/sa/host") => ({ labels, identity: { spiffeId: own } });
const id = (namespace: string, serviceAccount: string) => ({ namespace, serviceAccount });

describe("workload grants", () => {
  it("grants - a node holds its own identity and what its labels grant, nothing else", () => {
    const n = node({ "weft:workload-identities": "shop/web, shop/api billing/*" });
    expect(
      [mayHoldIdentity(n, id("infra", "host")), mayHoldIdentity(n, id("shop", "web")), mayHoldIdentity(n, id("shop", "api")), mayHoldIdentity(n, id("billing", "anything")), mayHoldIdentity(n, id("shop", "db")), mayHoldIdentity(n, id("infra", "other"))],
      "own, granted pairs, a namespace wildcard, an ungranted account, the own namespace's other account",
    ).toEqual([true, true, true, true, false, false]);
    expect(mayHoldIdentity(node({}), id("infra", "other")), "no grant: not even the own namespace").toBe(false);
    expect(mayHoldIdentity(node({ "weft:workload-identities": "*" }), id("any", "thing")), "*").toBe(true);
  });

  it("grants - instance tags grant too (GCP's ns_sa form), and the older namespaces label grants whole namespaces", () => {
    expect(mayHoldIdentity(node({ "cloud.tag.weft_workload-identities": "shop_web" }), id("shop", "web")), "GCP tag").toBe(true);
    expect(mayHoldIdentity(node({ "cloud.tag.weft:workload-identities": "shop/db" }), id("shop", "db")), "AWS/Azure tag").toBe(true);
    expect(mayHoldIdentity(node({ "weft:workload-namespaces": "shop,jobs" }), id("jobs", "cron")), "namespaces label").toBe(true);
    expect(workloadGrants({ "cloud.tag.weft:workload-identities": "shop/web, not a grant!, /x" }), "bad tag entries are ignored").toEqual([{ namespace: "shop", serviceAccount: "web" }]);
    expect(describeGrants(node({ "weft:workload-identities": "shop/web" })), "described").toBe("infra/host (its own), shop/web");
  });

  it("grants - a key's or policy's grant label is checked when it is created", () => {
    expect(grantLabelIssues({ "weft:workload-identities": "shop/web,shop/*" }), "good").toEqual([]);
    expect(grantLabelIssues({ "weft:workload-identities": "Shop/web" })[0]?.message, "bad namespace").toMatch(/not a grant: "Shop\/web"/);
    expect(grantLabelIssues({ "weft:workload-identities": " , " })[0]?.path, "empty").toBe("labels.weft:workload-identities");
    expect(parseGrants("a/b c_d *"), "parsed").toEqual({ grants: [{ namespace: "a", serviceAccount: "b" }, { namespace: "c", serviceAccount: "d" }, { namespace: "*", serviceAccount: "*" }], bad: [] });
  });
});

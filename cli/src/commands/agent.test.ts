import { describe, expect, it } from "vitest";
import { UsageError } from "../errors.js";
import { parseWorkloadFlag } from "./agent.js";

describe("weft agent --workload", () => {
  it("parses name=namespace/service-account@netns", () => {
    expect(parseWorkloadFlag("web=shop/web@wl-web")).toEqual({ name: "web", namespace: "shop", serviceAccount: "web", netns: "wl-web" });
  });

  it("names the expected format on anything else", () => {
    for (const bad of ["web", "web=shop@ns", "web=shop/web", "=shop/web@ns", "web=/web@ns"]) {
      expect(() => parseWorkloadFlag(bad), bad).toThrow(UsageError);
      expect(() => parseWorkloadFlag(bad), bad).toThrow(/<name>=<namespace>\/<service-account>@<netns>/);
    }
  });
});

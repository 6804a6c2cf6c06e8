import { describe, expect, it } from "vitest";
import { allSettledOrFirstError } from "./enroll.js";

describe("allSettledOrFirstError", () => {
  it("enroll - the values in order when every step succeeds", async () => {
    await expect(allSettledOrFirstError([Promise.resolve(1), Promise.resolve("a")] as const)).resolves.toEqual([1, "a"]);
  });

  it("enroll - a failure is thrown only once the slower steps have settled (the rollback must see what they made), the first in argument order", async () => {
    const made: string[] = [];
    const slow = new Promise<string>((resolve) => setTimeout(() => {
      made.push("address");
      resolve("address");
    }, 50));
    const err = await allSettledOrFirstError([slow, Promise.reject(new Error("name taken")), Promise.reject(new Error("second failure"))] as const).catch((e: unknown) => e);
    expect((err as Error).message, "the first failure").toBe("name taken");
    expect(made, "the slow step had finished when the failure came").toEqual(["address"]);
  });
});

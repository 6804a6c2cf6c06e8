/**
 * KeyedSerial: one key's tasks run in order and never overlap, other keys run alongside, a failure
 * does not block the queue, and finished keys are forgotten.
 */
import { describe, expect, it } from "vitest";
import { KeyedSerial } from "./keyed-serial.js";

describe("util/keyed-serial", () => {
  it("keyed-serial - one key in order, keys in parallel, failures do not block", async () => {
    const q = new KeyedSerial();
    const log: string[] = [];
    const task = (name: string, ms: number, fail = false) => async () => {
      log.push(`start ${name}`);
      await new Promise((r) => setTimeout(r, ms));
      log.push(`end ${name}`);
      if (fail) throw new Error(name);
      return name;
    };
    const a1 = q.run("a", task("a1", 20, true));
    const a2 = q.run("a", task("a2", 1));
    const b1 = q.run("b", task("b1", 1));
    await expect(a1).rejects.toThrow("a1");
    expect(await a2).toBe("a2");
    expect(await b1).toBe("b1");
    expect(log.indexOf("end a1"), "a2 starts after a1 ends").toBeLessThan(log.indexOf("start a2"));
    expect(log.indexOf("end b1"), "b runs alongside a1").toBeLessThan(log.indexOf("end a1"));
    await new Promise((r) => setTimeout(r, 1));
    expect(q.size, "keys left").toBe(0);
  });
});

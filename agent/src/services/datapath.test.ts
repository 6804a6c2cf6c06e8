/** LazyServiceDatapath: loaded at most once (a failure is not tried again), attached once and only once loaded. */
import { silentLogger } from "@weft/protocol";
import { describe, expect, it } from "vitest";
import { LazyServiceDatapath, type ServiceDatapath } from "./datapath.js";

describe("services/datapath", () => {
  it("lazy datapath - nothing loaded until asked; loaded and attached once", () => {
    const calls: string[] = [];
    const loaded = { close: () => calls.push("close") } as unknown as ServiceDatapath;
    const lazy = new LazyServiceDatapath({ open: () => (calls.push("open"), loaded), attach: () => calls.push("attach"), log: silentLogger });
    lazy.attach();
    expect([lazy.current, calls], "attach before any load does nothing").toEqual([undefined, []]);
    expect(lazy.load(), "the first load opens").toBe(loaded);
    expect(lazy.load(), "a second returns the same").toBe(loaded);
    lazy.attach();
    lazy.attach();
    lazy.close();
    expect(calls, "opened once, attached once").toEqual(["open", "attach", "close"]);
  });

  it("lazy datapath - a load that fails is not tried again", () => {
    let opens = 0;
    const lazy = new LazyServiceDatapath({
      open: () => {
        opens++;
        throw new Error("EPERM");
      },
      attach: () => expect.fail("nothing to attach"),
      log: silentLogger,
    });
    expect([lazy.load(), lazy.load(), lazy.current], "no datapath").toEqual([undefined, undefined, undefined]);
    lazy.attach();
    lazy.close();
    expect(opens, "opened once").toBe(1);
  });
});

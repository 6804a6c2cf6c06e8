/** DropQueue: bounded, drops and counts what does not fit, hands items out in order. */
import { describe, expect, it } from "vitest";
import { DropQueue } from "./queue.js";

describe("flows/queue", () => {
  it("queue - keeps at most capacity items, drops the rest and counts them", () => {
    const q = new DropQueue<number>(3);
    expect(q.push([1, 2]), "dropped of 2").toBe(0);
    expect(q.push([3, 4, 5]), "dropped of 3").toBe(2);
    expect(q.take(2), "first two").toEqual([1, 2]);
    expect(q.push([6]), "room again").toBe(0);
    expect([q.take(10), q.dropped, q.length], "rest, dropped, left").toEqual([[3, 6], 2, 0]);
    expect(() => new DropQueue(0), "capacity 0").toThrow(RangeError);
  });
});

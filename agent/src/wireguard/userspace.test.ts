import { describe, expect, it } from "vitest";
import { stripBanner } from "./userspace.js";

describe("wireguard - userspace", () => {
  it("wireguard - stripBanner drops wireguard-go's boxed banner and keeps the error", () => {
    const stderr = [
      "┌──────────────────────────────────────────────────────┐",
      "│                                                      │",
      "│   Running wireguard-go is not required because this  │",
      "│   kernel has first class support for WireGuard.      │",
      "└──────────────────────────────────────────────────────┘",
      "ERROR: (wg0) 2026/12/07 18:00:00 Failed to create TUN device: operation not permitted",
      "",
    ].join("\n");
    expect(stripBanner(stderr)).toBe("ERROR: (wg0) 2026/12/07 18:00:00 Failed to create TUN device: operation not permitted");
    expect(stripBanner("no banner here\nsecond line"), "other lines kept").toBe("no banner here\nsecond line");
  });
});

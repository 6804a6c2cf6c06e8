/** Unit tests of labStatus without a lab: defensive reading of the agent's overlay address. */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentStatePath, labStatus, readOverlayAddress } from "./status.js";

describe("lab - status", () => {
  let root = "";
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "weft-lab-status-"));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const write = async (name: string, text: string): Promise<string> => {
    const p = join(root, name);
    await writeFile(p, text);
    return p;
  };

  it("lab - status reads overlayAddress defensively", async () => {
    const cases: Array<[string, string | undefined, string | null]> = [
      ["missing", undefined, null],
      ["garbled", "{not json", null],
      ["array", "[1,2]", null],
      ["null", "null", null],
      ["number", `{"overlayAddress": 42}`, null],
      ["empty", `{"overlayAddress": ""}`, null],
      ["valid", `{"overlayAddress": "fd7a:115c::1", "other": true}`, "fd7a:115c::1"],
    ];
    for (const [name, text, want] of cases) {
      const path = text === undefined ? join(root, "nope.json") : await write(`${name}.json`, text);
      const got = await readOverlayAddress(path);
      expect(got, `${name}: got ${got}, want ${want}`).toBe(want);
    }
  });

  it("lab - status of a lab that is down lists 7 hosts, none up, with agent overlays", async () => {
    const opts = { prefix: "wtnone", stateRoot: root };
    const file = agentStatePath(opts, "gcp-1");
    expect(file, "agent state path").toBe(join(root, "wtnone", "hosts", "gcp-1", "agent", "state.json"));
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, JSON.stringify({ overlayAddress: "100.96.0.7" }));
    const got = await labStatus(opts);
    expect(got.length, `hosts: got ${got.length}, want 7`).toBe(7);
    expect(got.every((h) => !h.up), "no host up").toBe(true);
    expect(got.find((h) => h.name === "gcp-1")?.overlay, "gcp-1 overlay").toBe("100.96.0.7");
    expect(got.find((h) => h.name === "aws-1"), "aws-1").toEqual({
      name: "aws-1",
      site: "aws",
      netns: "wtnone-aws-1",
      underlay: { private: "10.10.0.11", public: "198.18.1.11" },
      overlay: null,
      up: false,
    });
    expect(got.find((h) => h.name === "onprem-1")?.underlay.public, "onprem-1 public").toBeNull();
  });
});

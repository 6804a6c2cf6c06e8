/**
 * Agent configuration: one schema holding every default. Documented in
 * agent/README.md; `weft agent --help` names the flags.
 */
import { hostname } from "node:os";
import { endpoint, nodeName, siteName } from "@weft/protocol";
import { z } from "zod";

export const AgentConfig = z
  .object({
    /** Keys, enrollment state and the last applied config live here (mode 0700). */
    stateDir: z.string().min(1).default("/var/lib/weft/agent"),
    /** Controller API base URL, e.g. http://198.19.0.2:8080. Needed to enroll. */
    controllerUrl: z.string().url().optional(),
    /** Join key for the first enrollment; ignored once enrolled. */
    joinKey: z.string().optional(),
    name: nodeName.default(() => defaultName()),
    site: siteName.default("default"),
    interface: z
      .object({
        name: z.string().regex(/^[a-zA-Z0-9_.-]{1,15}$/, "interface names are 1-15 characters of letters, digits, _ . -").default("weft0"),
        implementation: z.enum(["auto", "kernel", "userspace"]).default("auto"),
        listenPort: z.number().int().min(1).max(65535).default(51820),
        /** 1420 suits a 1500-byte underlay; use 1380 where the underlay is 1460. */
        mtu: z.number().int().min(1280).max(9000).default(1420),
      })
      .strict()
      .prefault({}),
    endpoints: z
      .object({
        /** Address:port peers in the same site use. Absent: the default-route address and the listen port. */
        private: endpoint.optional(),
        /** Address:port reachable from other sites. Absent: this node is behind NAT and keeps its tunnels open. */
        public: endpoint.optional(),
      })
      .strict()
      .prefault({}),
    /** Keepalive sent by a node behind NAT so peers can reach it. */
    keepaliveSeconds: z.number().int().min(1).max(600).default(25),
  })
  .strict();
export type AgentConfig = z.infer<typeof AgentConfig>;
export type AgentConfigInput = z.input<typeof AgentConfig>;

function defaultName(): string {
  const h = hostname().toLowerCase().split(".")[0] ?? "node";
  const cleaned = h.replace(/[^a-z0-9-]/g, "-").replace(/^-+|-+$/g, "").slice(0, 63);
  return cleaned === "" ? "node" : cleaned;
}

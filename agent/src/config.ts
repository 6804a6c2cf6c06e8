/**
 * Agent configuration: one schema holding every default. Documented in
 * agent/README.md; `weft agent --help` names the flags.
 */
import { hostname } from "node:os";
import { caHash, endpoint, nodeName, siteName } from "@weft/protocol";
import { z } from "zod";

export const AgentConfig = z
  .object({
    /** Keys, enrollment state and the last applied config live here (mode 0700). */
    stateDir: z.string().min(1).default("/var/lib/weft/agent"),
    /** Controller API base URL, e.g. https://198.19.0.2:8080. Needed to enroll. */
    controllerUrl: z
      .string()
      .url()
      .refine((u) => /^https?:\/\//i.test(u), { message: "must be an https:// (or http://) URL" })
      .optional(),
    /** Pin of the controller's CA (`sha256:…`, printed by `weft keys create`); required for an https controller URL. */
    controllerCaHash: caHash.optional(),
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
  .strict()
  .superRefine((c, ctx) => {
    // Fail closed: an https controller is trusted only through its pinned CA, and a pin is never silently ignored.
    const https = c.controllerUrl !== undefined && /^https:/i.test(c.controllerUrl);
    if (https && c.controllerCaHash === undefined) {
      ctx.addIssue({ code: "custom", path: ["controllerCaHash"], message: "required for an https controller URL: pass --ca-hash sha256:… (printed by `weft keys create`)" });
    }
    if (!https && c.controllerUrl !== undefined && c.controllerCaHash !== undefined) {
      ctx.addIssue({ code: "custom", path: ["controllerCaHash"], message: "a CA pin needs an https:// controller URL" });
    }
  });
export type AgentConfig = z.infer<typeof AgentConfig>;
export type AgentConfigInput = z.input<typeof AgentConfig>;

function defaultName(): string {
  const h = hostname().toLowerCase().split(".")[0] ?? "node";
  const cleaned = h.replace(/[^a-z0-9-]/g, "-").replace(/^-+|-+$/g, "").slice(0, 63);
  return cleaned === "" ? "node" : cleaned;
}

/**
 * Agent configuration: one schema holding every default. Documented in
 * agent/README.md; `weft agent --help` names the flags.
 */
import { hostname } from "node:os";
import { DEFAULT_FLOW_TABLE_ENTRIES, MAX_FLOW_TABLE_ENTRIES, MIN_FLOW_TABLE_ENTRIES } from "@weft/bpf/flow-table-limits";
import { MetadataProvider, WorkloadSpec, caHash, endpoint, nodeName, siteName } from "@weft/protocol";
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
    /** Join key for the first enrollment; ignored once enrolled. Optional with `cloud` when an enrollment policy admits the instance. */
    joinKey: z.string().optional(),
    /** File holding the join key (mode 0600), read only while not enrolled: keeps the key off command lines. `weft up` writes /etc/weft/join-key. */
    joinKeyFile: z.string().regex(/^\//, "must be an absolute path").optional(),
    /**
     * The cloud this host runs in: at enrollment the agent reads the cloud's signed instance
     * document from its metadata service and presents it (join by instance identity).
     */
    cloud: z
      .object({
        provider: MetadataProvider,
        /** Base URL of the metadata service; default the cloud's link-local one (the lab points it at its simulator). */
        metadataEndpoint: z
          .string()
          .url()
          .refine((u) => /^https?:\/\//i.test(u), { message: "must be an http:// or https:// URL" })
          .optional(),
        /** GCP: the audience of the identity token (the controller's `gcp.audience`); default the origin of controllerUrl. */
        audience: z.string().min(1).max(512).optional(),
      })
      .strict()
      .optional(),
    name: nodeName.default(() => defaultName()),
    /**
     * The site this host believes it is in, for the first enrollment. What vouches for the node (its
     * join key's or enrollment policy's site, its instance's network) decides; a different one is
     * refused. Absent: the vouched site (the enrollment answer says it).
     */
    site: siteName.optional(),
    interface: z
      .object({
        name: z.string().regex(/^[a-zA-Z0-9_.-]{1,15}$/, "interface names are 1-15 characters of letters, digits, _ . -").default("weft0"),
        implementation: z.enum(["auto", "kernel", "userspace"]).default("auto"),
        listenPort: z.number().int().min(1).max(65535).default(51820),
        /**
         * `auto` (the default): the underlay's MTU (the default route's device) less 80, so a
         * site whose network carries 1460, 1380 or 1280 bytes gets 1380, 1300 or 1200; 1420 when
         * the underlay cannot be read. A number sets it.
         */
        mtu: z.union([z.literal("auto"), z.number().int().min(1200).max(9000)]).default("auto"),
        /** Rotate the WireGuard key this often (hours; peers take the new key through the controller). 0: only on `weft agent rotate-key`. */
        keyRotationHours: z.number().min(0).max(8760).default(0),
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
    datapath: z
      .object({
        /** eBPF policy, counters and same-site encapsulation. false: WireGuard only, nothing enforced. */
        enabled: z.boolean().default(true),
        /** Programs and maps are pinned here (a bpffs), so enforcement outlives the agent. */
        pinDir: z.string().regex(/^\/.+/, "must be an absolute path on a bpf filesystem").default("/sys/fs/bpf/weft"),
        /** The VXLAN (collect_md) device for same-site encapsulation, created when the site allows plaintext. */
        vxlanInterface: z.string().regex(/^[a-zA-Z0-9_.-]{1,15}$/, "interface names are 1-15 characters of letters, digits, _ . -").default("weft-vxlan"),
        vxlanPort: z.number().int().min(1).max(65535).default(4789),
        /**
         * Flows this host tracks at once: sizes the kernel tables that grow with traffic (sent-flow
         * conntrack, the socket load balancer's per-socket and UDP tables: one entry per flow; flow
         * counters, rate limits and refusals: a quarter). They are allocated whole when created, ~450
         * bytes of kernel memory per flow (65536: ~28 MiB). A full table drops its least
         * recently used entry. Takes effect when the tables are next created (a reboot, `weft down`):
         * tables already pinned keep their size.
         */
        flowTableEntries: z.number().int().min(MIN_FLOW_TABLE_ENTRIES).max(MAX_FLOW_TABLE_ENTRIES).default(DEFAULT_FLOW_TABLE_ENTRIES),
      })
      .strict()
      .prefault({}),
    gateway: z
      .object({
        /**
         * When the controller makes this node its site's gateway: masquerade overlay traffic
         * forwarded into the site, so site machines need no route back. false: the site's
         * router must route the overlay ranges to this host.
         */
        snat: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    /** Workloads hosted on this node: each gets a veth into its network namespace, an address from the workload prefix and its own identity. */
    workloads: z.array(WorkloadSpec.extend({ netns: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "must be the name of a network namespace in /run/netns") })).default([]),
    localApi: z
      .object({
        /** Path of the local API's unix socket ("" turns it off). Default: `agent.sock` in stateDir. */
        socket: z.string().optional(),
        /** Group (besides root) that may use the socket, when it exists on the host. */
        group: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, "must be a group name").default("weft"),
      })
      .strict()
      .prefault({}),
    services: z
      .object({
        /**
         * Services: connect-time load balancing of this host's sockets (cgroup programs), the tc
         * fallback on workload veths, health checks of the backends hosted here, and DNS. Needs the datapath.
         */
        enabled: z.boolean().default(true),
        /**
         * The cgroup v2 directory whose processes' sockets are balanced (all descendants too):
         * "auto" is the root of the cgroup v2 mount (every process of the host); a lab host uses its own.
         */
        cgroup: z.string().regex(/^(auto|\/.+)$/, "must be auto or an absolute path of a cgroup v2 directory").default("auto"),
        dns: z
          .object({
            /** Where the DNS server listens: "overlay" (the node's overlay address, port 53), ip:port, or "" (off). */
            listen: z.string().regex(/^$|^overlay$|^\d{1,3}(\.\d{1,3}){3}:\d{1,5}$/, "must be overlay, ip:port or empty").default("overlay"),
            /** Resolvers for names outside the zone (ip or ip:port); default the nameservers in /etc/resolv.conf. */
            upstream: z.array(z.string().regex(/^\d{1,3}(\.\d{1,3}){3}(:\d{1,5})?$/, "must be ip or ip:port")).max(8).optional(),
            /** Write /etc/netns/<netns>/resolv.conf for each workload, pointing at this DNS. */
            workloadResolvConf: z.boolean().default(true),
          })
          .strict()
          .prefault({}),
        /** Passive health: a backend whose connects from this host fail this many times in a row is ejected here. */
        passive: z
          .object({
            consecutiveFailures: z.number().int().min(1).max(100).default(3),
            /** First ejection; doubled for each one in a row. */
            ejectSeconds: z.number().min(1).max(3600).default(10),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    spiffe: z
      .object({
        /**
         * The SPIFFE Workload API's unix socket ("" turns it off). Mode 0666 in a 0755 directory:
         * every local process may connect, and attestation (its network namespace, its uid) decides
         * which identity, if any, it gets.
         */
        socket: z.string().regex(/^$|^\/.+/, "must be an absolute path, or empty").default("/run/weft/workload-api.sock"),
        /**
         * Uids of host processes (the agent's own network namespace) that get the node's identity.
         * Default root only; [] gives host processes none. Workloads are attested by their network
         * namespace, whatever their uid.
         */
        hostUids: z.array(z.number().int().min(0).max(0xfffffffe)).max(64).default([0]),
      })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        /** host:port of the Prometheus endpoint (/metrics); "" turns it off. */
        listen: z.string().regex(/^$|^[^\s:]+:\d{1,5}$/, "must be host:port, e.g. 127.0.0.1:9464, or empty").default("127.0.0.1:9464"),
      })
      .strict()
      .prefault({}),
    /** Flow records per identity pair, off the host (see agent/src/flows). Needs the datapath. */
    flows: z
      .object({
        /** One record per identity pair that saw traffic, every this many seconds. */
        intervalSeconds: z.number().int().min(2).max(3600).default(10),
        /** Send each interval's records (at most 512, the largest) to the controller, for the console. */
        report: z.boolean().default(true),
        /** Append records as JSON lines to this file (rotated to <file>.1 past 100 MiB). Absent: no file. */
        file: z.string().regex(/^\/.+/, "must be an absolute path").optional(),
        otlp: z
          .object({
            /** Base URL of an OTLP/HTTP receiver (http://collector:4318); records go to <endpoint>/v1/logs as OpenTelemetry logs. */
            endpoint: z.url({ protocol: /^https?$/, error: "must be an http(s) URL like http://127.0.0.1:4318" }),
            /** Extra HTTP headers (an API key for a hosted collector). */
            headers: z.record(z.string().regex(/^[A-Za-z0-9-]{1,64}$/, "must be a header name"), z.string().max(4096)).default({}),
            timeoutSeconds: z.number().int().min(1).max(120).default(10),
          })
          .strict()
          .optional(),
        /** Records waiting per sink before new ones are dropped (and counted). */
        queueSize: z.number().int().min(100).max(1_000_000).default(10_000),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    // Fail closed: an https controller is trusted only through its pinned CA, and a pin is never silently ignored.
    const https = c.controllerUrl !== undefined && /^https:/i.test(c.controllerUrl);
    if (https && c.controllerCaHash === undefined) {
      ctx.addIssue({ code: "custom", path: ["controllerCaHash"], message: "required for an https controller URL: pass --ca-hash sha256:… (printed by `weft keys create`)" });
    }
    if (c.joinKey !== undefined && c.joinKeyFile !== undefined) {
      ctx.addIssue({ code: "custom", path: ["joinKeyFile"], message: "give the join key once: joinKey or joinKeyFile, not both" });
    }
    const names = new Set<string>();
    c.workloads.forEach((w, i) => {
      if (names.has(w.name)) ctx.addIssue({ code: "custom", path: ["workloads", i, "name"], message: `duplicate workload name ${w.name}` });
      names.add(w.name);
    });
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

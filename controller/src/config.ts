/**
 * Controller configuration: one schema holding every default. Every option is
 * documented in controller/README.md; `weft controller --help` names the flags.
 */
import { isIP } from "node:net";
import { z } from "zod";
import { cidr, cidrsOverlap, formatCidr, parseCidr, siteName } from "@weft/protocol";
import { InventoryConfig } from "./inventory/config.js";

/** A DNS name (a leading `*.` allowed) or an IP address, for a certificate's SANs. */
const sanName = z
  .string()
  .refine((s) => isIP(s.replace(/^\[|\]$/g, "")) !== 0 || /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(s), {
    message: "must be a DNS name or an IP address",
  });

export const ControllerConfig = z
  .object({
    /** Where the controller keeps its signing keys, admin token and the embedded NATS data. */
    stateDir: z.string().min(1).default("/var/lib/weft/controller"),
    nats: z
      .object({
        /** External NATS URL. Absent (and no `urls`): start an embedded nats-server. */
        url: z.string().url().optional(),
        /**
         * External NATS cluster: every server's URL (the controller connects to any and fails over;
         * agents get them all unless `advertise` says otherwise). Replaces `url`.
         */
        urls: z.array(z.string().url()).optional(),
        /** Replicas of every bucket: 3 on a 3-node JetStream cluster. Default 1 (one server). */
        replicas: z.number().int().min(1).max(5).default(1),
        /** Embedded server listen address and port. */
        listenHost: z.string().default("0.0.0.0"),
        port: z.number().int().min(0).max(65535).default(4222),
        /** URLs handed to agents (`tls://host:port`). Empty: `tls://<host the agent used for the API>:<port>`. */
        advertise: z
          .array(z.string().url().refine((u) => u.startsWith("tls://"), "must be a tls:// URL: agents refuse plaintext NATS"))
          .default([]),
        /**
         * The CA (PEM file) of an external NATS server's certificate, trusted by the controller and
         * handed to agents. Absent: the controller's own CA (`<stateDir>/tls/ca.crt`), which signs the
         * embedded server's certificate. Ignored for the embedded server.
         */
        caFile: z.string().min(1).optional(),
        /** Embedded server: JetStream's file store limit in bytes (every bucket's max bytes must fit). Default 1 GiB. */
        maxFileStore: z.number().int().min(64 * 1024 * 1024).optional(),
        /** Per-bucket limits replacing the defaults (controller/src/nats/connect.ts BUCKET_LIMITS). */
        buckets: z
          .record(
            z.string(),
            z.object({ maxValueSize: z.number().int().min(1024).optional(), maxBytes: z.number().int().min(64 * 1024).optional() }).strict(),
          )
          .default({}),
        /** Lifetime of agents' NATS credentials; agents renew them at half-life. Default 24 h, at most 7 days. */
        agentCredentialHours: z.number().int().min(1).max(168).default(24),
      })
      .strict()
      .prefault({}),
    api: z
      .object({
        listenHost: z.string().default("0.0.0.0"),
        port: z.number().int().min(0).max(65535).default(8080),
        /** Unix socket for local admin tools (plain HTTP, root only); empty string disables it. */
        socket: z.string().optional(),
        tls: z
          .object({
            /** HTTPS with the controller's own CA (see controller/src/tls). false: plain HTTP, join keys in clear text. */
            enabled: z.boolean().default(true),
            /**
             * Names and addresses the server certificate covers, besides the listen host,
             * localhost and 127.0.0.1. Absent: every non-loopback IPv4 address of the host at start.
             */
            sans: z.array(sanName).optional(),
          })
          .strict()
          .prefault({}),
        /**
         * Per source address, on the routes strangers call (`POST /v1/enroll`, `POST
         * /v1/enroll/nonce`), each counted on its own: at most `max` requests per `windowSeconds`,
         * then 429 with Retry-After. `trackedAddresses` bounds the memory (least recently seen
         * addresses are forgotten first). Agents behind one NAT share an address: raise `max` for
         * large fleets that boot at once.
         */
        rateLimit: z
          .object({
            max: z.number().int().min(1).max(1_000_000).default(30),
            windowSeconds: z.number().int().min(1).max(3600).default(60),
            trackedAddresses: z.number().int().min(100).max(1_000_000).default(10_000),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /** Admin bearer token; absent: generated once into `<stateDir>/admin-token` (mode 0600). */
    adminToken: z.string().min(16, "adminToken must be at least 16 characters").optional(),
    overlay: z
      .object({
        /** Node addresses: one per node. */
        cidr: cidr.default("100.64.0.0/16"),
        /** Workload addresses: each node gets one prefix of it. Must not overlap `cidr`. */
        workloadCidr: cidr.default("100.80.0.0/12"),
        /** Virtual IPs of services. Must not overlap `cidr` or `workloadCidr`. */
        serviceCidr: cidr.default("100.96.0.0/16"),
        /** Length of each node's workload prefix (24: 254 workloads per node, 4096 nodes in a /12). */
        workloadPrefixLength: z.number().int().min(1).max(30).default(24),
        /**
         * Sites whose network is trusted: same-site workload traffic goes as plaintext
         * VXLAN (eBPF, source identity in the VNI) instead of WireGuard. Default none.
         */
        plaintextSites: z.array(siteName).default([]),
        /**
         * Claims (WireGuard key, name, address, workload prefix) and peer records of a node id with
         * no node record are removed once this old: what an enrollment or deletion interrupted
         * midway leaves. Enrollments give up after half of it.
         */
        orphanClaimGraceSeconds: z.number().int().min(60).max(7 * 86_400).default(600),
      })
      .strict()
      .superRefine((o, ctx) => {
        const nodes = parseCidr(o.cidr);
        const workloads = parseCidr(o.workloadCidr);
        if (!nodes || !workloads) return;
        if (cidrsOverlap(nodes, workloads)) {
          ctx.addIssue({
            code: "custom",
            path: ["workloadCidr"],
            message: `overlay.workloadCidr ${formatCidr(workloads)} overlaps overlay.cidr ${formatCidr(nodes)}; node and workload ranges must be disjoint`,
          });
        }
        const services = parseCidr(o.serviceCidr);
        if (services) {
          for (const [other, what] of [
            [nodes, "overlay.cidr"],
            [workloads, "overlay.workloadCidr"],
          ] as const) {
            if (cidrsOverlap(services, other)) {
              ctx.addIssue({ code: "custom", path: ["serviceCidr"], message: `overlay.serviceCidr ${formatCidr(services)} overlaps ${what} ${formatCidr(other)}; node, workload and service ranges must be disjoint` });
            }
          }
        }
        if (o.workloadPrefixLength < workloads.prefixLength) {
          ctx.addIssue({
            code: "custom",
            path: ["workloadPrefixLength"],
            message: `overlay.workloadPrefixLength /${o.workloadPrefixLength} is shorter than overlay.workloadCidr ${formatCidr(workloads)}; a node's prefix must fit inside it`,
          });
        }
      })
      .prefault({}),
    identity: z
      .object({
        /** SPIFFE trust domain of every identity this controller allocates (Istio's default is cluster.local). */
        trustDomain: z
          .string()
          .regex(/^[a-z0-9]([a-z0-9.-]{0,253}[a-z0-9])?$/, "identity.trustDomain must be a lower-case DNS name")
          .default("weft.internal"),
        /**
         * Most workload identities one node may hold at once: those of its workloads plus those it
         * dropped less than `releaseAfterSeconds` ago. A request past it is refused (identity_limit).
         */
        maxWorkloadIdentitiesPerNode: z.number().int().min(1).max(4096).default(64),
        /**
         * Grace before an identity number nothing references is released, and again before a
         * released number may name another SPIFFE ID (agents may still hold policy naming it).
         */
        releaseAfterSeconds: z.number().int().min(1).max(30 * 86_400).default(600),
      })
      .strict()
      .prefault({}),
    services: z
      .object({
        /** DNS zone of service, node and workload names agents answer (`<name>.<namespace>.svc.<zone>`); default identity.trustDomain. */
        zone: z
          .string()
          .regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, "services.zone must be a lower-case DNS name")
          .optional(),
      })
      .strict()
      .prefault({}),
    spiffe: z
      .object({
        /** Lifetime of an X.509-SVID; agents rotate at half of it. */
        x509SvidTtlSeconds: z.number().int().min(10).max(7 * 86_400).default(3600),
        /** Lifetime of a JWT-SVID. */
        jwtSvidTtlSeconds: z.number().int().min(10).max(86_400).default(300),
      })
      .strict()
      .prefault({}),
    leader: z
      .object({
        /**
         * The leader lease (weft-leader bucket): a controller that stops renewing it is replaced
         * after about this long (a stopping one hands over at once). Default 6 s.
         */
        leaseSeconds: z.number().min(1).max(60).default(6),
      })
      .strict()
      .prefault({}),
    heartbeatSeconds: z.number().int().min(1).max(300).default(5),
    /** A node with no heartbeat for this long is shown offline (nothing is removed). */
    offlineAfterSeconds: z.number().int().min(2).max(3600).default(15),
    downloads: z
      .object({
        /**
         * Directory served to new VMs without auth (`GET /install.sh`, `GET /download/weft_*.deb`):
         * the installer and the packages, e.g. packaging/out of `npm run package`. Absent: none served.
         */
        dir: z.string().regex(/^\//, "must be an absolute path").optional(),
      })
      .strict()
      .prefault({}),
    /** Cloud accounts to list, how often, and how much one cycle may remove (see inventory/config.ts). */
    inventory: InventoryConfig.prefault({}),
    /** Connectivity across NATs (see controller/src/nat): reflexive endpoints, relays, hole punching. */
    nat: z
      .object({
        /**
         * UDP ports a relay node (label `weft:relay=true`) forwards relayed pairs on: two per pair,
         * from `first`. Keep this range free on relay nodes and open in their firewalls.
         */
        relayPorts: z
          .object({ first: z.number().int().min(1024).max(65534).default(41000), count: z.number().int().min(2).max(20000).default(1000) })
          .strict()
          .refine((r) => r.first + r.count - 1 <= 65535, { message: "nat.relayPorts runs past port 65535" })
          .prefault({}),
        /** Wait before a relayed pair's next hole-punching round: doubles from initial to max (also the wait for NATs that map per destination). */
        punchBackoffSeconds: z
          .object({ initial: z.number().int().min(1).max(3600).default(10), max: z.number().int().min(1).max(86_400).default(120) })
          .strict()
          .refine((b) => b.max >= b.initial, { message: "nat.punchBackoffSeconds.max must be at least initial" })
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /** The web console, served on the API listener at /console/ (see controller/src/console). */
    console: z
      .object({
        enabled: z.boolean().default(true),
        /** The built console (index.html and assets/). Absent: console/dist of this installation. */
        dir: z.string().min(1).optional(),
        /** A console session ends this long after login. Default 8 h. */
        sessionTtlSeconds: z.number().int().min(60).max(7 * 24 * 3600).default(8 * 3600),
        /** A console session unused this long ends. Default 30 min. */
        sessionIdleSeconds: z.number().int().min(60).max(24 * 3600).default(30 * 60),
      })
      .strict()
      .prefault({}),
    metrics: z
      .object({
        /**
         * Bearer token that reads GET /metrics only (for Prometheus); absent: generated once into
         * `<stateDir>/metrics-token` (mode 0600). The admin token also reads /metrics.
         */
        token: z.string().min(16, "metrics.token must be at least 16 characters").optional(),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    const pool = c.inventory.remapPool === "" ? undefined : parseCidr(c.inventory.remapPool);
    if (!pool) return;
    // A remapped prefix inside the service range would be routed nowhere by every agent (the range's unreachable route).
    for (const { what, cidr: range } of overlayRanges(c.overlay)) {
      const r = parseCidr(range);
      if (r && cidrsOverlap(pool, r)) ctx.addIssue({ code: "custom", path: ["inventory", "remapPool"], message: `inventory.remapPool ${c.inventory.remapPool} overlaps ${what} ${range}; pick a pool outside the overlay's ranges` });
    }
  });
export type ControllerConfig = z.infer<typeof ControllerConfig>;

/** The overlay's own ranges (nodes, workloads, service VIPs), each named by its setting: no site network or remapped prefix may take one. */
export function overlayRanges(overlay: { cidr: string; workloadCidr: string; serviceCidr: string }): { cidr: string; what: string }[] {
  return [
    { cidr: overlay.cidr, what: "overlay.cidr" },
    { cidr: overlay.workloadCidr, what: "overlay.workloadCidr" },
    { cidr: overlay.serviceCidr, what: "overlay.serviceCidr" },
  ];
}
export type ControllerConfigInput = z.input<typeof ControllerConfig>;

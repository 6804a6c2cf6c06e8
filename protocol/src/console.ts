/**
 * The web console's own routes on the wire: the login that turns the admin token into a session,
 * the policy matrix it draws (who may reach whom, on which ports, and why), and the events of its
 * live stream (`GET /v1/events`, server-sent events naming what changed, so the page reads the
 * REST routes again instead of polling).
 */
import { z } from "zod";

/** `POST /console/login`. */
export const ConsoleLoginRequest = z.object({ token: z.string().min(1).max(512) }).strict();
export type ConsoleLoginRequest = z.infer<typeof ConsoleLoginRequest>;

/** The session the cookie names: its CSRF token (send it as X-Weft-CSRF) and when it ends. */
export const ConsoleSessionView = z.object({ csrfToken: z.string(), expiresAt: z.string() });
export type ConsoleSessionView = z.infer<typeof ConsoleSessionView>;

/** What a rule contributes to a cell: the policy, the rule's index in it, and its action. */
export const MatrixReason = z.object({ policy: z.string(), rule: z.number().int(), action: z.enum(["allow", "deny"]) });
export type MatrixReason = z.infer<typeof MatrixReason>;

/** One protocol/port of a cell: tcp/7000, udp (any port), any (every protocol). */
export const MatrixPort = z.object({
  protocol: z.string(),
  /** 0 without `endPort` = every port of the protocol. */
  port: z.number().int(),
  /** The last port of a range (absent: `port` alone). */
  endPort: z.number().int().optional(),
  verdict: z.enum(["allow", "deny"]),
  /** Rules that produced this entry (the deny when a deny overrides allows). */
  reasons: z.array(MatrixReason),
});
export type MatrixPort = z.infer<typeof MatrixPort>;

/**
 * Source → destination: "open" when no policy selects the destination (everything passes);
 * "allow" when every protocol is allowed; "partial" when some ports are; "deny" when nothing is
 * (default deny, or a deny rule).
 */
export const MatrixCell = z.object({
  source: z.number().int(),
  destination: z.number().int(),
  verdict: z.enum(["open", "allow", "partial", "deny"]),
  ports: z.array(MatrixPort),
  /** One line for a person: why this verdict. */
  why: z.string(),
});
export type MatrixCell = z.infer<typeof MatrixCell>;

/** `GET /v1/policy-matrix`. */
export const PolicyMatrix = z.object({
  identities: z.array(z.object({ id: z.number().int(), spiffeId: z.string(), hosts: z.array(z.string()) })),
  cells: z.array(MatrixCell),
  /** Identities left out to keep the matrix bounded. */
  omitted: z.number().int(),
  policies: z.array(z.string()),
});
export type PolicyMatrix = z.infer<typeof PolicyMatrix>;

/** Topics of the live stream: each event names what to read again. */
export const ConsoleTopics = ["nodes", "liveness", "policies", "identities", "inventory", "flows"] as const;
export type ConsoleTopic = (typeof ConsoleTopics)[number];

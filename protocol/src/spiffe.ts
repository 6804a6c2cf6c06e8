/**
 * SPIFFE on the wire: what an agent asks the controller for its workloads' SVIDs, and the trust
 * bundle every agent reads.
 *
 * - X.509-SVIDs: the agent makes the key pair on the host and sends only a CSR
 *   (`Subjects.x509Svid(nodeId)`, request/reply); the controller signs it with the trust domain's
 *   CA when the node may hold that SPIFFE ID (its own identity or one of its workloads').
 * - JWT-SVIDs: the agent asks for a token for one SPIFFE ID and audience
 *   (`Subjects.jwtSvid(nodeId)`); the controller signs it (ES256) with its JWT key.
 * - The trust bundle (KV `weft-trust-bundle`, key `TRUST_BUNDLE_KEY`): the CA certificates and the
 *   JWT keys (JWKS), published by the controller and read by every agent.
 */
import { z } from "zod";
import { spiffeId } from "./messages.js";

/** The one key of the trust bundle bucket. */
export const TRUST_BUNDLE_KEY = "bundle";

const pemCertificate = z
  .string()
  .max(16_384)
  .regex(/^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n?$/, "must be one PEM certificate");

/** A public JWK of the trust domain's JWT signing key (EC P-256, ES256). */
export const JwtAuthority = z
  .object({
    kty: z.literal("EC"),
    crv: z.literal("P-256"),
    x: z.string().min(1).max(64),
    y: z.string().min(1).max(64),
    kid: z.string().min(1).max(128),
    alg: z.literal("ES256"),
    use: z.literal("jwt-svid"),
  })
  .strict();
export type JwtAuthority = z.infer<typeof JwtAuthority>;

/** KV `weft-trust-bundle`/`bundle`: what every agent trusts for its trust domain. */
export const TrustBundle = z.object({
  version: z.literal(1),
  trustDomain: z.string().regex(/^[a-z0-9]([a-z0-9.-]{0,253}[a-z0-9])?$/),
  /** The X.509 authorities (CA certificates), PEM. */
  x509Authorities: z.array(pemCertificate).min(1).max(16),
  /** The JWT authorities (public keys). */
  jwtAuthorities: z.array(JwtAuthority).min(1).max(16),
  /** Increases with every change. */
  sequence: z.number().int().nonnegative(),
  updatedAt: z.string(),
});
export type TrustBundle = z.infer<typeof TrustBundle>;

/** Agent → controller on Subjects.x509Svid(nodeId): sign this CSR for this SPIFFE ID. */
export const X509SvidRequest = z
  .object({
    version: z.literal(1),
    spiffeId,
    /** PKCS#10 certificate request, PEM. Its key is the SVID's; its subject and extensions are ignored. */
    csr: z.string().min(1).max(8192),
  })
  .strict();
export type X509SvidRequest = z.infer<typeof X509SvidRequest>;

/**
 * Why an SVID request was refused (error.code): `invalid_request` (a field is wrong, named in the
 * message), `forbidden` (the node may not hold that SPIFFE ID), `not_found` (the node does not
 * exist), `store_unavailable` (retry).
 */
export const SvidErrorCodes = ["invalid_request", "forbidden", "not_found", "store_unavailable"] as const;

const SvidRefusal = z.object({ ok: z.literal(false), error: z.object({ code: z.string(), message: z.string() }) });

export const X509SvidReply = z.union([
  z.object({
    ok: z.literal(true),
    /** The SVID (leaf) certificate, PEM; the chain ends at a CA of the trust bundle. */
    certificate: pemCertificate,
    expiresAt: z.string(),
  }),
  SvidRefusal,
]);
export type X509SvidReply = z.infer<typeof X509SvidReply>;

/** Agent → controller on Subjects.jwtSvid(nodeId): a JWT-SVID for this SPIFFE ID and audience. */
export const JwtSvidRequest = z
  .object({
    version: z.literal(1),
    spiffeId,
    audience: z.array(z.string().min(1).max(256)).min(1).max(16),
  })
  .strict();
export type JwtSvidRequest = z.infer<typeof JwtSvidRequest>;

export const JwtSvidReply = z.union([z.object({ ok: z.literal(true), token: z.string().min(1).max(8192), expiresAt: z.string() }), SvidRefusal]);
export type JwtSvidReply = z.infer<typeof JwtSvidReply>;

/** What `weft whois` answers (the agent's local API, `GET /v1/whois?addr=<ip[:port]>`). */
export const WhoIs = z.object({
  address: z.string(),
  port: z.number().int().optional(),
  /** The node that holds the address, or hosts the workload that does. */
  node: z.object({ id: z.string(), name: z.string(), overlayAddress: z.string() }),
  /** The workload holding the address; absent when the address is the node's own. */
  workload: z.string().optional(),
  /** The SPIFFE ID the address carries in the datapath; absent when the node has no identity. */
  spiffeId: z.string().optional(),
  /** The datapath's number for it. */
  identity: z.number().int().optional(),
  site: z.string(),
  /** The node's cloud (aws, azure, gcp, onprem) when its enrollment proved an instance. */
  cloud: z.string().optional(),
  /** The node's labels as its peer record publishes them (cloud tags and account ids are not published). */
  labels: z.record(z.string(), z.string()),
});
export type WhoIs = z.infer<typeof WhoIs>;

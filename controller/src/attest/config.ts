/**
 * `inventory.instanceIdentity`: what the controller trusts when an agent presents its cloud's signed
 * instance document, and how strictly the request's source address must match. Defaults live here
 * and nowhere else: the shipped trust material of controller/data/trust (SOURCES.md says where
 * each file came from); controller/README.md ("Join by instance identity") documents every option.
 *
 * Files named here replace the shipped ones (they are not merged): a lab or a test trusts its
 * simulators' test roots and nothing else. Paths are taken as they are (absolute, or relative to
 * the controller's working directory).
 */
import { z } from "zod";

const file = z.string().min(1, "must name a file");
const awsRegion = z.string().regex(/^(\*|[a-z]{2}(-[a-z]+)+-[0-9]+)$/, 'must be an AWS region like eu-west-1, or "*" for any region');

/**
 * Where an enrollment that presents a signed document may come from:
 * - `not-another-instance` (default): from one of the instance's own addresses, or from an address
 *   the inventory does not know (a NAT gateway, a proxy: the signed document alone decides); never
 *   from an address the inventory lists for a different instance.
 * - `instance`: only from one of the instance's own private or public addresses (agents reach the
 *   controller without NAT).
 * - `any`: the signed document alone decides.
 */
export const SourceAddressRule = z.enum(["not-another-instance", "instance", "any"]);
export type SourceAddressRule = z.infer<typeof SourceAddressRule>;

export const InstanceIdentityConfig = z
  .object({
    sourceAddress: SourceAddressRule.default("not-another-instance"),
    aws: z
      .object({
        /**
         * PEM file of the certificate that signs instance identity documents (RSA-2048 PKCS#7), per
         * region; `"*"` applies to every region. Absent: AWS's published certificates
         * (data/trust/aws-rsa2048.json, 39 regions).
         */
        certificates: z.record(awsRegion, file).optional(),
      })
      .strict()
      .prefault({}),
    azure: z
      .object({
        /** PEM bundle of the roots attested data must chain to. Absent: data/trust/azure-roots.pem. */
        rootsFile: file.optional(),
        /** PEM bundle of intermediate CAs IMDS leaves out of its PKCS#7. Absent: data/trust/azure-intermediates.pem. */
        intermediatesFile: file.optional(),
        /** Lifetime of an enrollment nonce (`POST /v1/enroll/nonce`); the agent uses it within seconds. */
        nonceTtlSeconds: z.number().int().min(10).max(600).default(120),
      })
      .strict()
      .prefault({}),
    gcp: z
      .object({
        /**
         * The `aud` an identity token must carry: what agents pass as `audience` (by default the
         * origin of their --controller URL, e.g. https://ctl.example.net:8080). Absent: GCP
         * identity tokens are refused.
         */
        audience: z.string().min(1).max(512).optional(),
        /** JWKS file of Google's signing keys. Absent (and no jwksUrl): data/trust/gcp-jwks.json, a dated copy. */
        jwksFile: file.optional(),
        /** Fetch the keys from here instead (production: https://www.googleapis.com/oauth2/v3/certs). */
        jwksUrl: z
          .string()
          .url()
          .refine((u) => u.startsWith("https://"), { message: "must be an https:// URL" })
          .optional(),
      })
      .strict()
      .refine((g) => g.jwksFile === undefined || g.jwksUrl === undefined, { message: "set jwksFile or jwksUrl, not both", path: ["jwksUrl"] })
      .prefault({}),
  })
  .strict();
export type InstanceIdentityConfig = z.infer<typeof InstanceIdentityConfig>;
export type InstanceIdentityConfigInput = z.input<typeof InstanceIdentityConfig>;

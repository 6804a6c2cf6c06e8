/**
 * The `inventory` section of the controller config: which cloud accounts to list, how often, and
 * how much one cycle may remove. Defaults live here and nowhere else; controller/README.md
 * ("Inventory") documents each option with an example.
 *
 * Credentials are never in this file: each adapter uses its SDK's default chain
 * (AWS: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE, the instance
 * role; Azure: AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET, managed identity, az login;
 * GCP: GOOGLE_APPLICATION_CREDENTIALS, the metadata server's service account, gcloud ADC).
 */
import { z } from "zod";
import { cidr } from "@weft/protocol";
import { InstanceIdentityConfig } from "../attest/config.js";
import { SiteConfig, siteConfigIssues } from "./sites.js";

const url = z.string().url("must be a URL like https://127.0.0.1:8443");
const nonEmpty = z.string().min(1, "must not be empty");

export const AwsAccountConfig = z
  .object({
    provider: z.literal("aws"),
    /** The 12-digit AWS account id the credentials belong to (the inventory's account key). */
    account: z.string().regex(/^[0-9]{12}$/, "must be the 12-digit AWS account id"),
    /** Regions to list (DescribeInstances / DescribeVpcs / DescribeSubnets in each). */
    regions: z.array(z.string().regex(/^[a-z]{2}(-[a-z]+)+-[0-9]+$/, "must be an AWS region like eu-west-1")).min(1, "name at least one region"),
    /** EC2 endpoint override (a simulator, a VPC endpoint); absent: the SDK's (or AWS_ENDPOINT_URL_EC2). */
    endpoint: url.optional(),
  })
  .strict();

export const AzureAccountConfig = z
  .object({
    provider: z.literal("azure"),
    subscriptionId: z.string().regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/, "must be a subscription id (a GUID)"),
    /** ARM endpoint override (a simulator); absent: https://management.azure.com. */
    endpoint: url.optional(),
    /** PEM file of an extra CA that signs `endpoint`'s certificate (a simulator's test CA). */
    caFile: nonEmpty.optional(),
  })
  .strict();

export const GcpAccountConfig = z
  .object({
    provider: z.literal("gcp"),
    project: z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, "must be a GCP project id: 6-30 lowercase letters, digits and '-'"),
    /** Compute API endpoint override, host[:port] or a URL (a simulator); absent: compute.googleapis.com. */
    apiEndpoint: nonEmpty.optional(),
  })
  .strict();

export const OnpremAccountConfig = z
  .object({
    provider: z.literal("onprem"),
    /** YAML file listing the site's hosts and networks (see cloud-adapters/README.md). */
    file: nonEmpty,
  })
  .strict();

export const InventoryAccountConfig = z.discriminatedUnion("provider", [AwsAccountConfig, AzureAccountConfig, GcpAccountConfig, OnpremAccountConfig]);
export type InventoryAccountConfig = z.infer<typeof InventoryAccountConfig>;

export const InventoryConfig = z
  .object({
    /** Seconds between syncs of every account (each sync jittered by ±10%; one sync at a time). */
    intervalSeconds: z.number().int().min(1).max(86_400).default(60),
    /**
     * At most this share of the nodes bound to one account is removed per cycle (at least one when
     * any should go); the rest are held back, reported, and removed on later cycles.
     */
    maxRemovalShare: z.number().gt(0, "must be more than 0").max(1).default(0.25),
    /**
     * Publish site routes: each site's networks are advertised by one of its `weft:gateway` nodes
     * and routed into the overlay by the other sites' agents. false: computed and shown only.
     */
    advertiseSiteRoutes: z.boolean().default(true),
    /**
     * Where overlapping site networks are remapped: when two sites use the same private range,
     * each gets a prefix of the same size from this pool, advertised to the other sites and
     * translated 1:1 (NETMAP) by its gateway. Must not overlap the overlay's ranges (node,
     * workload and service: the default sits above the default service range 100.96.0.0/16).
     * "" turns remapping off (overlapping ranges are then withheld).
     */
    remapPool: z.union([z.literal(""), cidr]).default("100.112.0.0/12"),
    /** The accounts to list. Default none: no inventory, nothing is ever removed by it. */
    accounts: z.array(InventoryAccountConfig).default([]),
    /** Join by instance identity: the keys signed instance documents are verified with (see attest/config.ts). */
    instanceIdentity: InstanceIdentityConfig.prefault({}),
    /**
     * Which networks are which site (what vouches for the site of a node whose instance is in one),
     * and the public ranges each site's gateway may advertise. Default none (see sites.ts).
     */
    sites: z.array(SiteConfig).default([]),
  })
  .strict()
  .superRefine((c, ctx) => {
    for (const issue of siteConfigIssues(c.sites)) ctx.addIssue({ code: "custom", path: ["sites", ...issue.path], message: issue.message });
    const seen = new Map<string, number>();
    c.accounts.forEach((a, i) => {
      const id = accountLabel(a);
      const first = seen.get(id);
      if (first !== undefined) ctx.addIssue({ code: "custom", path: ["accounts", i], message: `${id} is already configured as accounts.${first}` });
      else seen.set(id, i);
    });
  });
export type InventoryConfig = z.infer<typeof InventoryConfig>;
export type InventoryConfigInput = z.input<typeof InventoryConfig>;

/** "aws:123456789012", "azure:<subscription>", "gcp:<project>", "onprem:<file>": how logs and errors name an account. */
export function accountLabel(a: InventoryAccountConfig): string {
  switch (a.provider) {
    case "aws":
      return `aws:${a.account}`;
    case "azure":
      return `azure:${a.subscriptionId.toLowerCase()}`;
    case "gcp":
      return `gcp:${a.project}`;
    case "onprem":
      return `onprem:${a.file}`;
  }
}

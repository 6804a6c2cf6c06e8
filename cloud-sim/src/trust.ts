/**
 * What a controller must trust to verify a simulator's signed instance documents, written as
 * files (main.ts `--trust-out <dir>`): the names below, one set per cloud, in the formats the
 * controller's `inventory.instanceIdentity` options read (PEM files, a JWKS).
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { JSONWebKeySet } from "jose";

export const SIM_TRUST_FILES = {
  /** The AWS signing certificate (for every region: `aws.certificates: {"*": <file>}`). */
  aws: "aws-identity.pem",
  /** Azure: `azure.rootsFile` and `azure.intermediatesFile`. */
  azureRoots: "azure-attest-roots.pem",
  azureIntermediates: "azure-attest-intermediates.pem",
  /** GCP: `gcp.jwksFile`. */
  gcpJwks: "gcp-jwks.json",
} as const;

export type SimIdentity = { certificatePem: string } | { rootPem: string; intermediatePem: string } | { jwks: JSONWebKeySet };

export type SimTrustPaths = Partial<Record<keyof typeof SIM_TRUST_FILES, string>>;

/**
 * Writes `identity`'s trust material into `dir` under SIM_TRUST_FILES names; returns the paths
 * written by role (main.ts prints them in its ready line).
 */
export async function writeSimTrust(dir: string, identity: SimIdentity): Promise<SimTrustPaths> {
  const files: [keyof typeof SIM_TRUST_FILES, string][] =
    "certificatePem" in identity
      ? [["aws", identity.certificatePem]]
      : "rootPem" in identity
        ? [
            ["azureRoots", identity.rootPem],
            ["azureIntermediates", identity.intermediatePem],
          ]
        : [["gcpJwks", `${JSON.stringify(identity.jwks, null, 2)}\n`]];
  const paths: SimTrustPaths = {};
  for (const [role, text] of files) {
    const path = join(dir, SIM_TRUST_FILES[role]);
    await writeFile(path, text);
    paths[role] = path;
  }
  return paths;
}

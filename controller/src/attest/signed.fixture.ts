/**
 * Test fixture (not built into dist): signed instance documents for the controller's tests, made
 * by the cloud simulators' own signers (cloud-sim), and an `inventory.instanceIdentity` config that
 * trusts exactly those signers, written to a temporary directory.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  azureTimestamp,
  createAwsIdentitySigner,
  createAzureAttestedSigner,
  createGcpIdentitySigner,
  writeSimTrust,
  type AwsIdentitySigner,
  type AzureAttestedSigner,
  type GcpIdentitySigner,
} from "@weft/cloud-sim";
import type { AwsAttestation, AzureAttestation, GcpAttestation } from "@weft/protocol";
import { InstanceIdentityConfig, type InstanceIdentityConfigInput } from "./config.js";
import { AttestationRejectedError } from "./errors.js";
import { loadTrust, type TrustMaterial } from "./trust.js";

export const TEST_AUDIENCE = "https://controller.test:8080";

export interface SimSigners {
  aws: AwsIdentitySigner;
  azure: AzureAttestedSigner;
  gcp: GcpIdentitySigner;
  /** `inventory.instanceIdentity` trusting these signers only. */
  config: InstanceIdentityConfigInput;
  trust: TrustMaterial;
  cleanup(): Promise<void>;
}

/** Fresh signers for the three clouds, their trust files in a temp dir, and the config naming them. */
export async function simSigners(audience: string | undefined = TEST_AUDIENCE): Promise<SimSigners> {
  const [aws, azure, gcp] = await Promise.all([createAwsIdentitySigner(), createAzureAttestedSigner(), createGcpIdentitySigner()]);
  const dir = await mkdtemp(join(tmpdir(), "weft-trust-"));
  const paths = {
    ...(await writeSimTrust(dir, { certificatePem: aws.certificatePem })),
    ...(await writeSimTrust(dir, { rootPem: azure.rootPem, intermediatePem: azure.intermediatePem })),
    ...(await writeSimTrust(dir, { jwks: gcp.jwks })),
  };
  const config: InstanceIdentityConfigInput = {
    aws: { certificates: { "*": paths.aws! } },
    azure: { rootsFile: paths.azureRoots!, intermediatesFile: paths.azureIntermediates! },
    gcp: { jwksFile: paths.gcpJwks!, ...(audience === undefined ? {} : { audience }) },
  };
  return { aws, azure, gcp, config, trust: await loadTrust(InstanceIdentityConfig.parse(config)), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface AwsDoc {
  accountId: string;
  instanceId: string;
  region: string;
  availabilityZone: string;
  pendingTime: string;
  privateIp: string | null;
}

/** The identity document's text as IMDS serves it (all fields, EC2's order). */
export function awsDocumentText(d: AwsDoc): string {
  return JSON.stringify(
    {
      accountId: d.accountId,
      architecture: "x86_64",
      availabilityZone: d.availabilityZone,
      billingProducts: null,
      devpayProductCodes: null,
      marketplaceProductCodes: null,
      imageId: "ami-0abcdef1234567890",
      instanceId: d.instanceId,
      instanceType: "t3.micro",
      kernelId: null,
      pendingTime: d.pendingTime,
      privateIp: d.privateIp,
      ramdiskId: null,
      region: d.region,
      version: "2017-09-30",
    },
    null,
    2,
  );
}

export async function awsAttestation(signer: AwsIdentitySigner, d: AwsDoc): Promise<AwsAttestation> {
  const document = awsDocumentText(d);
  return { provider: "aws", document, signature: await signer.rsa2048(document, new Date()) };
}

export interface AzureDoc {
  vmId: string;
  subscriptionId: string;
  nonce: string;
  /** Default now. */
  createdOn?: Date;
  /** Default createdOn + 6 h. */
  expiresOn?: Date;
}

/** The attested document's content, signed as IMDS signs it. */
export async function azureAttestation(signer: AzureAttestedSigner, d: AzureDoc): Promise<AzureAttestation> {
  const created = d.createdOn ?? new Date();
  const content = {
    licenseType: "",
    nonce: d.nonce,
    plan: { name: "", product: "", publisher: "" },
    sku: "",
    subscriptionId: d.subscriptionId,
    timeStamp: { createdOn: azureTimestamp(created), expiresOn: azureTimestamp(d.expiresOn ?? new Date(created.getTime() + 6 * 3_600_000)) },
    vmId: d.vmId,
  };
  return { provider: "azure", signature: await signer.sign(JSON.stringify(content), created) };
}

export interface GcpDoc {
  instanceId: string;
  projectId: string;
  zone: string;
  audience?: string;
  /** Default now. */
  issuedAt?: Date;
  /** Default true (format=full). */
  full?: boolean;
}

export async function gcpAttestation(signer: GcpIdentitySigner, d: GcpDoc): Promise<GcpAttestation> {
  const token = await signer.token({
    audience: d.audience ?? TEST_AUDIENCE,
    full: d.full ?? true,
    instanceId: d.instanceId,
    instanceName: `vm-${d.instanceId}`,
    projectId: d.projectId,
    projectNumber: "123456789012",
    zone: d.zone,
    createdAt: new Date(Date.now() - 86_400_000),
    issuedAt: d.issuedAt ?? new Date(),
  });
  return { provider: "gcp", token };
}

/** The refusal `p` ends in (its reason and message); throws when it succeeds or fails otherwise. */
export async function rejection(p: Promise<unknown>): Promise<{ reason: string; message: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof AttestationRejectedError)) throw new Error(`got ${err === undefined ? "success" : String(err)}, want an AttestationRejectedError`);
  return { reason: err.reason, message: err.message };
}

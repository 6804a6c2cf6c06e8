/**
 * The trust material the verifiers use, loaded once at start: the shipped files of
 * controller/data/trust (real AWS, Microsoft and Google keys; SOURCES.md) unless the config names
 * others. A file that is missing or holds nothing usable stops the controller with its name.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { createLocalJWKSet, createRemoteJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from "jose";
import type * as pkijs from "pkijs";
import type { InstanceIdentityConfig } from "./config.js";
import { parsePemCertificates } from "./pkcs7.js";

/** controller/data/trust, from src/attest and from dist/attest alike. */
export const SHIPPED_TRUST_DIR = fileURLToPath(new URL("../../data/trust/", import.meta.url));

export interface AwsTrust {
  /** Signing certificates by region; `*` for any region. */
  byRegion: ReadonlyMap<string, pkijs.Certificate[]>;
  /** Where they came from, for messages. */
  source: string;
}

export interface AzureTrust {
  roots: pkijs.Certificate[];
  intermediates: pkijs.Certificate[];
  source: string;
}

export interface GcpTrust {
  audience: string | undefined;
  keys: JWTVerifyGetKey;
  source: string;
}

export interface TrustMaterial {
  aws: AwsTrust;
  azure: AzureTrust;
  gcp: GcpTrust;
}

/** The trust configuration could not be loaded: names the file and what is wrong with it. */
export class TrustConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TrustConfigError";
  }
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new TrustConfigError(`${what}: cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

async function pemFile(path: string, what: string): Promise<pkijs.Certificate[]> {
  let certs: pkijs.Certificate[];
  try {
    certs = parsePemCertificates(await readText(path, what), `${what} ${path}`);
  } catch (err) {
    if (err instanceof TrustConfigError) throw err;
    throw new TrustConfigError((err as Error).message, { cause: err });
  }
  if (certs.length === 0) throw new TrustConfigError(`${what}: ${path} holds no PEM certificate`);
  return certs;
}

async function loadAws(config: InstanceIdentityConfig["aws"], dir: string): Promise<AwsTrust> {
  const byRegion = new Map<string, pkijs.Certificate[]>();
  if (config.certificates !== undefined) {
    for (const [region, path] of Object.entries(config.certificates)) byRegion.set(region, await pemFile(path, `inventory.instanceIdentity.aws.certificates.${region}`));
    return { byRegion, source: "inventory.instanceIdentity.aws.certificates" };
  }
  const path = `${dir}aws-rsa2048.json`;
  let doc: { certificates?: Record<string, string> };
  try {
    doc = JSON.parse(await readText(path, "shipped AWS certificates")) as typeof doc;
  } catch (err) {
    throw new TrustConfigError(`shipped AWS certificates ${path}: ${(err as Error).message}`, { cause: err });
  }
  for (const [region, pem] of Object.entries(doc.certificates ?? {})) byRegion.set(region, parsePemCertificates(pem, `${path} ${region}`));
  if (byRegion.size === 0) throw new TrustConfigError(`shipped AWS certificates ${path}: no certificates`);
  return { byRegion, source: "AWS's published RSA-2048 certificates (data/trust/aws-rsa2048.json)" };
}

async function loadAzure(config: InstanceIdentityConfig["azure"], dir: string): Promise<AzureTrust> {
  const roots = await pemFile(config.rootsFile ?? `${dir}azure-roots.pem`, "inventory.instanceIdentity.azure.rootsFile");
  const intermediates = await pemFile(config.intermediatesFile ?? `${dir}azure-intermediates.pem`, "inventory.instanceIdentity.azure.intermediatesFile");
  return { roots, intermediates, source: config.rootsFile ?? "Microsoft's roots (data/trust/azure-roots.pem)" };
}

async function loadGcp(config: InstanceIdentityConfig["gcp"], dir: string): Promise<GcpTrust> {
  if (config.jwksUrl !== undefined) return { audience: config.audience, keys: createRemoteJWKSet(new URL(config.jwksUrl)), source: config.jwksUrl };
  const path = config.jwksFile ?? `${dir}gcp-jwks.json`;
  let jwks: JSONWebKeySet;
  try {
    jwks = JSON.parse(await readText(path, "inventory.instanceIdentity.gcp.jwksFile")) as JSONWebKeySet;
    if (!Array.isArray(jwks.keys) || jwks.keys.length === 0) throw new Error("no keys");
    return { audience: config.audience, keys: createLocalJWKSet(jwks), source: config.jwksFile ?? "a dated copy of Google's keys (data/trust/gcp-jwks.json)" };
  } catch (err) {
    if (err instanceof TrustConfigError) throw err;
    throw new TrustConfigError(`inventory.instanceIdentity.gcp.jwksFile ${path}: not a JWKS ({"keys": [...]}): ${(err as Error).message}`, { cause: err });
  }
}

/** Loads what `config` names, the shipped files (from `dir`) for the rest. */
export async function loadTrust(config: InstanceIdentityConfig, dir = SHIPPED_TRUST_DIR): Promise<TrustMaterial> {
  const [aws, azure, gcp] = await Promise.all([loadAws(config.aws, dir), loadAzure(config.azure, dir), loadGcp(config.gcp, dir)]);
  return { aws, azure, gcp };
}

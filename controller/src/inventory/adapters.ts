/**
 * One configured account → its @weft/cloud adapter. Each provider's SDK is imported lazily, on the
 * first sync of an account of that provider: a controller without inventory accounts loads none,
 * one with AWS accounts only never loads Azure's or GCP's (GCP's alone is ~500 modules).
 *
 * Credentials: each SDK's default chain (see config.ts). AWS static credentials are the SDK's own
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. For simulators and a token obtained out of band,
 * WEFT_INVENTORY_AZURE_TOKEN gives Azure a static ARM bearer token instead of
 * DefaultAzureCredential. GCP uses application default credentials only
 * (GOOGLE_APPLICATION_CREDENTIALS, the metadata server's service account).
 */
import { readFile } from "node:fs/promises";
import type { InventoryAdapter } from "@weft/cloud";
import type { Logger } from "@weft/protocol";
import type { InventoryAccountConfig } from "./config.js";

/** Builds the adapter of one account; throws when it cannot (an unreadable CA file, say). */
export type AdapterFactory = (account: InventoryAccountConfig, ctx: { log: Logger }) => Promise<InventoryAdapter>;

/** An adapter that holds sockets or clients may release them. */
export type ClosableAdapter = InventoryAdapter & { close?: () => void | Promise<void> };

export const defaultAdapterFactory: AdapterFactory = async (a, { log }) => {
  switch (a.provider) {
    case "aws": {
      const { AwsInventory } = await import("@weft/cloud/aws");
      return new AwsInventory({ account: a.account, regions: a.regions, ...(a.endpoint ? { endpoint: a.endpoint } : {}), logger: log });
    }
    case "azure": {
      const { AzureInventory } = await import("@weft/cloud/azure");
      const caPem = a.caFile === undefined ? undefined : await readText(a.caFile, "caFile");
      const token = process.env.WEFT_INVENTORY_AZURE_TOKEN;
      const credential = token ? { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }) } : undefined;
      return new AzureInventory({
        subscriptionId: a.subscriptionId,
        ...(a.endpoint ? { endpoint: a.endpoint } : {}),
        ...(caPem ? { caPem } : {}),
        ...(credential ? { credential } : {}),
      });
    }
    case "gcp": {
      const { GcpInventory } = await import("@weft/cloud/gcp");
      return new GcpInventory({
        project: a.project,
        ...(a.apiEndpoint ? { apiEndpoint: a.apiEndpoint } : {}),
        ...(process.env.WEFT_INVENTORY_GCP_TOKEN ? { accessToken: process.env.WEFT_INVENTORY_GCP_TOKEN } : {}),
      });
    }
    case "onprem": {
      const { OnpremInventory } = await import("@weft/cloud/onprem");
      return OnpremInventory.fromFile(a.file);
    }
  }
};

async function readText(path: string, field: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new Error(`${field} ${path}: ${(err as Error).message}`, { cause: err });
  }
}

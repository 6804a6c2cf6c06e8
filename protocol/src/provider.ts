/**
 * Where a node or an instance lives: one of the three clouds Weft lists, or on-prem. The only
 * definition of these names; everything else (inventory records, enrollment claims and selectors,
 * the agent's `--cloud`, the cloud adapters, the lab) imports them from here.
 */
import { z } from "zod";

export const CloudProvider = z.enum(["aws", "azure", "gcp", "onprem"]);
export type CloudProvider = z.infer<typeof CloudProvider>;

/**
 * The providers with an instance metadata service, from which an agent reads which instance it
 * runs on (`weft agent --cloud`): every provider but on-prem.
 */
export const MetadataProvider = CloudProvider.exclude(["onprem"]);
export type MetadataProvider = z.infer<typeof MetadataProvider>;

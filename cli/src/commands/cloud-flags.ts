/**
 * `--cloud`, `--metadata-endpoint` and `--cloud-audience` as the agent config's `cloud` section,
 * shared by `weft agent` and `weft up` (its own module, so `weft up` does not load the agent).
 */
import { MetadataProvider } from "@weft/protocol";
import { UsageError } from "../errors.js";

/** The config's `cloud` from the flags (only the keys given, so a config file's stay). */
export function cloudFlags(cloud: string | undefined, metadataEndpoint: string | undefined, audience?: string): Record<string, string> | undefined {
  if (cloud !== undefined && !MetadataProvider.safeParse(cloud).success) throw new UsageError(`--cloud ${cloud}: want one of ${MetadataProvider.options.join(", ")}`);
  if (cloud === undefined && metadataEndpoint === undefined && audience === undefined) return undefined;
  return { ...(cloud === undefined ? {} : { provider: cloud }), ...(metadataEndpoint === undefined ? {} : { metadataEndpoint }), ...(audience === undefined ? {} : { audience }) };
}

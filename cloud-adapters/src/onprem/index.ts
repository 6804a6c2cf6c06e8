/**
 * On-prem inventory: a YAML file an administrator keeps (schema.ts documents it), read again on
 * every fetch, so editing the file is how hosts are added, retagged and removed. A file that
 * cannot be read or does not validate throws InventoryFileError naming the file and the field;
 * a consumer must treat that as a failed fetch, never as "every host is gone".
 */
import { readFile, stat } from "node:fs/promises";
import { parseDocument } from "yaml";
import { InventoryFileError } from "../errors.js";
import type { Instance, InventoryAdapter, InventorySnapshot, Network } from "../model.js";
import { describeIssues, ONPREM_LIMITS, OnpremFile } from "./schema.js";

export { OnpremFile, describeIssues as describeOnpremIssues } from "./schema.js";

/** Reads, parses and validates one inventory file. */
export async function readOnpremFile(path: string): Promise<OnpremFile> {
  let text: string;
  try {
    const size = (await stat(path)).size;
    if (size > ONPREM_LIMITS.fileBytes) throw new Error(`${size} bytes, over the ${ONPREM_LIMITS.fileBytes}-byte limit`);
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new InventoryFileError(`${path}: cannot read: ${(err as Error).message}`, err);
  }
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length) {
    const first = doc.errors[0]!;
    const line = first.linePos?.[0];
    throw new InventoryFileError(`${path}${line ? `:${line.line}:${line.col}` : ""}: not valid YAML: ${first.message.split("\n")[0]}`, first);
  }
  const parsed = OnpremFile.safeParse(doc.toJS(), { reportInput: true });
  if (!parsed.success) throw new InventoryFileError(`${path}: ${describeIssues(parsed.error).join("; ")}`, parsed.error);
  return parsed.data;
}

export function onpremSnapshot(f: OnpremFile, fetchedAt = new Date()): InventorySnapshot {
  const instances: Instance[] = f.instances.map((h) => ({
    provider: "onprem",
    account: f.site,
    region: f.site,
    network: h.network,
    id: h.id,
    name: h.name ?? h.id,
    privateIps: [...h.privateIps],
    publicIps: [...(h.publicIps ?? [])],
    tags: { ...(h.tags ?? {}) },
    state: h.state ?? "running",
  }));
  const networks: Network[] = f.networks.map((n) => ({ provider: "onprem", account: f.site, region: f.site, id: n.id, name: n.id, cidrs: [...n.cidrs], subnets: [] }));
  return { provider: "onprem", account: f.site, fetchedAt: fetchedAt.toISOString(), complete: true, instances, networks, issues: [] };
}

export class OnpremInventory implements InventoryAdapter {
  readonly provider = "onprem" as const;

  private constructor(
    readonly path: string,
    readonly account: string,
  ) {}

  /** Reads and validates the file once (its site is the adapter's account). */
  static async fromFile(path: string): Promise<OnpremInventory> {
    const f = await readOnpremFile(path);
    return new OnpremInventory(path, f.site);
  }

  async fetch(signal?: AbortSignal): Promise<InventorySnapshot> {
    signal?.throwIfAborted();
    const f = await readOnpremFile(this.path);
    if (f.site !== this.account) throw new InventoryFileError(`${this.path}: site: changed from "${this.account}" to "${f.site}"; a file describes one site (restart to change it)`);
    return onpremSnapshot(f);
  }
}

/**
 * The agent's persistent state: enrollment result and the last applied peers, policy and
 * workloads, in `<stateDir>/state.json` (mode 0600, written atomically). A restarted agent
 * restores from it without re-enrolling and re-applies the cached peers before it reaches NATS
 * (fail static). The running agent reads and changes it only through `StateHolder` (holder.ts).
 */
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AnyNodePolicyRecord, NodeServicesRecord, PeerRecord, Workload, cidr, ipv4, nodeId, nodeName, parseEndpoint, sessionEpoch, siteName, wireguardKey } from "@weft/protocol";
import { z } from "zod";
import { StateError } from "../errors.js";

/** An endpoint WireGuard learned: ip:port or [ipv6]:port. */
const learnedEndpoint = z.string().refine((s) => parseEndpoint(s, { ipv6: true }) !== undefined, { message: "must be ip:port or [ipv6]:port" });

export const AgentState = z.object({
  version: z.literal(1),
  nodeId,
  name: nodeName,
  site: siteName,
  /** Read by `weft lab status` and `weft status`. */
  overlayAddress: ipv4,
  overlayCidr: cidr,
  controllerUrl: z.string(),
  /** NATS: `tls://` URLs, this node's user JWT (renewed by session/credentials.ts) and the CA its servers' certificates chain to. */
  nats: z.object({ servers: z.array(z.string()).min(1), userJwt: z.string(), caPem: z.string().optional() }),
  heartbeatSeconds: z.number().int().positive(),
  enrolledAt: z.string(),
  /** Renewed whenever the WireGuard interface is created afresh; see peers/epochs.ts. */
  sessionEpoch: sessionEpoch.optional(),
  /** This node's workload prefix and the whole workload range (routed through the interface). */
  workloadPrefix: cidr.optional(),
  workloadCidr: cidr.optional(),
  /** The workloads the controller last recorded for this node (addresses, identities). */
  workloads: z.array(Workload).optional(),
  /** The last node policy applied to the datapath (its chunks joined), restored before NATS is reached; a version-1 record is read as version 2. */
  appliedPolicy: z.object({ revision: z.number().int().nonnegative(), record: AnyNodePolicyRecord.nullable() }).optional(),
  /** The last node services record applied to the datapath, restored before NATS is reached. */
  appliedServices: z.object({ revision: z.number().int().nonnegative(), record: NodeServicesRecord.nullable() }).optional(),
  /** Where the peers this node has no endpoint for last reached it from, by public key (peers/remembered-endpoints.ts). */
  rememberedEndpoints: z.record(wireguardKey, learnedEndpoint).optional(),
  applied: z
    .object({
      /** Highest peers-bucket revision applied. */
      revision: z.number().int().nonnegative(),
      peers: z.array(PeerRecord),
      appliedAt: z.string(),
    })
    .optional(),
});
export type AgentState = z.infer<typeof AgentState>;

export const STATE_FILE = "state.json";
export const WIREGUARD_KEY_FILE = "wireguard.key";
export const NATS_SEED_FILE = "nats.seed";

export async function ensureStateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}

export async function loadState(dir: string): Promise<AgentState | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, STATE_FILE), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new StateError(`cannot read ${join(dir, STATE_FILE)}`, { cause: err });
  }
  try {
    return AgentState.parse(JSON.parse(text));
  } catch (err) {
    throw new StateError(`${join(dir, STATE_FILE)} is corrupt; move it away to enroll again (the node must be deleted on the controller first)`, { cause: err });
  }
}

export async function saveState(dir: string, state: AgentState): Promise<void> {
  await writeFileAtomic(join(dir, STATE_FILE), `${JSON.stringify(AgentState.parse(state), null, 2)}\n`);
}

let tmpSeq = 0;

export async function writeFileAtomic(path: string, content: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${++tmpSeq}.tmp`;
  await writeFile(tmp, content, { mode: 0o600 });
  await rename(tmp, path);
}

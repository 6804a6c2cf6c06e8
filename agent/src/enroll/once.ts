/**
 * The first start of a node: enroll with the controller until it answers (an unreachable
 * controller or metadata service is retried, 1 s doubling up to 30 s; a refusal ends the agent
 * with the controller's message) and return the state to keep. The controller's CA is written
 * here; the state itself is written by its owner (state/holder.ts), and its presence marks the
 * enrollment done. A restarted agent never comes here.
 */
import { join } from "node:path";
import type { EnrollRequest } from "@weft/protocol";
import type { Logger } from "pino";
import { isRetryable, retry } from "@weft/util";
import type { AgentConfig } from "../config.js";
import { AgentError } from "../errors.js";
import { defaultRouteAddress } from "../net/underlay.js";
import type { NatsIdentity } from "../state/nkey.js";
import { writeFileAtomic, type AgentState } from "../state/store.js";
import { CONTROLLER_CA_FILE, enroll, requestNonce } from "./client.js";
import { readInstanceAttestation } from "./instance.js";
import { readJoinKeyFile } from "./join-key-file.js";

export async function enrollOnce(config: AgentConfig, wireguardPublicKey: string, nats: NatsIdentity, log: Logger): Promise<AgentState> {
  const controllerUrl = config.controllerUrl;
  const joinKey = config.joinKey ?? (config.joinKeyFile === undefined ? undefined : await readJoinKeyFile(config.joinKeyFile));
  if (!controllerUrl || (!joinKey && !config.cloud)) {
    throw new AgentError("this node is not enrolled yet: pass --controller <url> and --join-key <key> (or WEFT_JOIN_KEY), or --cloud <provider> to join by instance identity");
  }
  const privateAddress = config.endpoints.private ?? (await defaultEndpoint(config.interface.listenPort));
  const req: EnrollRequest = {
    version: 1,
    ...(joinKey ? { joinKey } : {}),
    name: config.name,
    ...(config.site === undefined ? {} : { site: config.site }),
    wireguardPublicKey,
    natsPublicKey: nats.publicKey,
    listenPort: config.interface.listenPort,
    endpoints: {
      ...(privateAddress === undefined ? {} : { private: privateAddress }),
      ...(config.endpoints.public === undefined ? {} : { public: config.endpoints.public }),
    },
  };
  if (new URL(controllerUrl).protocol === "http:") log.warn({ controller: controllerUrl }, "enrolling over plain HTTP: the join key crosses the network in clear text");
  const { response: res, caPem } = await retry(
    async () => {
      // Read on every attempt: early in boot the metadata service may not answer yet, and an
      // Azure document carries a fresh single-use nonce.
      if (config.cloud) {
        req.attestation = await readInstanceAttestation(config.cloud, {
          controllerUrl,
          nonce: async () => (await requestNonce(controllerUrl, { caHash: config.controllerCaHash })).nonce,
        });
      }
      return enroll(controllerUrl, req, { caHash: config.controllerCaHash });
    },
    {
      initialMs: 1000,
      maxMs: 30_000,
      retryIf: isRetryable,
      onRetry: (err, delay) => log.warn({ err: err instanceof Error ? err.message : String(err), retryInMs: delay }, "enrollment failed; retrying"),
    },
  );
  // The CA the controller proved itself with; state.json (written next, by its owner) marks the enrollment done.
  if (caPem !== undefined) await writeFileAtomic(join(config.stateDir, CONTROLLER_CA_FILE), caPem);
  const site = res.site ?? config.site;
  if (site === undefined) throw new AgentError("enrolled, but the controller did not say this node's site (a controller before sites were bound): pass --site");
  log.info({ node: res.nodeId, site, overlay: res.overlayAddress }, "enrolled");
  return {
    version: 1,
    nodeId: res.nodeId,
    name: config.name,
    site,
    overlayAddress: res.overlayAddress,
    overlayCidr: res.overlayCidr,
    controllerUrl,
    nats: res.nats,
    heartbeatSeconds: res.heartbeatSeconds,
    ...(res.workloadPrefix ? { workloadPrefix: res.workloadPrefix } : {}),
    ...(res.workloadCidr ? { workloadCidr: res.workloadCidr } : {}),
    enrolledAt: new Date().toISOString(),
  };
}

async function defaultEndpoint(port: number): Promise<string | undefined> {
  const address = await defaultRouteAddress().catch(() => undefined);
  return address === undefined ? undefined : `${address}:${port}`;
}

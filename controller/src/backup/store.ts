/**
 * Reaching the store for a backup or restore: the configured NATS (`nats.urls` / `nats.url`), or
 * the embedded server of the state directory — for a backup, the running controller's (its port,
 * on 127.0.0.1); for a restore into a fresh state directory, one started for the restore alone
 * and stopped after it. The connection is a controller user of the state directory's authority,
 * over TLS trusting `nats.caFile` or the controller's own CA.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { Buckets } from "@weft/protocol";
import { retry } from "@weft/util";
import type { Logger } from "pino";
import { connectController, kvStreamName, loadAuthority } from "../nats/index.js";
import { startEmbeddedNats, type EmbeddedNats } from "../nats/embedded.js";
import { CA_CERT_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE, TLS_DIR } from "../tls/index.js";
import { classifyStoreError, explainStoreError } from "../store/failures.js";
import { BackupError } from "./errors.js";

export interface StoreTarget {
  stateDir: string;
  /** External NATS URLs (a cluster: several); absent: the embedded server of stateDir. */
  urls?: string[];
  /** Embedded server's port (a backup connects to the running controller's). Default 4222. */
  embeddedPort?: number;
  /** The CA file of an external NATS (nats.caFile); default the controller's CA. */
  caFile?: string;
  log: Logger;
}

export interface StoreConnection {
  nc: NatsConnection;
  jsm: JetStreamManager;
  close(): Promise<void>;
}

/** Every Weft bucket's stream name. */
export function weftStreams(): string[] {
  return Object.values(Buckets).map((b) => kvStreamName(b));
}

/** The Weft streams that exist in the store. */
export async function existingWeftStreams(jsm: JetStreamManager): Promise<string[]> {
  const wanted = new Set(weftStreams());
  const found: string[] = [];
  for await (const name of jsm.streams.names()) if (wanted.has(name)) found.push(name);
  return found.sort();
}

/**
 * Connects to the store. `startEmbedded`: with no external URLs, start the state directory's
 * embedded server (on a free loopback port) for the duration; else connect to the running one.
 */
export async function openStore(t: StoreTarget, startEmbedded: boolean): Promise<StoreConnection> {
  const authority = await loadAuthority(join(t.stateDir, "authority")).catch((cause: unknown) => {
    throw new BackupError(`cannot load the NATS authority of ${t.stateDir}: ${(cause as Error).message}`, { cause });
  });
  const caPath = t.caFile ?? join(t.stateDir, TLS_DIR, CA_CERT_FILE);
  const caPem = await readFile(caPath, "utf8").catch((cause: unknown) => {
    throw new BackupError(`cannot read the NATS CA ${caPath}: ${(cause as Error).message}`, { cause });
  });
  let embedded: EmbeddedNats | undefined;
  let servers = t.urls;
  if (!servers) {
    if (startEmbedded) {
      embedded = await startEmbeddedNats({
        stateDir: t.stateDir,
        host: "127.0.0.1",
        port: 0,
        authority,
        tls: { certFile: join(t.stateDir, TLS_DIR, SERVER_CERT_FILE), keyFile: join(t.stateDir, TLS_DIR, SERVER_KEY_FILE) },
        logger: t.log.child({ component: "nats" }),
      });
      servers = [embedded.url];
    } else {
      servers = [`tls://127.0.0.1:${t.embeddedPort ?? 4222}`];
    }
  }
  let nc: NatsConnection;
  try {
    nc = await connectController({ servers, authority, caPem, name: "weft-backup", logger: t.log.child({ component: "nats-client" }) });
  } catch (cause) {
    await embedded?.stop();
    const hint = t.urls
      ? "check nats.urls, and that each nats-server trusts this state directory's authority (weft nats-config --state-dir …)"
      : startEmbedded
        ? "the embedded nats-server did not accept the controller"
        : "is the controller (and its embedded NATS) running? A backup reads the running store";
    throw new BackupError(`cannot connect to NATS at ${servers.join(", ")}: ${(cause as Error).message}; ${hint}`, { cause });
  }
  // A cluster that just started elects its JetStream meta leader first (an operator restores right
  // after starting the servers): wait for it, as the controller does at start.
  let jsm: JetStreamManager;
  try {
    jsm = await retry(() => jetstreamManager(nc), {
      initialMs: 500,
      maxMs: 3000,
      maxAttempts: 20,
      retryIf: (err) => classifyStoreError(err) !== "permanent",
      onRetry: (err, delayMs) => t.log.warn({ err: explainStoreError(err), retryInMs: delayMs }, "waiting for NATS JetStream to answer"),
    });
  } catch (cause) {
    await nc.close().catch(() => undefined);
    await embedded?.stop();
    throw new BackupError(`NATS at ${servers.join(", ")} accepted the connection but JetStream does not answer: ${explainStoreError(cause)}; is JetStream enabled and a majority of the cluster's servers up?`, { cause });
  }
  return {
    nc,
    jsm,
    close: async () => {
      await nc.drain().catch(() => nc.close());
      await embedded?.stop();
    },
  };
}

/**
 * `weft controller restore`: the state files into the state directory, then every bucket into the
 * store (snapshot.ts, checked against the backup's revisions), its revisions then moved past any
 * written since the backup (advance.ts). Agents keep their credentials (the same authority signs
 * the account they chain to), the CA pin and their SVIDs' trust domain CA, so they reconnect,
 * take the restored records as newer than what they hold, and carry on without enrolling again.
 *
 * Refused unless `force` when the target is not empty: an identity file (files.ts) that exists
 * with other contents, or any Weft bucket already in the store. With `force`, the store's Weft buckets are
 * deleted first and the files replaced.
 */
import type { Logger } from "pino";
import { retry } from "@weft/util";
import { readBackup } from "./archive.js";
import { BackupError, RestoreTargetNotEmptyError } from "./errors.js";
import { conflictingStateFiles, writeStateFiles } from "./files.js";
import { advanceRevisions } from "./advance.js";
import { restoreStream } from "./snapshot.js";
import { existingWeftStreams, openStore, type StoreTarget } from "./store.js";

export interface RestoreOptions extends StoreTarget {
  path: string;
  /** Replica count of every restored bucket (nats.replicas); default: as in the backup. */
  replicas?: number;
  force?: boolean;
}

export interface RestoreResult {
  createdAt: string;
  /** Per bucket: its records, its last revision in the backup, and its last revision as restored (REVISION_GAP past the backup's; advance.ts). */
  streams: { stream: string; messages: number; backupLastSeq: number; lastSeq: number }[];
  files: string[];
  /** Weft buckets deleted first (force). */
  replaced: string[];
}

export async function restoreController(opts: RestoreOptions): Promise<RestoreResult> {
  const log: Logger = opts.log.child({ component: "restore" });
  const backup = await readBackup(opts.path);
  const differ = await conflictingStateFiles(opts.stateDir, backup.files);
  if (differ.length > 0 && !opts.force) throw new RestoreTargetNotEmptyError(differ.map((p) => `${opts.stateDir}/${p}`));
  await writeStateFiles(opts.stateDir, backup.files);
  log.info({ stateDir: opts.stateDir, files: backup.files.map((f) => f.path), replaced: differ }, "state files restored");

  const store = await openStore(opts, true);
  const streams: RestoreResult["streams"] = [];
  let replaced: string[] = [];
  try {
    const existing = await existingWeftStreams(store.jsm);
    if (existing.length > 0 && !opts.force) throw new RestoreTargetNotEmptyError(existing.map((s) => `stream ${s}`));
    for (const s of existing) await store.jsm.streams.delete(s);
    replaced = existing;
    if (replaced.length > 0) log.warn({ streams: replaced }, "deleted the store's Weft buckets (--force)");
    for (const snap of backup.streams) {
      // A cluster that has just started may refuse to create a stream for a moment ("error creating
      // store for stream", seen at R3 on a busy machine): try again, without what the attempt left.
      const restoreOnce = async (attempt: number) => {
        if (attempt > 1) await store.jsm.streams.delete(snap.stream).catch(() => false);
        return restoreStream(store.nc, snap, opts.replicas);
      };
      const state = await retry(restoreOnce, {
        initialMs: 500,
        maxMs: 4000,
        maxAttempts: 5,
        onRetry: (err, delayMs, attempt) => log.warn({ stream: snap.stream, attempt, retryInMs: delayMs, err }, "restoring a bucket failed; trying again"),
      });
      if (state.last_seq !== snap.state.last_seq || state.messages !== snap.state.messages) {
        throw new BackupError(
          `restore of ${snap.stream}: the store holds ${state.messages} messages up to revision ${state.last_seq}, the backup ${snap.state.messages} up to ${snap.state.last_seq}`,
        );
      }
      // Past every revision written since the backup, so agents holding one take the restored records as newer (advance.ts).
      const moved = await advanceRevisions(store.nc, snap.stream, state, { log });
      log.info({ stream: snap.stream, messages: moved.messages, backupRevision: state.last_seq, revision: moved.last_seq }, "bucket restored");
      streams.push({ stream: snap.stream, messages: moved.messages, backupLastSeq: state.last_seq, lastSeq: moved.last_seq });
    }
  } finally {
    await store.close();
  }
  return { createdAt: backup.createdAt, streams, files: backup.files.map((f) => f.path), replaced };
}

/**
 * `weft controller backup`: a snapshot of every Weft bucket (JetStream's own stream snapshot, so
 * every record keeps its revision) and the state files a restore needs (files.ts), written to a
 * directory or one file (archive.ts). The buckets are snapshotted one after the other while the
 * controller keeps running: each bucket is consistent in itself; a write landing between two
 * snapshots is reconciled at the restored controller's start (the registry brings node and peer
 * records in line; the leader republishes node policies and services).
 */
import { writeBackup } from "./archive.js";
import { BackupError } from "./errors.js";
import { readStateFiles } from "./files.js";
import { snapshotStream, type StreamSnapshot } from "./snapshot.js";
import { existingWeftStreams, openStore, weftStreams, type StoreTarget } from "./store.js";

export interface BackupResult {
  path: string;
  layout: "directory" | "file";
  /** Per stream: messages and last sequence (the bucket's highest revision). */
  streams: { stream: string; messages: number; lastSeq: number; bytes: number }[];
  /** State files included (paths only). */
  files: string[];
}

export async function backupController(opts: StoreTarget & { path: string }): Promise<BackupResult> {
  const log = opts.log.child({ component: "backup" });
  const files = await readStateFiles(opts.stateDir);
  const store = await openStore(opts, false);
  const streams: StreamSnapshot[] = [];
  try {
    const present = new Set(await existingWeftStreams(store.jsm));
    const missing = weftStreams().filter((s) => !present.has(s));
    if (present.size === 0) throw new BackupError("the store holds no Weft bucket: is this the controller's NATS?");
    if (missing.length > 0) log.warn({ missing }, "some Weft buckets do not exist in the store (an older controller?); backing up the others");
    for (const stream of [...present].sort()) {
      const snap = await snapshotStream(store.nc, stream);
      log.info({ stream, messages: snap.state.messages, revision: snap.state.last_seq, bytes: snap.data.length }, "bucket snapshotted");
      streams.push(snap);
    }
  } finally {
    await store.close();
  }
  const layout = await writeBackup(opts.path, { createdAt: new Date().toISOString(), streams, files });
  log.info({ path: opts.path, layout, buckets: streams.length, files: files.map((f) => f.path) }, "backup written");
  return {
    path: opts.path,
    layout,
    streams: streams.map((s) => ({ stream: s.stream, messages: s.state.messages, lastSeq: s.state.last_seq, bytes: s.data.length })),
    files: files.map((f) => f.path),
  };
}

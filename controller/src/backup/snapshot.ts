/**
 * JetStream's own stream snapshot and restore, over the JetStream API (the protocol the `nats`
 * CLI's `stream backup` / `stream restore` speak; the JS client has no helper for it):
 *
 * - snapshot: `$JS.API.STREAM.SNAPSHOT.<stream>` with a deliver subject; the server answers with
 *   the stream's config and state, then sends the snapshot (a tar of the stream's files) in chunks
 *   to the deliver subject, each with a reply subject that is acknowledged (flow control), and an
 *   empty message at the end (with a status header when it failed).
 * - restore: `$JS.API.STREAM.RESTORE.<stream>` with the config and state; the server answers with
 *   a subject to send the chunks to; each chunk is a request the server acknowledges, and an empty
 *   request ends it (the reply: the restored stream's info, or an error).
 *
 * A restored stream keeps every message with its original sequence, so the restore can check it
 * holds exactly what was snapshotted; advance.ts then moves the revisions past the backup's.
 */
import { createInbox, type NatsConnection } from "@nats-io/transport-node";
import { BackupError } from "./errors.js";

/** Chunk size asked of the server, and used when restoring. */
const CHUNK_BYTES = 128 * 1024;
/** Longest wait for one API answer or chunk. */
const TIMEOUT_MS = 10_000;

export interface StreamSnapshot {
  stream: string;
  /** The stream's configuration as the server reported it (JSON). */
  config: Record<string, unknown>;
  /** The stream's state at the snapshot (messages, first/last sequence). */
  state: { messages: number; first_seq: number; last_seq: number } & Record<string, unknown>;
  /** The snapshot archive, as the server made it. */
  data: Buffer;
}

interface ApiReply {
  error?: { code?: number; err_code?: number; description?: string };
}

function decode<T extends ApiReply>(what: string, bytes: Uint8Array): T {
  let reply: T;
  try {
    reply = JSON.parse(new TextDecoder().decode(bytes)) as T;
  } catch (cause) {
    throw new BackupError(`${what}: the server's answer is not JSON`, { cause });
  }
  if (reply.error) throw new BackupError(`${what}: ${reply.error.description ?? "refused"} (code ${reply.error.err_code ?? reply.error.code ?? "?"})`);
  return reply;
}

/** Takes a snapshot of one stream (without consumers: the controller keeps no durable ones). */
export async function snapshotStream(nc: NatsConnection, stream: string): Promise<StreamSnapshot> {
  const what = `snapshot of ${stream}`;
  const deliver = createInbox();
  const chunks: Buffer[] = [];
  let failure: Error | undefined;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  let idle: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      failure = new BackupError(`${what}: no chunk from the server for ${TIMEOUT_MS} ms`);
      finish();
    }, TIMEOUT_MS);
  };
  const sub = nc.subscribe(deliver, {
    callback: (err, msg) => {
      if (err) {
        failure = new BackupError(`${what}: ${err.message}`, { cause: err });
        finish();
        return;
      }
      if (msg.data.length === 0) {
        const code = msg.headers?.code ?? 0;
        if (code >= 400) failure = new BackupError(`${what}: the server ended the snapshot with ${code} ${msg.headers?.description ?? ""}`.trim());
        finish();
        return;
      }
      chunks.push(Buffer.from(msg.data));
      if (msg.reply) msg.respond(); // the acknowledgement the server's flow control waits for
      arm();
    },
  });
  try {
    const reply = await nc.request(`$JS.API.STREAM.SNAPSHOT.${stream}`, JSON.stringify({ deliver_subject: deliver, no_consumers: true, chunk_size: CHUNK_BYTES }), { timeout: TIMEOUT_MS });
    const info = decode<ApiReply & { config: StreamSnapshot["config"]; state: StreamSnapshot["state"] }>(what, reply.data);
    arm();
    await done;
    if (failure) throw failure;
    return { stream, config: info.config, state: info.state, data: Buffer.concat(chunks) };
  } catch (err) {
    if (err instanceof BackupError) throw err;
    throw new BackupError(`${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  } finally {
    clearTimeout(idle);
    sub.unsubscribe();
  }
}

/**
 * Restores one stream from its snapshot; `replicas` replaces the stream's replica count (a backup
 * of a single server restored into a 3-node cluster becomes R3). The stream must not exist.
 * Returns the restored stream's state.
 */
export async function restoreStream(nc: NatsConnection, snap: StreamSnapshot, replicas?: number): Promise<StreamSnapshot["state"]> {
  const what = `restore of ${snap.stream}`;
  const config = replicas === undefined ? snap.config : { ...snap.config, num_replicas: replicas };
  try {
    const start = await nc.request(`$JS.API.STREAM.RESTORE.${snap.stream}`, JSON.stringify({ config, state: snap.state }), { timeout: TIMEOUT_MS });
    const { deliver_subject: deliver } = decode<ApiReply & { deliver_subject: string }>(what, start.data);
    for (let at = 0; at < snap.data.length; at += CHUNK_BYTES) {
      const ack = await nc.request(deliver, snap.data.subarray(at, at + CHUNK_BYTES), { timeout: TIMEOUT_MS });
      if (ack.data.length > 0) decode(what, ack.data);
    }
    // The end: the server unpacks the archive and answers with the stream's info (a large stream
    // takes a while, so the wait is longer).
    const end = await nc.request(deliver, new Uint8Array(0), { timeout: TIMEOUT_MS * 6 });
    const info = decode<ApiReply & { state: StreamSnapshot["state"] }>(what, end.data);
    return info.state;
  } catch (err) {
    if (err instanceof BackupError) throw err;
    throw new BackupError(`${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

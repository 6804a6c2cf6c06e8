/**
 * WireGuard key rotation: an agent sends its new public key on `weft.v1.node.<id>.wgkey` (its own
 * subject). The controller claims `wgkey.<new>` for the node (a key another node holds is refused
 * with `conflict`), writes it into the node record through the registry (the peer record, which
 * every agent reads, is rebuilt from it), then releases the old key's claim; the reply comes once
 * both records carry the new key. The same key again is a no-op. Replies go only to the node's own
 * inbox; malformed requests are counted and logged at most once per interval.
 */
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import { KeyRotationRequest, NODE_ID_PATTERN, Subjects, type KeyRotationReply } from "@weft/protocol";
import type { Logger } from "pino";
import type { Claims } from "../ipam/claims.js";
import type { MalformedMessages } from "./malformed.js";
import type { NodeRegistry } from "./registry.js";

const ROTATION_QUEUE = "weft-wgkey";

export interface KeyRotationOptions {
  registry: Pick<NodeRegistry, "get" | "updateNode">;
  claims: Pick<Claims, "claim" | "release">;
  malformed: MalformedMessages;
  log: Logger;
}

/** Rotates `nodeId`'s WireGuard key to `publicKey` (decides nothing on the wire; tests call it directly). */
export async function rotateWireguardKey(o: KeyRotationOptions, nodeId: string, publicKey: string): Promise<KeyRotationReply> {
  const node = await o.registry.get(nodeId).catch(() => undefined);
  if (!node) return { ok: false, error: { code: "not_found", message: `node ${nodeId} does not exist` } };
  const old = node.wireguardPublicKey;
  if (old === publicKey) return { ok: true, wireguardPublicKey: publicKey };
  const claimed = await o.claims.claim("wgkey", publicKey, nodeId);
  if (!claimed.ok && claimed.owner !== nodeId) return { ok: false, error: { code: "conflict", message: `WireGuard public key ${publicKey} is already enrolled (node ${claimed.owner})` } };
  try {
    const got = await o.registry.updateNode(nodeId, (n) => (n.wireguardPublicKey === publicKey ? undefined : { ...n, wireguardPublicKey: publicKey }));
    if (got.outcome === "gone") {
      await o.claims.release("wgkey", publicKey, nodeId);
      return { ok: false, error: { code: "not_found", message: `node ${nodeId} was deleted meanwhile` } };
    }
  } catch (err) {
    await o.claims.release("wgkey", publicKey, nodeId).catch(() => undefined);
    throw err;
  }
  await o.claims.release("wgkey", old, nodeId).catch((err: unknown) => o.log.warn({ node: nodeId, err }, "cannot release the old WireGuard key's claim"));
  o.log.info({ node: nodeId, wireguardPublicKey: publicKey, previous: old }, "rotated the node's WireGuard key");
  return { ok: true, wireguardPublicKey: publicKey };
}

export function serveKeyRotation(nc: NatsConnection, o: KeyRotationOptions): Subscription {
  return nc.subscribe(Subjects.allWireguardKeys, {
    queue: ROTATION_QUEUE,
    callback: (err, msg) => {
      if (err) {
        o.log.warn({ err }, "key rotation subscription error");
        return;
      }
      void answer(msg, o);
    },
  });
}

async function answer(msg: Msg, o: KeyRotationOptions): Promise<void> {
  const nodeId = msg.subject.split(".")[3] ?? "";
  if (!NODE_ID_PATTERN.test(nodeId) || !msg.reply?.startsWith(`${Subjects.inboxPrefix(nodeId)}.`)) {
    o.malformed.note(NODE_ID_PATTERN.test(nodeId) ? nodeId : "unknown", "wgkey", "no reply inbox of the node's own");
    return;
  }
  const reply = (r: KeyRotationReply) => {
    try {
      msg.respond(JSON.stringify(r));
    } catch (err) {
      o.log.warn({ node: nodeId, err }, "cannot answer a key rotation");
    }
  };
  let body: unknown;
  try {
    body = msg.json();
  } catch {
    body = undefined;
  }
  const parsed = KeyRotationRequest.safeParse(body);
  if (!parsed.success) {
    o.malformed.note(nodeId, "wgkey", "not a KeyRotationRequest");
    return reply({ ok: false, error: { code: "invalid_request", message: `wireguardPublicKey: ${parsed.error.issues[0]?.message ?? "invalid"}` } });
  }
  try {
    reply(await rotateWireguardKey(o, nodeId, parsed.data.wireguardPublicKey));
  } catch (err) {
    o.log.warn({ node: nodeId, err }, "cannot rotate the node's WireGuard key");
    reply({ ok: false, error: { code: "store_unavailable", message: "cannot rotate now; retry" } });
  }
}

/**
 * Endpoint updates from agents on `weft.v1.node.*.endpoints`: a node whose public address moved
 * (a VM stopped and started, a re-assigned address) says so, and the registry records the new
 * public endpoint; peers follow through the peer record within a watch round trip. No
 * re-enrollment.
 *
 * Hostile input is dropped with a log line and nothing stored: a body that does not parse, one
 * naming another node than its subject, an address that is not a public unicast one (loopback,
 * link-local, multicast, broadcast, unspecified), or a node that already changed its endpoint in
 * the last `minIntervalMs` (a flapping or abusive agent cannot make every peer rewrite WireGuard
 * over and over). The NATS permissions let an agent publish only on its own subject.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { EndpointsUpdate, Subjects, nodeIdFromSubject, parseEndpoint, parseIpv4, type NodeRecord } from "@weft/protocol";
import type { Logger } from "pino";
import type { NodeRegistry } from "../nodes/registry.js";

/** Why an endpoint may not be a node's public endpoint, or undefined when it may. */
export function publicEndpointProblem(endpoint: string): string | undefined {
  const parsed = parseEndpoint(endpoint);
  if (!parsed) return "not an IPv4 ip:port";
  const ip = parseIpv4(parsed.host)!;
  const first = ip >>> 24;
  if (ip === 0) return "the unspecified address";
  if (first === 127) return "a loopback address";
  if (first === 0) return "in 0.0.0.0/8";
  if (ip >>> 16 === (169 << 8) + 254) return "a link-local address";
  if (first >= 224 && first <= 239) return "a multicast address";
  if (first >= 240) return "a reserved or broadcast address";
  return undefined;
}

/** The node record with `publicEndpoint`, or undefined when it has it already. */
export function withPublicEndpoint(node: NodeRecord, publicEndpoint: string): NodeRecord | undefined {
  if (node.endpoints.public === publicEndpoint) return undefined;
  // A node with a public endpoint needs no reflexive ones.
  const { reflexive: _r, mapping: _m, ...rest } = node.endpoints;
  return { ...node, endpoints: { ...rest, public: publicEndpoint } };
}

export interface EndpointUpdatesOptions {
  registry: Pick<NodeRegistry, "updateNode">;
  log: Logger;
  /** Whether this controller records moves (the leader); every controller hears them. Default always. */
  writes?: () => boolean;
  /** At most one recorded change per node this often (default 2 s). */
  minIntervalMs?: number;
  now?: () => number;
}

export function listenForEndpointUpdates(nc: NatsConnection, o: EndpointUpdatesOptions): Subscription {
  const last = new Map<string, number>();
  const now = o.now ?? Date.now;
  const minInterval = o.minIntervalMs ?? 2000;
  return nc.subscribe(Subjects.allEndpoints, {
    callback: (err, msg) => {
      if (err) {
        o.log.warn({ err }, "endpoint update subscription error");
        return;
      }
      const subjectNode = nodeIdFromSubject(msg.subject);
      let body: unknown;
      try {
        body = msg.json();
      } catch {
        body = undefined;
      }
      const parsed = EndpointsUpdate.safeParse(body);
      if (!parsed.success || parsed.data.nodeId !== subjectNode) {
        o.log.warn({ subject: msg.subject }, "dropping malformed endpoint update or one naming another node");
        return;
      }
      const { nodeId, public: endpoint } = parsed.data;
      if (o.writes && !o.writes()) return; // the leader records it
      const problem = publicEndpointProblem(endpoint);
      if (problem) {
        o.log.warn({ node: nodeId, endpoint, problem }, "dropping endpoint update: not a usable public endpoint");
        return;
      }
      const at = now();
      if (at - (last.get(nodeId) ?? -Infinity) < minInterval) {
        o.log.warn({ node: nodeId, endpoint }, "dropping endpoint update: the node changed its endpoint moments ago");
        return;
      }
      last.set(nodeId, at);
      o.registry
        .updateNode(nodeId, (node) => withPublicEndpoint(node, endpoint))
        .then((got) => {
          if (got.outcome === "updated") o.log.info({ node: nodeId, endpoint }, "node's public endpoint moved; peers follow");
        })
        .catch((e: unknown) => {
          last.delete(nodeId);
          o.log.warn({ node: nodeId, err: e }, "cannot record the node's new public endpoint");
        });
    },
  });
}

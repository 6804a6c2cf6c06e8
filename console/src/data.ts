/**
 * The data every view reads, fetched from the REST routes and read again when the live stream
 * names a topic (a route is read again at most once per 250 ms however many events arrive).
 */
import type { FlowsView, Identity, InventoryView, NodeView, Policy, PolicyMatrix } from "@weft/protocol";
import { useEffect, useState } from "preact/hooks";
import { followEvents, get } from "./api.js";

export interface ConsoleData {
  nodes: NodeView[];
  inventory: InventoryView | undefined;
  identities: Identity[];
  policies: Policy[];
  matrix: PolicyMatrix | undefined;
  flows: FlowsView | undefined;
  /** The live stream is open. */
  live: boolean;
  error: string | undefined;
  /** When each part was last read (ms since epoch), for tests and the status line. */
  loadedAt: Partial<Record<Part, number>>;
}

type Part = "nodes" | "inventory" | "identities" | "policies" | "matrix" | "flows";

const READS: Record<Part, string> = {
  nodes: "/v1/nodes",
  inventory: "/v1/inventory",
  identities: "/v1/identities",
  policies: "/v1/policies",
  matrix: "/v1/policy-matrix",
  flows: "/v1/flows",
};

/** Which parts each topic invalidates. */
const BY_TOPIC: Record<string, Part[]> = {
  nodes: ["nodes", "matrix", "inventory"],
  liveness: ["nodes"],
  policies: ["policies", "matrix"],
  identities: ["identities", "matrix"],
  inventory: ["inventory"],
  flows: ["flows"],
};

export function useConsoleData(): ConsoleData {
  const [data, setData] = useState<ConsoleData>({ nodes: [], inventory: undefined, identities: [], policies: [], matrix: undefined, flows: undefined, live: false, error: undefined, loadedAt: {} });

  useEffect(() => {
    let closed = false;
    const pending = new Set<Part>();
    let timer: number | undefined;
    const read = async (part: Part) => {
      try {
        const value = await get<unknown>(READS[part]);
        if (closed) return;
        setData((d) => ({ ...d, [part]: value, error: undefined, loadedAt: { ...d.loadedAt, [part]: Date.now() } }));
      } catch (err) {
        if (!closed) setData((d) => ({ ...d, error: `${READS[part]}: ${(err as Error).message}` }));
      }
    };
    const schedule = (parts: Part[]) => {
      for (const p of parts) pending.add(p);
      if (timer !== undefined) return;
      timer = window.setTimeout(() => {
        timer = undefined;
        const now = [...pending];
        pending.clear();
        for (const p of now) void read(p);
      }, 250);
    };
    for (const p of Object.keys(READS) as Part[]) void read(p);
    const close = followEvents(
      (topic) => schedule(BY_TOPIC[topic] ?? []),
      (live) => {
        setData((d) => ({ ...d, live }));
        // After a reconnect, anything may have changed meanwhile.
        if (live) schedule(Object.keys(READS) as Part[]);
      },
    );
    return () => {
      closed = true;
      close();
      if (timer !== undefined) clearTimeout(timer);
    };
  }, []);
  return data;
}

/**
 * Fencing for singleton work: wrappers that refuse a write with NotLeaderError once this
 * controller is no longer the leader (its lease ran out or was taken), checked right before each
 * write, so a duty still finishing when leadership ends writes nothing more.
 */
import { NotLeaderError } from "../errors.js";
import type { NodeRegistry } from "../nodes/registry.js";
import type { RecordStore } from "../store/kv.js";
import type { z } from "zod";

export type Fence = () => boolean;

function refuse(what: string): never {
  throw new NotLeaderError(`${what}: this controller is no longer the leader; the new leader does it`);
}

/** The registry calls singleton work makes (updateNode, delete), fenced; reads pass through. */
export function fencedRegistry(registry: NodeRegistry, fence: Fence, what: string): Pick<NodeRegistry, "updateNode" | "delete" | "list"> {
  return {
    list: () => registry.list(),
    updateNode: async (nodeId, change) => {
      if (!fence()) refuse(what);
      return registry.updateNode(nodeId, async (node) => {
        if (!fence()) refuse(what); // checked again right before each compare-and-set attempt
        return change(node);
      });
    },
    delete: async (nodeId) => {
      if (!fence()) refuse(what);
      return registry.delete(nodeId);
    },
  };
}

const WRITES = new Set(["put", "create", "update", "delete", "change"]);

/** A RecordStore whose writes are fenced; reads pass through. */
export function fencedStore<S extends z.ZodType>(store: RecordStore<S>, fence: Fence, what: string): RecordStore<S> {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof prop !== "string" || !WRITES.has(prop) || typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (!fence()) return Promise.reject(new NotLeaderError(`${what}: this controller is no longer the leader; the new leader does it`));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

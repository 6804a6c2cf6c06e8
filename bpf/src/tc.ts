/**
 * tc attachment through libbpf's bpf_tc_* API: a clsact qdisc on an interface and a direct-action
 * BPF filter on its ingress or egress hook.
 */
import { BpfError } from "./errors.js";
import { libbpf } from "./libbpf.js";
import type { BpfProgram } from "./object.js";

export type TcDirection = "ingress" | "egress";

const ATTACH_POINT: Record<TcDirection, number> = { ingress: 1, egress: 2 }; // BPF_TC_INGRESS, BPF_TC_EGRESS
const EEXIST = 17;
const ENOENT = 2;

export interface TcAttachment {
  ifindex: number;
  direction: TcDirection;
  handle: number;
  priority: number;
  progId: number;
}

function hook(ifindex: number, attachPoint: number): Buffer {
  // struct bpf_tc_hook { size_t sz; int ifindex; enum attach_point; __u32 parent; size_t :0 } = 24 bytes
  const h = Buffer.alloc(24);
  h.writeBigUInt64LE(24n, 0);
  h.writeInt32LE(ifindex, 8);
  h.writeUInt32LE(attachPoint, 12);
  return h;
}

function tcOpts(progFd: number, handle: number, priority: number): Buffer {
  // struct bpf_tc_opts { size_t sz; int prog_fd; __u32 flags; __u32 prog_id; __u32 handle; __u32 priority; size_t :0 } = 32 bytes
  const o = Buffer.alloc(32);
  o.writeBigUInt64LE(32n, 0);
  o.writeInt32LE(progFd, 8);
  o.writeUInt32LE(handle, 20);
  o.writeUInt32LE(priority, 24);
  return o;
}

export interface TcAttachOptions {
  ifindex: number;
  direction: TcDirection;
  /** Filter handle and priority; defaults 1 and 1. An existing filter with both is replaced. */
  handle?: number;
  priority?: number;
}

/** Creates the clsact qdisc if needed and attaches `prog` (replacing a filter with the same handle/priority). */
export function tcAttach(prog: BpfProgram, options: TcAttachOptions): TcAttachment {
  const lib = libbpf();
  const h = hook(options.ifindex, ATTACH_POINT[options.direction]);
  const created = lib.bpf_tc_hook_create(h) as number;
  if (created < 0 && created !== -EEXIST) throw new BpfError(`bpf_tc_hook_create ifindex ${options.ifindex}`, -created);
  const o = tcOpts(prog.fd, options.handle ?? 1, options.priority ?? 1);
  o.writeUInt32LE(1, 12); // BPF_TC_F_REPLACE
  const rc = lib.bpf_tc_attach(h, o) as number;
  if (rc < 0) throw new BpfError(`bpf_tc_attach ${prog.name} ifindex ${options.ifindex} ${options.direction}`, -rc);
  return {
    ifindex: options.ifindex,
    direction: options.direction,
    progId: o.readUInt32LE(16),
    handle: o.readUInt32LE(20),
    priority: o.readUInt32LE(24),
  };
}

/** Removes the filter; false when it was already gone. The clsact qdisc stays (see tcDestroyHook). */
export function tcDetach(a: TcAttachment): boolean {
  const rc = libbpf().bpf_tc_detach(hook(a.ifindex, ATTACH_POINT[a.direction]), tcOpts(0, a.handle, a.priority)) as number;
  if (rc === -ENOENT) return false;
  if (rc < 0) throw new BpfError(`bpf_tc_detach ifindex ${a.ifindex} ${a.direction}`, -rc);
  return true;
}

/** Removes the clsact qdisc of an interface, with every filter on both hooks. */
export function tcDestroyHook(ifindex: number): void {
  const rc = libbpf().bpf_tc_hook_destroy(hook(ifindex, ATTACH_POINT.ingress | ATTACH_POINT.egress)) as number;
  if (rc < 0 && rc !== -ENOENT) throw new BpfError(`bpf_tc_hook_destroy ifindex ${ifindex}`, -rc);
}

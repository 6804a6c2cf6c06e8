/**
 * cgroup attachment of socket programs (connect4/6, sendmsg4/6, recvmsg4/6, sock_create, …) with
 * BPF_PROG_ATTACH / BPF_PROG_DETACH (bpf_prog_attach, bpf_prog_detach2) on a cgroup v2
 * directory. Like tc filters, an attachment is held by the cgroup, not by this process: it stays
 * when the agent exits and ends with cgroupDetach or when the cgroup is removed (no bpf_link, so
 * nothing to pin).
 */
import { closeSync, constants, openSync, statfsSync } from "node:fs";
import { BpfError } from "./errors.js";
import { libbpf } from "./libbpf.js";
import type { BpfProgram } from "./object.js";

/** statfs f_type of a cgroup v2 filesystem (linux/magic.h CGROUP2_SUPER_MAGIC). */
export const CGROUP2_SUPER_MAGIC = 0x63677270;

/** Where attach types are named (enum bpf_attach_type, linux/bpf.h); the program's SEC() must match. */
export const CGROUP_ATTACH_TYPE = {
  ingress: 0, // SEC("cgroup_skb/ingress")
  egress: 1, // SEC("cgroup_skb/egress")
  sock_create: 2, // SEC("cgroup/sock_create")
  sock_ops: 3, // SEC("sockops")
  device: 6, // SEC("cgroup/dev")
  bind4: 8, // SEC("cgroup/bind4")
  bind6: 9,
  connect4: 10, // SEC("cgroup/connect4")
  connect6: 11,
  post_bind4: 12,
  post_bind6: 13,
  sendmsg4: 14, // SEC("cgroup/sendmsg4"), UDP
  sendmsg6: 15,
  sysctl: 18,
  recvmsg4: 19, // SEC("cgroup/recvmsg4"), UDP
  recvmsg6: 20,
  getsockopt: 21,
  setsockopt: 22,
  getpeername4: 29,
  getpeername6: 30,
  getsockname4: 31,
  getsockname6: 32,
  sock_release: 34,
} as const;

export type CgroupAttachType = keyof typeof CGROUP_ATTACH_TYPE;

/**
 * How the program shares the cgroup (BPF_F_ALLOW_* flags):
 * - "exclusive" (0, the default): the only program of this type here; attaching again replaces it
 *   in one step; descendant cgroups cannot attach their own.
 * - "override" (BPF_F_ALLOW_OVERRIDE): one program here, which a descendant cgroup may replace for
 *   its subtree; attaching again replaces it too.
 * - "multi" (BPF_F_ALLOW_MULTI): one of several programs here and in descendants, all of which run
 *   (a deny from any wins); the same program cannot be attached twice here (EINVAL).
 * A cgroup's mode is set by its first attachment; mixing modes fails with EPERM.
 */
export type CgroupAttachMode = "exclusive" | "override" | "multi";

const MODE_FLAGS: Record<CgroupAttachMode, number> = { exclusive: 0, override: 1, multi: 2 };

export interface CgroupAttachOptions {
  /** A cgroup v2 directory, e.g. /sys/fs/cgroup/unified/weft or /sys/fs/cgroup/system.slice. */
  cgroupPath: string;
  attachType: CgroupAttachType;
  /** Default "exclusive". */
  flags?: CgroupAttachMode;
}

export interface CgroupAttachment {
  cgroupPath: string;
  attachType: CgroupAttachType;
  flags: CgroupAttachMode;
  progName: string;
  /** Kernel program id: detach finds the program by it, so the BpfObject may be closed meanwhile. */
  progId: number;
}

/** The path given for a cgroup attachment is not a cgroup v2 directory (missing, a file, cgroup v1, …). */
export class BpfCgroupPathError extends BpfError {
  override readonly name = "BpfCgroupPathError";
  readonly path: string;

  constructor(op: string, path: string, errno: number, why: string, cause?: unknown) {
    super(op, errno, {
      cause,
      detail: `${path} ${why}: give a directory of the cgroup v2 hierarchy (mounted at /sys/fs/cgroup or /sys/fs/cgroup/unified, see \`mount -t cgroup2\`)`,
    });
    this.path = path;
  }
}

function errnoOf(err: unknown): number {
  const code = (err as NodeJS.ErrnoException).errno;
  return typeof code === "number" ? Math.abs(code) : 22;
}

/** Opens a cgroup v2 directory (O_RDONLY|O_DIRECTORY), after checking its filesystem type. */
function openCgroup(op: string, path: string): number {
  let fsType: number;
  try {
    fsType = statfsSync(path).type;
  } catch (err) {
    const errno = errnoOf(err);
    throw new BpfCgroupPathError(op, path, errno, errno === 2 ? "does not exist" : "cannot be read", err);
  }
  if (fsType !== CGROUP2_SUPER_MAGIC) {
    throw new BpfCgroupPathError(op, path, 22 /* EINVAL */, `is not on a cgroup v2 filesystem (filesystem type 0x${fsType.toString(16)})`);
  }
  try {
    return openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (err) {
    throw new BpfCgroupPathError(op, path, errnoOf(err), "is not a directory", err);
  }
}

function progId(prog: BpfProgram): number {
  // struct bpf_prog_info: type@0 id@4 …
  const info = Buffer.alloc(256);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(info.length);
  const rc = libbpf().bpf_obj_get_info_by_fd(prog.fd, info, len) as number;
  if (rc < 0) throw new BpfError(`bpf_obj_get_info_by_fd ${prog.name}`, -rc);
  return info.readUInt32LE(4);
}

/**
 * Attaches `prog` to a cgroup v2 directory for `attachType` (every process in the cgroup and its
 * descendants). The attachment outlives this process. Errors: BpfCgroupPathError for a path that
 * is not a cgroup v2 directory; BpfError EINVAL when the program's section does not match the
 * attach type or for the same program twice in "multi" mode, EPERM when the cgroup's programs
 * of this type were attached with other flags (or an ancestor's forbid it).
 */
export function cgroupAttach(prog: BpfProgram, options: CgroupAttachOptions): CgroupAttachment {
  const flags = options.flags ?? "exclusive";
  const op = `bpf_prog_attach ${prog.name} ${options.attachType} ${options.cgroupPath}`;
  const type = CGROUP_ATTACH_TYPE[options.attachType];
  if (type === undefined) throw new TypeError(`${op}: unknown cgroup attach type (known: ${Object.keys(CGROUP_ATTACH_TYPE).join(", ")})`);
  const fd = openCgroup(op, options.cgroupPath);
  try {
    const id = progId(prog);
    const rc = libbpf().bpf_prog_attach(prog.fd, fd, type, MODE_FLAGS[flags]) as number;
    if (rc < 0) {
      const detail = rc === -1 ? `the cgroup's ${options.attachType} programs were attached with other flags than "${flags}" (or no CAP_BPF/CAP_NET_ADMIN)` : undefined;
      throw new BpfError(op, -rc, { detail });
    }
    return { cgroupPath: options.cgroupPath, attachType: options.attachType, flags, progName: prog.name, progId: id };
  } finally {
    closeSync(fd);
  }
}

/**
 * Detaches what cgroupAttach attached; false when it is already gone (detached, replaced by
 * another exclusive/override attach, the program unloaded, or the cgroup removed). Checks with
 * bpf_prog_query that the program is still the one attached, because the kernel's legacy detach
 * in exclusive/override mode removes whichever program is there.
 */
export function cgroupDetach(a: CgroupAttachment): boolean {
  const op = `bpf_prog_detach2 ${a.progName} ${a.attachType} ${a.cgroupPath}`;
  const lib = libbpf();
  const progFd = lib.bpf_prog_get_fd_by_id(a.progId) as number;
  if (progFd === -2 /* ENOENT: the program is gone, so is its attachment */) return false;
  if (progFd < 0) throw new BpfError(`bpf_prog_get_fd_by_id ${a.progId}`, -progFd);
  let cgFd: number;
  try {
    cgFd = openCgroup(op, a.cgroupPath);
  } catch (err) {
    lib.close(progFd);
    if (err instanceof BpfCgroupPathError && err.errno === 2) return false; // the cgroup was removed
    throw err;
  }
  try {
    // In "exclusive" and "override" mode the kernel detaches whatever program is attached, not
    // necessarily this one (legacy rule): a program that replaced ours must stay.
    if (!queryIds(op, cgFd, a.attachType).includes(a.progId)) return false;
    const rc = lib.bpf_prog_detach2(progFd, cgFd, CGROUP_ATTACH_TYPE[a.attachType]) as number;
    if (rc === -2) return false;
    if (rc < 0) throw new BpfError(op, -rc);
    return true;
  } finally {
    closeSync(cgFd);
    lib.close(progFd);
  }
}

/** Ids of the programs attached to the cgroup itself for `attachType` (bpf_prog_query; not inherited ones). */
export function cgroupQuery(cgroupPath: string, attachType: CgroupAttachType): number[] {
  const op = `bpf_prog_query ${attachType} ${cgroupPath}`;
  const fd = openCgroup(op, cgroupPath);
  try {
    return queryIds(op, fd, attachType);
  } finally {
    closeSync(fd);
  }
}

/** A program attached to a cgroup: its kernel id and name (the first 15 characters). */
export interface CgroupProgram {
  id: number;
  name: string;
}

/** The programs attached to the cgroup itself for `attachType`, with their names (cgroupQuery, then each program's info). */
export function cgroupPrograms(cgroupPath: string, attachType: CgroupAttachType): CgroupProgram[] {
  const lib = libbpf();
  const out: CgroupProgram[] = [];
  for (const id of cgroupQuery(cgroupPath, attachType)) {
    const fd = lib.bpf_prog_get_fd_by_id(id) as number;
    if (fd < 0) continue; // unloaded meanwhile
    try {
      // struct bpf_prog_info: … name[16] at offset 64.
      const info = Buffer.alloc(256);
      const len = Buffer.alloc(4);
      len.writeUInt32LE(info.length);
      const rc = lib.bpf_obj_get_info_by_fd(fd, info, len) as number;
      if (rc < 0) throw new BpfError(`bpf_obj_get_info_by_fd program ${id}`, -rc);
      const raw = info.subarray(64, 80);
      const end = raw.indexOf(0);
      out.push({ id, name: raw.subarray(0, end < 0 ? raw.length : end).toString("utf8") });
    } finally {
      lib.close(fd);
    }
  }
  return out;
}

function queryIds(op: string, cgFd: number, attachType: CgroupAttachType): number[] {
  // Ask for a few, then for more while the kernel says ENOSPC (there are more).
  for (let room = 16; ; room *= 4) {
    const ids = Buffer.alloc(4 * room);
    const count = Buffer.alloc(4);
    count.writeUInt32LE(room);
    const rc = libbpf().bpf_prog_query(cgFd, CGROUP_ATTACH_TYPE[attachType], 0, null, ids, count) as number;
    if (rc === -28 /* ENOSPC */) continue;
    if (rc < 0) throw new BpfError(op, -rc);
    const n = count.readUInt32LE();
    return Array.from({ length: n }, (_, i) => ids.readUInt32LE(4 * i));
  }
}

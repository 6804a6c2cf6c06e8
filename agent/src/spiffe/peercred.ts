/**
 * Who is on the other end of a unix socket connection, from the kernel (koffi FFI to libc):
 *
 * - `SO_PEERCRED`: the peer's pid, uid and gid, as they were when it called connect();
 * - its network namespace, race-free where the kernel allows: `SO_PEERPIDFD` (Linux 6.5) pins the
 *   peer process, and `ioctl(pidfd, PIDFD_GET_NET_NAMESPACE)` (Linux 6.11) opens its network
 *   namespace directly; the namespace file's (dev, inode) names it.
 * - On older kernels: `/proc/<pid>/ns/net`, checked against the pidfd (the process must still be
 *   the one that connected: `pidfd_send_signal(pidfd, 0)` succeeds only while it lives, so its pid
 *   cannot have been reused); with no pidfd at all (before 6.5) the /proc read races a pid reuse
 *   after the peer exits, and `via` says so.
 *
 * A peer whose namespace cannot be read (it already exited) gets `netns: undefined`: no identity.
 */
import { closeSync, fstatSync, statSync } from "node:fs";
import koffi, { type LibraryHandle } from "koffi";

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const SO_PEERPIDFD = 77;
/** _IO(PIDFS_IOCTL_MAGIC 0xFF, 4), linux/pidfd.h. */
const PIDFD_GET_NET_NAMESPACE = 0xff04;
/** x86_64 and arm64 (asm-generic) share this syscall number. */
const SYS_PIDFD_SEND_SIGNAL = 424;

/** A namespace, as the kernel names it: the device and inode of its nsfs file. */
export interface NamespaceId {
  dev: number;
  ino: number;
}

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
  /** The peer's network namespace; undefined when it could not be read (the peer exited). */
  netns: NamespaceId | undefined;
  /** How the namespace was read: pidfd ioctl (race-free), /proc checked by pidfd, or /proc alone. */
  via: "pidfd" | "proc+pidfd" | "proc" | "none";
}

/* eslint-disable @typescript-eslint/no-explicit-any -- koffi function handles are untyped */
interface Libc {
  getsockopt: (fd: number, level: number, name: number, val: Buffer, len: Buffer) => number;
  ioctl: (fd: number, request: number, arg: number) => number;
  syscall: (nr: number, a: number, b: number, c: any, d: number) => number;
}
/* eslint-enable @typescript-eslint/no-explicit-any */

let libc: Libc | undefined;

function lib(): Libc {
  if (libc) return libc;
  const handle: LibraryHandle = koffi.load("libc.so.6");
  libc = {
    getsockopt: handle.func("int getsockopt(int fd, int level, int optname, void *optval, void *optlen)") as Libc["getsockopt"],
    ioctl: handle.func("int ioctl(int fd, unsigned long request, unsigned long arg)") as Libc["ioctl"],
    syscall: handle.func("long syscall(long nr, long a, long b, void *c, long d)") as Libc["syscall"],
  };
  return libc;
}

/** The peer of the connected unix socket `fd`. Throws when `fd` is not a connected unix socket. */
export function peerCredentials(fd: number): PeerCredentials {
  const c = lib();
  const cred = Buffer.alloc(12);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(12);
  if (c.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, len) !== 0) throw new Error(`getsockopt(SO_PEERCRED) on fd ${fd}: errno ${koffi.errno()}`);
  const pid = cred.readInt32LE(0);
  const uid = cred.readUInt32LE(4);
  const gid = cred.readUInt32LE(8);
  const pidfd = peerPidfd(c, fd);
  try {
    if (pidfd !== undefined) {
      const nsfd = c.ioctl(pidfd, PIDFD_GET_NET_NAMESPACE, 0);
      if (nsfd >= 0) {
        try {
          return { pid, uid, gid, netns: idOf(fstatSync(nsfd)), via: "pidfd" };
        } finally {
          closeSync(nsfd);
        }
      }
      // An older kernel (no such ioctl): /proc, then make sure the pid was still the peer's.
      const netns = procNetns(pid);
      const alive = c.syscall(SYS_PIDFD_SEND_SIGNAL, pidfd, 0, null, 0) === 0;
      return { pid, uid, gid, netns: alive ? netns : undefined, via: "proc+pidfd" };
    }
    return { pid, uid, gid, netns: procNetns(pid), via: pid > 0 ? "proc" : "none" };
  } finally {
    if (pidfd !== undefined) closeSync(pidfd);
  }
}

/** The network namespace of this process. */
export function ownNetns(): NamespaceId {
  return idOf(statSync("/proc/self/ns/net"));
}

/** The namespace a `/run/netns/<name>` file (or any nsfs path) names; undefined when it is not there. */
export function netnsAt(path: string): NamespaceId | undefined {
  try {
    return idOf(statSync(path));
  } catch {
    return undefined;
  }
}

export function sameNamespace(a: NamespaceId | undefined, b: NamespaceId | undefined): boolean {
  return a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino;
}

function peerPidfd(c: Libc, fd: number): number | undefined {
  const out = Buffer.alloc(4);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(4);
  if (c.getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, out, len) !== 0) return undefined; // ENOPROTOOPT before Linux 6.5
  const pidfd = out.readInt32LE(0);
  return pidfd >= 0 ? pidfd : undefined;
}

function procNetns(pid: number): NamespaceId | undefined {
  if (!(pid > 0)) return undefined;
  return netnsAt(`/proc/${pid}/ns/net`);
}

function idOf(st: { dev: number; ino: number }): NamespaceId {
  return { dev: st.dev, ino: st.ino };
}

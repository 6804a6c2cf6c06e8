/**
 * Network namespaces, as the service datapath needs them: the cookie the kernel gives each one
 * (`bpf_get_netns_cookie` in a socket program; SO_NETNS_COOKIE from user space, Linux 5.14+) and
 * sockets opened inside another namespace (health checks of a workload from within its own
 * namespace). Both use setns(2) on the calling thread only: the namespace is entered, one socket
 * made, the thread's own namespace restored, all in one synchronous call, so nothing else runs on
 * this thread meanwhile and libuv's other threads never see it. A socket keeps the namespace it was
 * made in. FFI to libc through koffi, like libbpf.ts.
 */
import { closeSync, openSync } from "node:fs";
import koffi from "koffi";
import { BpfError } from "./errors.js";

/* eslint-disable @typescript-eslint/no-explicit-any -- koffi function handles are untyped */
type Fn = (...args: any[]) => any;
/* eslint-enable @typescript-eslint/no-explicit-any */

interface Libc {
  setns: Fn;
  socket: Fn;
  getsockopt: Fn;
  close: Fn;
}

const CLONE_NEWNET = 0x40000000;
const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_NETNS_COOKIE = 71;

let cached: Libc | undefined;

function libc(): Libc {
  if (cached) return cached;
  const lib = koffi.load("libc.so.6");
  cached = {
    setns: lib.func("int setns(int fd, int nstype)"),
    socket: lib.func("int socket(int domain, int type, int protocol)"),
    getsockopt: lib.func("int getsockopt(int fd, int level, int optname, void *optval, void *optlen)"),
    close: lib.func("int close(int fd)"),
  };
  return cached;
}

function errno(): number {
  return koffi.errno() || 22;
}

/** Runs `fn` with this thread inside the network namespace at `nsPath`, then returns to its own. */
function inNetns<T>(nsPath: string, fn: () => T): T {
  const c = libc();
  const own = openSync("/proc/thread-self/ns/net", "r");
  let target: number;
  try {
    target = openSync(nsPath, "r");
  } catch (err) {
    closeSync(own);
    throw new BpfError(`open network namespace ${nsPath}`, (err as NodeJS.ErrnoException).errno ? Math.abs((err as NodeJS.ErrnoException).errno!) : 2, { cause: err });
  }
  try {
    if ((c.setns(target, CLONE_NEWNET) as number) < 0) throw new BpfError(`setns ${nsPath}`, errno());
    try {
      return fn();
    } finally {
      // Failing to come back would leave this thread (the JS thread) in the wrong namespace.
      if ((c.setns(own, CLONE_NEWNET) as number) < 0) {
        process.stderr.write(`fatal: cannot return to the agent's own network namespace after entering ${nsPath} (errno ${errno()})\n`);
        process.abort();
      }
    }
  } finally {
    closeSync(target);
    closeSync(own);
  }
}

function cookieOf(fd: number): bigint {
  const value = Buffer.alloc(8);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(8);
  if ((libc().getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, value, len) as number) < 0) {
    throw new BpfError("getsockopt SO_NETNS_COOKIE", errno(), { detail: "needs Linux 5.14 or newer" });
  }
  return value.readBigUInt64LE(0);
}

/**
 * The cookie of a network namespace (what bpf_get_netns_cookie returns for its sockets): of the
 * namespace at `nsPath` (`/run/netns/<name>`, `/proc/<pid>/ns/net`), or this thread's own.
 */
export function netnsCookie(nsPath?: string): bigint {
  const c = libc();
  const probe = (): bigint => {
    const fd = c.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0) as number;
    if (fd < 0) throw new BpfError("socket", errno());
    try {
      return cookieOf(fd);
    } finally {
      c.close(fd);
    }
  };
  return nsPath === undefined ? probe() : inNetns(nsPath, probe);
}

/**
 * A new IPv4 socket (non-blocking, close-on-exec) made inside the network namespace at `nsPath`;
 * the caller owns the fd (e.g. `new net.Socket({ fd })` then `connect`, which then runs in that
 * namespace).
 */
export function socketInNetns(nsPath: string, kind: "tcp" | "udp"): number {
  return inNetns(nsPath, () => {
    const fd = libc().socket(AF_INET, (kind === "tcp" ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) as number;
    if (fd < 0) throw new BpfError(`socket in ${nsPath}`, errno());
    return fd;
  });
}

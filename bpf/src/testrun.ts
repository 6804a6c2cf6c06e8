/**
 * BPF_PROG_RUN (bpf_prog_test_run_opts): runs a loaded program on a crafted packet in the kernel
 * and returns its return code, the packet as the program left it, and the time per run.
 */
import { BpfError } from "./errors.js";
import { allocNative, freeNative, libbpf } from "./libbpf.js";
import type { BpfProgram } from "./object.js";

export interface TestRunOptions {
  /** Runs the program this many times (duration is the average); default 1. */
  repeat?: number;
  /** Room for the packet out; default the input length + 256. */
  dataOutSize?: number;
  /** skb->mark the program starts with (ctx_in); default 0. */
  mark?: number;
}

export interface TestRunResult {
  retval: number;
  dataOut: Buffer;
  /** Average nanoseconds per run, as the kernel measured it. */
  durationNs: number;
  /** skb->mark as the program left it (ctx_out). */
  mark: number;
}

// struct bpf_test_run_opts (<bpf/bpf.h>, libbpf 1.1), LP64 offsets.
const O = { sz: 0, dataIn: 8, dataOut: 16, dataSizeIn: 24, dataSizeOut: 28, ctxIn: 32, ctxOut: 40, ctxSizeIn: 48, ctxSizeOut: 52, retval: 56, repeat: 60, duration: 64, size: 80 };
// struct __sk_buff (linux/bpf.h): 192 bytes up to hwtstamp; mark at 8. The kernel takes only a few
// fields from ctx_in (mark, priority, ifindex, cb, tstamp, …) and wants the others zero.
const SKB = { size: 192, mark: 8 };

export function testRun(prog: BpfProgram, data: Buffer, options: TestRunOptions = {}): TestRunResult {
  const outSize = options.dataOutSize ?? data.length + 256;
  const din = allocNative(data.length);
  const dout = allocNative(outSize);
  const ctxIn = allocNative(SKB.size);
  const ctxOut = allocNative(SKB.size);
  try {
    ctxIn.view.fill(0);
    ctxIn.view.writeUInt32LE(options.mark ?? 0, SKB.mark);
    data.copy(din.view);
    const opts = Buffer.alloc(O.size);
    opts.writeBigUInt64LE(BigInt(O.size), O.sz);
    opts.writeBigUInt64LE(din.address, O.dataIn);
    opts.writeBigUInt64LE(dout.address, O.dataOut);
    opts.writeUInt32LE(data.length, O.dataSizeIn);
    opts.writeUInt32LE(outSize, O.dataSizeOut);
    opts.writeBigUInt64LE(ctxIn.address, O.ctxIn);
    opts.writeBigUInt64LE(ctxOut.address, O.ctxOut);
    opts.writeUInt32LE(SKB.size, O.ctxSizeIn);
    opts.writeUInt32LE(SKB.size, O.ctxSizeOut);
    opts.writeInt32LE(options.repeat ?? 1, O.repeat);
    const rc = libbpf().bpf_prog_test_run_opts(prog.fd, opts) as number;
    if (rc < 0) throw new BpfError(`bpf_prog_test_run_opts ${prog.name}`, -rc);
    const outLen = Math.min(opts.readUInt32LE(O.dataSizeOut), outSize);
    return {
      retval: opts.readUInt32LE(O.retval),
      dataOut: Buffer.from(dout.view.subarray(0, outLen)),
      durationNs: opts.readUInt32LE(O.duration),
      mark: ctxOut.view.readUInt32LE(SKB.mark),
    };
  } finally {
    freeNative(din.ptr);
    freeNative(dout.ptr);
    freeNative(ctxIn.ptr);
    freeNative(ctxOut.ptr);
  }
}

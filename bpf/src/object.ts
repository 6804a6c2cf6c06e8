/**
 * BPF object files: open a clang-built .o with libbpf, load it into the kernel (verifier), and
 * find its programs and maps by name. close() unloads whatever is not pinned or attached.
 */
import { BpfError } from "./errors.js";
import { lastErrno, libbpf } from "./libbpf.js";
import { BpfMap, mapInfoByFd } from "./map.js";

export class BpfProgram {
  constructor(
    readonly name: string,
    readonly fd: number,
  ) {}
}

export class BpfObject {
  readonly path: string;
  #obj: unknown;
  #maps = new Map<string, BpfMap>();

  private constructor(path: string, obj: unknown) {
    this.path = path;
    this.#obj = obj;
  }

  /** Opens and loads `path` (both steps; load runs the verifier). */
  static load(path: string): BpfObject {
    const lib = libbpf();
    const obj = lib.bpf_object__open_file(path, null);
    if (!obj) throw new BpfError(`bpf_object__open_file ${path}`, lastErrno() || 22);
    const rc = lib.bpf_object__load(obj) as number;
    if (rc < 0) {
      lib.bpf_object__close(obj);
      throw new BpfError(`bpf_object__load ${path}`, -rc, { detail: "the verifier log, if any, went to stderr" });
    }
    return new BpfObject(path, obj);
  }

  #handle(): unknown {
    if (!this.#obj) throw new Error(`bpf object ${this.path} is closed`);
    return this.#obj;
  }

  program(name: string): BpfProgram {
    const lib = libbpf();
    const prog = lib.bpf_object__find_program_by_name(this.#handle(), name);
    if (!prog) throw new BpfError(`find program ${name} in ${this.path}`, lastErrno() || 2);
    const fd = lib.bpf_program__fd(prog) as number;
    if (fd < 0) throw new BpfError(`bpf_program__fd ${name}`, -fd);
    return new BpfProgram(name, fd);
  }

  map(name: string): BpfMap {
    const known = this.#maps.get(name);
    if (known) return known;
    const lib = libbpf();
    const m = lib.bpf_object__find_map_by_name(this.#handle(), name);
    if (!m) throw new BpfError(`find map ${name} in ${this.path}`, lastErrno() || 2);
    const fd = lib.bpf_map__fd(m) as number;
    if (fd < 0) throw new BpfError(`bpf_map__fd ${name}`, -fd);
    const map = new BpfMap(fd, mapInfoByFd(fd), false);
    this.#maps.set(name, map);
    return map;
  }

  close(): void {
    if (!this.#obj) return;
    libbpf().bpf_object__close(this.#obj);
    this.#obj = undefined;
    this.#maps.clear();
  }
}

/**
 * BPF object files: open a clang-built .o with libbpf, prepare its maps (pin paths, reuse of
 * another object's map), load it into the kernel (verifier), and find its programs and maps by
 * name. close() unloads whatever is not pinned, attached or shared.
 */
import { BpfError } from "./errors.js";
import { lastErrno, libbpf } from "./libbpf.js";
import { BpfMap, mapInfoByFd, type MapInfo } from "./map.js";

export class BpfProgram {
  constructor(
    readonly name: string,
    readonly fd: number,
  ) {}
}

/** A map as the object file declares it, before load (MapInfo plus its flags). */
export type MapDef = MapInfo;

export class BpfObject {
  readonly path: string;
  #obj: unknown;
  #loaded = false;
  #maps = new Map<string, BpfMap>();

  private constructor(path: string, obj: unknown) {
    this.path = path;
    this.#obj = obj;
  }

  /** Opens `path` without loading it: maps can still be given pin paths or reused fds. */
  static open(path: string): BpfObject {
    const obj = libbpf().bpf_object__open_file(path, null);
    if (!obj) throw new BpfError(`bpf_object__open_file ${path}`, lastErrno() || 22);
    return new BpfObject(path, obj);
  }

  /** Opens and loads `path` (both steps; load runs the verifier). */
  static load(path: string): BpfObject {
    const o = BpfObject.open(path);
    try {
      o.load();
    } catch (err) {
      o.close();
      throw err;
    }
    return o;
  }

  get loaded(): boolean {
    return this.#loaded;
  }

  #handle(): unknown {
    if (!this.#obj) throw new Error(`bpf object ${this.path} is closed`);
    return this.#obj;
  }

  #rawMap(name: string): unknown {
    const m = libbpf().bpf_object__find_map_by_name(this.#handle(), name);
    if (!m) throw new BpfError(`find map ${name} in ${this.path}`, lastErrno() || 2);
    return m;
  }

  /** The maps the object declares (internal .data/.rodata/.bss maps left out). */
  mapDefs(): MapDef[] {
    const lib = libbpf();
    const out: MapDef[] = [];
    for (let m = lib.bpf_object__next_map(this.#handle(), null); m; m = lib.bpf_object__next_map(this.#handle(), m)) {
      if (lib.bpf_map__is_internal(m)) continue;
      out.push({
        name: lib.bpf_map__name(m) as string,
        type: lib.bpf_map__type(m) as number,
        keySize: lib.bpf_map__key_size(m) as number,
        valueSize: lib.bpf_map__value_size(m) as number,
        maxEntries: lib.bpf_map__max_entries(m) as number,
        flags: lib.bpf_map__map_flags(m) as number,
      });
    }
    return out;
  }

  /**
   * Before load: libbpf reuses the map pinned at `path` (if its type, sizes, max entries and
   * flags match, else load fails with EINVAL) or creates the map and pins it there.
   */
  setPinPath(mapName: string, path: string): void {
    if (this.#loaded) throw new Error(`setPinPath ${mapName}: ${this.path} is already loaded`);
    const rc = libbpf().bpf_map__set_pin_path(this.#rawMap(mapName), path) as number;
    if (rc < 0) throw new BpfError(`bpf_map__set_pin_path ${mapName} ${path}`, -rc);
  }

  /** Before load: the number of entries the map `mapName` is created with. */
  setMaxEntries(mapName: string, maxEntries: number): void {
    if (this.#loaded) throw new Error(`setMaxEntries ${mapName}: ${this.path} is already loaded`);
    const rc = libbpf().bpf_map__set_max_entries(this.#rawMap(mapName), maxEntries) as number;
    if (rc < 0) throw new BpfError(`bpf_map__set_max_entries ${mapName} ${maxEntries}`, -rc);
  }

  /** Before load: the object's map `mapName` becomes the existing map behind `map` (shared). */
  reuseMap(mapName: string, map: BpfMap): void {
    if (this.#loaded) throw new Error(`reuseMap ${mapName}: ${this.path} is already loaded`);
    const rc = libbpf().bpf_map__reuse_fd(this.#rawMap(mapName), map.fd) as number;
    if (rc < 0) throw new BpfError(`bpf_map__reuse_fd ${mapName}`, -rc);
  }

  /** Loads the opened object into the kernel: creates (or reuses) maps, runs the verifier. */
  load(): void {
    if (this.#loaded) return;
    const rc = libbpf().bpf_object__load(this.#handle()) as number;
    if (rc < 0) throw new BpfError(`bpf_object__load ${this.path}`, -rc, { detail: "libbpf's log (verifier, pinned map mismatch) went to stderr" });
    this.#loaded = true;
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
    const fd = libbpf().bpf_map__fd(this.#rawMap(name)) as number;
    if (fd < 0) throw new BpfError(`bpf_map__fd ${name}`, -fd, { detail: this.#loaded ? undefined : "the object is not loaded" });
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

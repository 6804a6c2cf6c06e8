/**
 * Raw FFI to the system libbpf.so.1 (Debian libbpf1, 1.1+) through koffi. Internal: use the
 * typed wrappers in object.ts, map.ts, tc.ts, cgroup.ts and testrun.ts. Pointers to libbpf option structs
 * are passed as Buffers laid out by hand (offsets from <bpf/bpf.h> and <bpf/libbpf.h>, x86-64 and
 * arm64 LP64); pointers inside them point at koffi-allocated native memory.
 */
import koffi, { type LibraryHandle } from "koffi";
import { LibbpfUnavailableError } from "./errors.js";

/* eslint-disable @typescript-eslint/no-explicit-any -- koffi function handles are untyped */
type Fn = (...args: any[]) => any;

export interface Libbpf {
  bpf_object__open_file: Fn;
  bpf_object__load: Fn;
  bpf_object__close: Fn;
  bpf_object__find_program_by_name: Fn;
  bpf_object__find_map_by_name: Fn;
  bpf_program__fd: Fn;
  bpf_map__fd: Fn;
  bpf_map__key_size: Fn;
  bpf_map__value_size: Fn;
  bpf_map__type: Fn;
  bpf_map__max_entries: Fn;
  bpf_map__set_max_entries: Fn;
  bpf_map__set_pin_path: Fn;
  bpf_map__reuse_fd: Fn;
  bpf_map__name: Fn;
  bpf_map__is_internal: Fn;
  bpf_map__map_flags: Fn;
  bpf_object__next_map: Fn;
  bpf_map_update_elem: Fn;
  bpf_map_lookup_elem: Fn;
  bpf_map_delete_elem: Fn;
  bpf_map_get_next_key: Fn;
  bpf_map_update_batch: Fn;
  bpf_map_delete_batch: Fn;
  bpf_obj_pin: Fn;
  bpf_obj_get: Fn;
  bpf_obj_get_info_by_fd: Fn;
  bpf_prog_test_run_opts: Fn;
  bpf_tc_hook_create: Fn;
  bpf_tc_hook_destroy: Fn;
  bpf_tc_attach: Fn;
  bpf_tc_detach: Fn;
  libbpf_num_possible_cpus: Fn;
  close: Fn;
  bpf_map_create: Fn;
  bpf_map_lookup_batch: Fn;
  bpf_prog_attach: Fn;
  bpf_prog_detach2: Fn;
  bpf_prog_query: Fn;
  bpf_prog_get_fd_by_id: Fn;
}
/* eslint-enable @typescript-eslint/no-explicit-any */

let cached: Libbpf | undefined;

/** Loads libbpf.so.1 once; throws LibbpfUnavailableError when it is not there. */
export function libbpf(): Libbpf {
  if (cached) return cached;
  let lib: LibraryHandle;
  let libc: LibraryHandle;
  try {
    lib = koffi.load("libbpf.so.1");
    libc = koffi.load("libc.so.6");
  } catch (err) {
    throw new LibbpfUnavailableError(err);
  }
  // Opaque handles as named types, declared once per process: vitest may evaluate this module
  // again in the same process (one fork, several test files) while koffi's registry persists.
  for (const name of ["bpf_object", "bpf_program", "bpf_map"]) {
    try {
      koffi.opaque(name);
    } catch {
      /* already declared by an earlier evaluation of this module */
    }
  }
  cached = {
    bpf_object__open_file: lib.func("bpf_object *bpf_object__open_file(const char *path, void *opts)"),
    bpf_object__load: lib.func("int bpf_object__load(bpf_object *obj)"),
    bpf_object__close: lib.func("void bpf_object__close(bpf_object *obj)"),
    bpf_object__find_program_by_name: lib.func("bpf_program *bpf_object__find_program_by_name(bpf_object *obj, const char *name)"),
    bpf_object__find_map_by_name: lib.func("bpf_map *bpf_object__find_map_by_name(bpf_object *obj, const char *name)"),
    bpf_program__fd: lib.func("int bpf_program__fd(bpf_program *prog)"),
    bpf_map__fd: lib.func("int bpf_map__fd(bpf_map *map)"),
    bpf_map__key_size: lib.func("uint32_t bpf_map__key_size(bpf_map *map)"),
    bpf_map__value_size: lib.func("uint32_t bpf_map__value_size(bpf_map *map)"),
    bpf_map__type: lib.func("int bpf_map__type(bpf_map *map)"),
    bpf_map__max_entries: lib.func("uint32_t bpf_map__max_entries(bpf_map *map)"),
    bpf_map__set_max_entries: lib.func("int bpf_map__set_max_entries(bpf_map *map, uint32_t max_entries)"),
    bpf_map__set_pin_path: lib.func("int bpf_map__set_pin_path(bpf_map *map, const char *path)"),
    bpf_map__reuse_fd: lib.func("int bpf_map__reuse_fd(bpf_map *map, int fd)"),
    bpf_map__name: lib.func("const char *bpf_map__name(bpf_map *map)"),
    bpf_map__is_internal: lib.func("bool bpf_map__is_internal(bpf_map *map)"),
    bpf_map__map_flags: lib.func("uint32_t bpf_map__map_flags(bpf_map *map)"),
    bpf_object__next_map: lib.func("bpf_map *bpf_object__next_map(bpf_object *obj, bpf_map *map)"),
    bpf_map_update_elem: lib.func("int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)"),
    bpf_map_lookup_elem: lib.func("int bpf_map_lookup_elem(int fd, const void *key, void *value)"),
    bpf_map_delete_elem: lib.func("int bpf_map_delete_elem(int fd, const void *key)"),
    bpf_map_get_next_key: lib.func("int bpf_map_get_next_key(int fd, const void *key, void *next_key)"),
    bpf_map_update_batch: lib.func("int bpf_map_update_batch(int fd, const void *keys, const void *values, void *count, const void *opts)"),
    bpf_map_delete_batch: lib.func("int bpf_map_delete_batch(int fd, const void *keys, void *count, const void *opts)"),
    bpf_obj_pin: lib.func("int bpf_obj_pin(int fd, const char *path)"),
    bpf_obj_get: lib.func("int bpf_obj_get(const char *path)"),
    bpf_obj_get_info_by_fd: lib.func("int bpf_obj_get_info_by_fd(int fd, void *info, void *info_len)"),
    bpf_prog_test_run_opts: lib.func("int bpf_prog_test_run_opts(int prog_fd, void *opts)"),
    bpf_tc_hook_create: lib.func("int bpf_tc_hook_create(void *hook)"),
    bpf_tc_hook_destroy: lib.func("int bpf_tc_hook_destroy(void *hook)"),
    bpf_tc_attach: lib.func("int bpf_tc_attach(const void *hook, void *opts)"),
    bpf_tc_detach: lib.func("int bpf_tc_detach(const void *hook, const void *opts)"),
    libbpf_num_possible_cpus: lib.func("int libbpf_num_possible_cpus(void)"),
    close: libc.func("int close(int fd)"),
    bpf_map_create: lib.func("int bpf_map_create(int map_type, const char *map_name, uint32_t key_size, uint32_t value_size, uint32_t max_entries, const void *opts)"),
    bpf_map_lookup_batch: lib.func("int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, void *count, const void *opts)"),
    bpf_prog_attach: lib.func("int bpf_prog_attach(int prog_fd, int attachable_fd, int type, unsigned int flags)"),
    bpf_prog_detach2: lib.func("int bpf_prog_detach2(int prog_fd, int attachable_fd, int type)"),
    bpf_prog_query: lib.func("int bpf_prog_query(int target_fd, int type, uint32_t query_flags, void *attach_flags, void *prog_ids, void *prog_cnt)"),
    bpf_prog_get_fd_by_id: lib.func("int bpf_prog_get_fd_by_id(uint32_t id)"),
  };
  return cached;
}

/** errno after the last FFI call (for libbpf calls that return NULL). */
export function lastErrno(): number {
  return koffi.errno();
}

/** Native memory for pointers stored inside option structs; freed by the caller. */
export function allocNative(size: number): { ptr: unknown; address: bigint; view: Buffer } {
  const ptr = koffi.alloc("uint8_t", Math.max(size, 1));
  const view = Buffer.from(koffi.view(ptr, Math.max(size, 1)));
  return { ptr, address: koffi.address(ptr), view };
}

export function freeNative(ptr: unknown): void {
  koffi.free(ptr);
}

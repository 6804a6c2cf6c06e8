#!/usr/bin/env bash
# Compiles every bpf/progs/*.c entry file into bpf/dist/<name>.o (clang -O2 -g -target bpf, with BTF).
# Rebuilds only what changed (an entry file or any lib/*.h newer than its object).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p dist
arch_include="/usr/include/$(uname -m)-linux-gnu"
for src in progs/*.c; do
  out="dist/$(basename "${src%.c}").o"
  if [ -f "$out" ] && [ -z "$(find "$src" progs/lib -newer "$out" -print -quit)" ]; then continue; fi
  clang -O2 -g -target bpf -Wall -Werror -I progs -I "$arch_include" -c "$src" -o "$out"
  echo "bpf: built $out" >&2
done

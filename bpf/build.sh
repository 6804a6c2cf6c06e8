#!/usr/bin/env bash
# Compiles every bpf/progs/*.c entry file into bpf/dist/<name>.o (clang -O2 -g -target bpf, with BTF),
# and every test-only program bpf/progs/test/*.c into bpf/dist/test/<name>.o (never a datapath
# object: the datapath and its layout checks read dist/*.o only).
# Rebuilds only what changed (a source file or any lib/*.h newer than its object).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p dist
arch_include="/usr/include/$(uname -m)-linux-gnu"
build() { # build <src> <out dir>
  local src="$1" out
  out="$2/$(basename "${src%.c}").o"
  if [ -f "$out" ] && [ -z "$(find "$src" progs/lib -newer "$out" -print -quit)" ]; then return 0; fi
  clang -O2 -g -target bpf -Wall -Werror -I progs -I "$arch_include" -c "$src" -o "$out"
  echo "bpf: built $out" >&2
}
for src in progs/*.c; do build "$src" dist; done
if compgen -G "progs/test/*.c" >/dev/null; then
  mkdir -p dist/test
  for src in progs/test/*.c; do build "$src" dist/test; done
fi

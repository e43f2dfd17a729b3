#!/usr/bin/env bash
# Builds bpf/baton.bpf.c into a libbpf skeleton header: clang -target bpf → object →
# bpftool gen skeleton. Called by binding.gyp (npm install) and CMakeLists.txt alike.
# -mcpu=v3: the idle-token pop needs atomic fetch-and (the minimum kernel: see src/errors.ts).
# Usage: bpf/build.sh OUT_DIR   → OUT_DIR/baton.bpf.o and OUT_DIR/baton.skel.h
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: bpf/build.sh OUT_DIR}
mkdir -p "$out"
for tool in clang bpftool; do
  command -v "$tool" >/dev/null || {
    echo "baton: '$tool' not found: apt-get install -y clang libbpf-dev bpftool pkg-config" >&2
    exit 1
  }
done
arch=$(uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
# clang -target bpf does not search the host's multiarch include dirs (asm/types.h);
# add them after its own, as libbpf-bootstrap does.
sys_includes=$(clang -v -E - </dev/null 2>&1 |
  sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')
# shellcheck disable=SC2086
clang -g -O2 -Wall -target bpf -mcpu=v3 -D__TARGET_ARCH_"$arch" -I"$here" $sys_includes \
  -c "$here/baton.bpf.c" -o "$out/baton.bpf.o"
bpftool gen skeleton "$out/baton.bpf.o" name baton_bpf > "$out/baton.skel.h.tmp"
mv "$out/baton.skel.h.tmp" "$out/baton.skel.h"

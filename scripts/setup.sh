#!/usr/bin/env bash
# Installs whatever is missing for baton on a Debian machine, then builds it:
#   system packages: clang, libbpf-dev, bpftool, pkg-config (and a C++ toolchain)
#   npm dependencies, and the native addon with its embedded BPF program (npm install)
# Safe to run again: it only does what is not done yet.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v clang >/dev/null || missing+=(clang)
command -v bpftool >/dev/null || missing+=(bpftool)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v make >/dev/null || missing+=(make)
command -v g++ >/dev/null || missing+=(g++)
[ -f /usr/include/bpf/libbpf.h ] || missing+=(libbpf-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "baton setup: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "baton setup: run as root (or install them yourself: apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# node-gyp must build against the local Node headers, not download them.
if [ -f /usr/include/node/node.h ]; then export npm_config_nodedir=/usr; fi

if [ ! -d node_modules ] || [ package.json -nt node_modules/.package-lock.json ] || [ ! -f build/Release/baton.node ]; then
  echo "baton setup: npm install (builds the native addon and its BPF program)"
  npm install --no-audit --no-fund --loglevel=error
fi

#!/usr/bin/env bash
# bench/trace.sh: a program's start-up from a fresh mount over `castore daemon`, without and with a
# read trace (castore mount --record-trace once, then --prefetch-trace), printed as the ratio of
# the two and beside the same start-up from the local store, from squashfuse_ll (an image of the
# same tree) and from the native directory.
#
# The program: Debian's python3.11 with its standard library on the mount (PYTHONHOME), importing
# about 200 modules: the kind of interpreter start-up over a network filesystem that users of
# CernVM-FS and nydus wait for (../shared/docs/peer-techniques.md, "What users ask for", 1 and 6).
# Each remote run mounts with a fresh --cache, and the program starts as soon as the mount says it
# is ready: the trace's prefetch races the program, as it would in use. The daemon's store stays
# in the page cache (a serving machine's steady state); the native, squashfuse_ll and local runs
# start after the caches are dropped.
#
# Usage (root): bench/trace.sh [ROUNDS]      (default 3; prints each run, then the best of each)
# Env: BENCH_DIR (default /var/tmp/castore-trace-bench), BENCH_CPU (default 0: the mount and the
# program are pinned there, the daemon is not), MOUNT_ARGS (more `castore mount` options),
# BENCH_SETTLE=SECONDS (default 0: the program starts at the ready line; e.g. 2.5: a mount left
# idle that long, its warm-up run, and with --prefetch-trace the trace fetched meanwhile).
set -euo pipefail
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
W="${BENCH_DIR:-/var/tmp/castore-trace-bench}"
CPU="${BENCH_CPU:-0}"
ROUNDS="${1:-3}"
PYTHON=/usr/bin/python3.11
[ "$(id -u)" = 0 ] || { echo "trace.sh: needs root (drop_caches and mounts)" >&2; exit 1; }
[ -x "$PYTHON" ] && [ -d /usr/lib/python3.11 ] || { echo "trace.sh: needs Debian's python3.11 (apt-get install python3.11)" >&2; exit 1; }
IMPORTS='import json, email.mime.text, http.client, xml.dom.minidom, asyncio, unittest, decimal, argparse, logging, subprocess, sqlite3, csv, tarfile, zipfile, urllib.request, dataclasses, typing, pathlib, shutil, tempfile'
M="$W/mnt"
mkdir -p "$M"
(cd "$ROOT" && ./castore --version >/dev/null)   # build outside the measurement

if [ ! -f "$W/.done" ]; then
  rm -rf "$W/pyhome" "$W/local-store" "$W/daemon-store"
  mkdir -p "$W/pyhome/lib"
  cp -a /usr/lib/python3.11 "$W/pyhome/lib/"
  # Bytecode that does not depend on mtimes: castore shows every mtime as the epoch (tvix's data
  # model has none), so timestamp-based .pyc files are stale on a mount and Python would compile
  # every module again at each start (README, "Times").
  "$PYTHON" -m compileall -f -q -j0 --invalidation-mode unchecked-hash "$W/pyhome/lib/python3.11" >/dev/null 2>&1 || true
  mksquashfs "$W/pyhome" "$W/py.sqsh" -noappend -quiet >/dev/null
  "$ROOT/castore" import --store "$W/local-store" --quiet --name py "$W/pyhome" >/dev/null
  "$ROOT/castore" import --store "$W/daemon-store" --quiet --name py "$W/pyhome" >/dev/null
  touch "$W/.done"
fi

daemon="" pid=""
cleanup() {
  mountpoint -q "$M" && { umount "$M" 2>/dev/null || umount -l "$M"; }
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
}
trap cleanup EXIT
rm -f "$W/d.sock"
"$ROOT/castore" daemon --store "$W/daemon-store" --listen "unix://$W/d.sock" 2>"$W/daemon.log" &
daemon=$!
for _ in $(seq 600); do [ -S "$W/d.sock" ] && break; sleep 0.1; done
REMOTE="grpc+unix://$W/d.sock"
find "$W/daemon-store" -type f -exec cat {} + >/dev/null   # the daemon's store in the page cache

# The program's wall time in ms, with PYTHONHOME=$1.
program() {
  local t0 t1
  t0=$(date +%s%N)
  PYTHONHOME="$1" taskset -c "$CPU" "$PYTHON" -c "$IMPORTS" >/dev/null
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}

# Mounts with the given options, waits for the ready line; $pid is the mount, its stderr in $W/mount.log.
mount_store() {
  coproc MOUNT { CASTORE_JAVA_OPTS="-XX:ActiveProcessorCount=2 ${CASTORE_JAVA_OPTS:-}" exec taskset -c "$CPU" \
      "$ROOT/castore" mount "$@" ${MOUNT_ARGS:-} "$M" 2>"$W/mount.log"; }
  pid=$!
  local line=""
  while [[ "$line" != "castore: mounted "* ]]; do read -r -t 120 line <&"${MOUNT[0]}"; done
  sleep "${BENCH_SETTLE:-0}"
}

unmount_store() {
  umount "$M"
  wait "$pid" 2>/dev/null || true
  pid=""
}

# The trace: one run of the program on a fresh remote mount that records it.
rm -rf "$W/cache"
mount_store --store "$REMOTE" --cache "$W/cache" --record-trace "$W/python.trace"
program "$M/py" >/dev/null
unmount_store
echo "trace: $(grep -c '^d ' "$W/python.trace") directories, $(grep -c '^f ' "$W/python.trace") files," \
  "$(awk '$1 == "f" {s += $3} END {printf "%.1f", s / 1048576}' "$W/python.trace") MiB of $(du -sh "$W/pyhome" | cut -f1) in the tree"

best() { sort -n | head -1; }
: >"$W/runs"
for round in $(seq "$ROUNDS"); do
  sync; echo 3 >/proc/sys/vm/drop_caches
  echo "native $(program "$W/pyhome")" >>"$W/runs"

  mount_store --store "$W/local-store"
  sync; echo 3 >/proc/sys/vm/drop_caches
  echo "local $(program "$M/py")" >>"$W/runs"
  unmount_store

  taskset -c "$CPU" squashfuse_ll -f -o clone_fd "$W/py.sqsh" "$M" & pid=$!
  for _ in $(seq 100); do mountpoint -q "$M" && break; sleep 0.05; done
  sync; echo 3 >/proc/sys/vm/drop_caches
  echo "squashfuse_ll $(program "$M")" >>"$W/runs"
  unmount_store

  rm -rf "$W/cache"
  mount_store --store "$REMOTE" --cache "$W/cache"
  echo "remote $(program "$M/py")" >>"$W/runs"
  unmount_store

  rm -rf "$W/cache"
  mount_store --store "$REMOTE" --cache "$W/cache" --prefetch-trace "$W/python.trace"
  echo "remote-trace $(program "$M/py")" >>"$W/runs"
  for _ in $(seq 100); do grep -q "castore: prefetched the trace" "$W/mount.log" && break; sleep 0.1; done
  echo "  round $round: $(grep "castore: prefetched the trace" "$W/mount.log" | sed 's/.*: \([0-9]* directories.*\)/\1/')"
  unmount_store
  tail -5 "$W/runs" | paste -sd ' ' | sed "s/^/  round $round ms: /"
done
native=$(awk '$1 == "native" {print $2}' "$W/runs" | best)
local_=$(awk '$1 == "local" {print $2}' "$W/runs" | best)
remote=$(awk '$1 == "remote" {print $2}' "$W/runs" | best)
traced=$(awk '$1 == "remote-trace" {print $2}' "$W/runs" | best)
squash=$(awk '$1 == "squashfuse_ll" {print $2}' "$W/runs" | best)
echo "best of $ROUNDS, ms: native $native, squashfuse_ll $squash, local store $local_, daemon $remote, daemon with the trace $traced"
echo "daemon with the trace / without: $(awk -v a="$traced" -v b="$remote" 'BEGIN {printf "%.2f", a / b}')" \
  "(against the local store: without $(awk -v a="$remote" -v b="$local_" 'BEGIN {printf "%.2f", a / b}')," \
  "with $(awk -v a="$traced" -v b="$local_" 'BEGIN {printf "%.2f", a / b}'))"

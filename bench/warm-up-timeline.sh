#!/usr/bin/env bash
# bench/warm-up-timeline.sh: when an idle mount's warm-up ends (docs/filesystem.md, "Warm-up").
# Mounts with the given store options (pinned to $BENCH_CPU, default 0, as the benches pin mounts),
# stats one root entry, then prints the mount process's CPU so far (user + system, ms) every
# $STEP seconds (default 0.25) for $SECONDS_IDLE seconds (default 8) with no other request. The
# warm-up has ended where the figure stops growing; the bench settle times (BENCH_SETTLE) should be
# past that point to measure a mount that was idle a while.
#
# BENCH_PERF=FILE: also `perf record -C $BENCH_CPU -F 999` the idle time into FILE (threads per half
# second: `perf script -i FILE -F comm,time`).
#
# Usage (root): bench/warm-up-timeline.sh ENTRY STORE_OPTIONS...
#   e.g. bench/warm-up-timeline.sh big --store /var/tmp/castore-remote-probe/local-store
#        bench/warm-up-timeline.sh big --store grpc+http://127.0.0.1:PORT --cache DIR
set -euo pipefail
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "warm-up-timeline.sh: needs root (mounts)" >&2; exit 1; }
entry=${1:?usage: bench/warm-up-timeline.sh ENTRY STORE_OPTIONS...}
shift
CPU="${BENCH_CPU:-0}"
STEP="${STEP:-0.25}"
IDLE="${SECONDS_IDLE:-8}"
M=$(mktemp -d /tmp/castore-warm-up-timeline.XXXXXX)
pid=""
perf_pid=""
cleanup() {
  [ -n "$perf_pid" ] && kill -INT "$perf_pid" 2>/dev/null && wait "$perf_pid" 2>/dev/null || true
  mountpoint -q "$M" && { umount "$M" 2>/dev/null || umount -l "$M"; }
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rmdir "$M" 2>/dev/null || true
}
trap cleanup EXIT
(cd "$ROOT" && ./castore --version >/dev/null)   # build outside the measurement
coproc MOUNT { CASTORE_JAVA_OPTS="-XX:ActiveProcessorCount=2${CASTORE_JAVA_OPTS:+ $CASTORE_JAVA_OPTS}" exec taskset -c "$CPU" \
    "$ROOT/castore" mount "$@" --threads 4 "$M" 2>&1; }
pid=$!
line=""
while [[ "$line" != "castore: mounted "* ]]; do read -r -t 120 line <&"${MOUNT[0]}"; done
if [ -n "${BENCH_PERF:-}" ]; then
  perf record -q -C "$CPU" -F 999 -o "$BENCH_PERF" 2>/dev/null &
  perf_pid=$!
fi
stat "$M/$entry" >/dev/null
tick=$(getconf CLK_TCK)
steps=$(awk -v i="$IDLE" -v s="$STEP" 'BEGIN { printf "%d", i / s }')
figures=()
for _ in $(seq "$steps"); do
  sleep "$STEP"
  figures+=("$(awk -v t="$tick" '{ printf "%d", ($14 + $15) * 1000 / t }' "/proc/$pid/stat")")
done
if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true; perf_pid=""; fi
echo "mount CPU (ms) every ${STEP} s after the first stat: ${figures[*]}"

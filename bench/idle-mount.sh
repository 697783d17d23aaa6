#!/usr/bin/env bash
# bench/idle-mount.sh: what an idle mount costs, with and without its warm-up (docs/filesystem.md,
# "Warm-up"): a fresh `castore mount` of the bench store is left alone for $BENCH_SETTLE seconds
# (default 3: the warm-up begins after 1 s without requests and takes under one), then the mount
# process's CPU time so far (user + system, start-up included) and its resident memory (RssAnon,
# RssFile) are printed. The two modes alternate, $BENCH_ROUNDS times (default 3).
#
# Usage (root, after bench/mount.sh has built the store): bench/idle-mount.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
WORK="${BENCH_DIR:-/var/tmp/castore-bench}"
CPU="${BENCH_CPU:-0}"
SETTLE="${BENCH_SETTLE:-3}"
[ -d "$WORK/store" ] || { echo "run bench/mount.sh first" >&2; exit 1; }
(cd "$ROOT" && ./castore --version >/dev/null)   # build outside the measurement
M="$WORK/mnt/idle"
mkdir -p "$M"
pid=""
cleanup() {
  mountpoint -q "$M" && { umount "$M" 2>/dev/null || umount -l "$M"; }
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
}
trap cleanup EXIT
tick=$(getconf CLK_TCK)
for _ in $(seq "${BENCH_ROUNDS:-3}"); do
  for mode in warm-up --no-warm-up; do
    args=(); [ "$mode" = --no-warm-up ] && args=(--no-warm-up)
    coproc IDLE { CASTORE_JAVA_OPTS="-XX:ActiveProcessorCount=2${CASTORE_JAVA_OPTS:+ $CASTORE_JAVA_OPTS}" exec taskset -c "$CPU" \
      "$ROOT/castore" mount "${args[@]}" --store "$WORK/store" "$M" 2>&1; }
    pid=$!
    line=""
    while [[ "$line" != "castore: mounted "* ]]; do read -r -t 120 line <&"${IDLE[0]}"; done
    sleep "$SETTLE"
    cpu=$(awk -v t="$tick" '{print ($14 + $15) * 1000 / t}' "/proc/$pid/stat")
    rss=$(awk '/^RssAnon|^RssFile/ {printf "%s %d MB ", $1, $2 / 1024}' "/proc/$pid/status")
    echo "$mode: mount CPU ${cpu} ms after ${SETTLE} s idle, ${rss}"
    umount "$M"; wait "$pid" 2>/dev/null || true; pid=""
  done
done

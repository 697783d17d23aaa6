#!/usr/bin/env bash
# bench/root-lookups.sh: what a lookup of a root name costs through a fresh mount, remote or local
# (docs/performance.md, "Session 13" under Remote mount). Uses the stores of bench/remote-probe.sh
# (run its `setup` first, and start its daemon).
#
# Usage (root):
#   bench/root-lookups.sh remote|local [COUNT [GAP_MS [TTL]]]
#     mounts the daemon's store (with a fresh --cache) or the local store with --root-ttl TTL
#     (default 0: every stat of the root is a LOOKUP), then stats root "big" COUNT times (default
#     400), GAP_MS apart (default 2), from one Python process pinned to BENCH_CPU, and prints the
#     average per 40 stats in microseconds (each one for COUNT <= 40). With TTL 1s and GAP_MS 1200, each stat finds the
#     kernel's entry expired: the lookups a mount in use makes once per TTL.
# Env: BENCH_DIR (default /var/tmp/castore-remote-probe), BENCH_CPU (default 0), CASTORE (the launcher).
set -euo pipefail
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
W="${BENCH_DIR:-/var/tmp/castore-remote-probe}"
CPU="${BENCH_CPU:-0}"
CASTORE="${CASTORE:-$ROOT/castore}"
[ "$(id -u)" = 0 ] || { echo "root-lookups.sh: needs root (mounts)" >&2; exit 1; }
mode=${1:?remote or local}
count=${2:-400}
gap=${3:-2}
ttl=${4:-0}
case "$mode" in
  remote) rm -rf "$W/cache-lookups"; args=(--store "$(cat "$W/address")" --cache "$W/cache-lookups") ;;
  local) args=(--store "$W/local-store") ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
M="$W/mnt"
mkdir -p "$M"
pid=""
cleanup() {
  mountpoint -q "$M" && { umount "$M" 2>/dev/null || umount -l "$M"; }
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
}
trap cleanup EXIT
coproc MOUNT { CASTORE_JAVA_OPTS="-XX:ActiveProcessorCount=2 ${CASTORE_JAVA_OPTS:-}" exec taskset -c "$CPU" \
    "$CASTORE" mount "${args[@]}" --root-ttl "$ttl" "$M" 2>&1; }
pid=$!
line=""
while [[ "$line" != "castore: mounted "* ]]; do read -r -t 120 line <&"${MOUNT[0]}"; done
taskset -c "$CPU" python3 - "$M/big" "$count" "$gap" <<'EOF'
import os, sys, time
path, count, gap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) / 1000
times = []
for _ in range(count):
    start = time.perf_counter_ns()
    os.stat(path)
    times.append((time.perf_counter_ns() - start) / 1000)
    time.sleep(gap)
if count <= 40:
    print("us per stat:", " ".join(f"{t:.0f}" for t in times))
else:
    groups = [times[i:i + 40] for i in range(0, len(times), 40)]
    print("us per stat, average per 40:", " ".join(f"{sum(g) / len(g):.0f}" for g in groups))
EOF

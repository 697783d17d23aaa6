#!/usr/bin/env bash
# bench/round-trip.sh: what one request costs castore's FUSE server against squashfuse_ll's, with no
# filesystem work in the way: N statfs(2) calls on each mountpoint (the kernel sends every one to
# the server; STATFS is never answered from a cache), client and server on one CPU. A cold walk
# or lstat is mostly such round trips (a cold `find` of the bench tree: 9,272 requests), so this
# is the floor under those workloads (docs/performance.md, Mount, "Session 41").
#
# Usage (root, after bench/mount.sh has built the store and the image):
#   bench/round-trip.sh [N [ROUNDS]]     defaults 100000 calls, 3 rounds alternating the servers
# Per system and round it prints the client's time per call, the server's CPU per request
# (/proc/PID/task/*/schedstat: time on a CPU, kernel time included, every thread) and its context
# switches per request; then the best round's ratio castore/squashfuse_ll in calls per second
# (> 1: castore faster) and in server CPU per request (< 1: castore cheaper).
# Env: BENCH_DIR (default /var/tmp/castore-bench), BENCH_CPU (default 0), BENCH_SETTLE (seconds a
# fresh mount is left idle before the calls, default 3: castore's warm-up has run), CASTORE (the
# launcher, default this checkout's ./castore), CASTORE_JAVA_OPTS (added to -XX:ActiveProcessorCount=2).
set -euo pipefail
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
WORK="${BENCH_DIR:-/var/tmp/castore-bench}"
CPU="${BENCH_CPU:-0}"
CASTORE="${CASTORE:-$ROOT/castore}"
N="${1:-100000}"
ROUNDS="${2:-3}"
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
[ -f "$WORK/corpus.sqsh.done" ] && [ -d "$WORK/store" ] || { echo "run bench/mount.sh first" >&2; exit 1; }
mkdir -p "$WORK/bin"
. "$ROOT/bench/lib-mount.sh"   # build_clients
build_clients
(cd "$(dirname "$CASTORE")" && "$CASTORE" --version >/dev/null)   # build outside the measurement

M="$WORK/mnt/round-trip"
mkdir -p "$M"
pid=""
cleanup() {
  mountpoint -q "$M" && { umount "$M" 2>/dev/null || umount -l "$M"; }
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  pid=""
}
trap cleanup EXIT

start_server() {
  case "$1" in
    castore)
      local log="$WORK/round-trip-castore.log"
      rm -f "$log"
      CASTORE_JAVA_OPTS="-XX:ActiveProcessorCount=2${CASTORE_JAVA_OPTS:+ $CASTORE_JAVA_OPTS}" \
        taskset -c "$CPU" "$CASTORE" mount --store "$WORK/store" "$M" >"$log" 2>&1 &
      pid=$!
      for _ in $(seq 1200); do grep -q '^castore: mounted ' "$log" 2>/dev/null && return; kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
      echo "castore did not mount:" >&2; cat "$log" >&2; exit 1 ;;
    squashfuse_ll)
      taskset -c "$CPU" squashfuse_ll -f -o clone_fd "$WORK/corpus.sqsh" "$M" &
      pid=$!
      for _ in $(seq 200); do mountpoint -q "$M" && return; sleep 0.05; done
      echo "squashfuse_ll did not mount" >&2; exit 1 ;;
  esac
}

# Nanoseconds on a CPU and context switches, summed over the server's threads.
server_usage() {
  local ns=0 switches=0 t a v
  for t in /proc/"$pid"/task/*; do
    read -r a _ _ <"$t/schedstat" 2>/dev/null || continue
    v=$(awk '/ctxt_switches/ { s += $2 } END { print s + 0 }' "$t/status" 2>/dev/null || echo 0)
    ns=$((ns + a)); switches=$((switches + v))
  done
  echo "$ns $switches"
}

declare -A calls_per_s cpu_ns
for round in $(seq "$ROUNDS"); do
  order="castore squashfuse_ll"
  [ $((round % 2)) = 0 ] && order="squashfuse_ll castore"
  for system in $order; do
    start_server "$system"
    sleep "${BENCH_SETTLE:-3}"
    taskset -c "$CPU" "$WORK/bin/fsbench" statfs "$M" $((N / 5)) >/dev/null   # the JIT's and caches' first calls
    read -r ns0 sw0 < <(server_usage)
    t0=$(date +%s%N)
    taskset -c "$CPU" "$WORK/bin/fsbench" statfs "$M" "$N" >/dev/null
    t1=$(date +%s%N)
    read -r ns1 sw1 < <(server_usage)
    cleanup
    per_call=$(awk -v ns=$((t1 - t0)) -v n="$N" 'BEGIN { printf "%.2f", ns / n / 1000 }')
    per_req=$(awk -v ns=$((ns1 - ns0)) -v n="$N" 'BEGIN { printf "%.2f", ns / n / 1000 }')
    sw=$(awk -v s=$((sw1 - sw0)) -v n="$N" 'BEGIN { printf "%.2f", s / n }')
    echo "round $round $system: $per_call us per statfs, server CPU $per_req us per request, $sw context switches per request" >&2
    rate=$(awk -v ns=$((t1 - t0)) -v n="$N" 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
    calls_per_s[$system]="${calls_per_s[$system]:-} $rate"
    cpu_ns[$system]="${cpu_ns[$system]:-} $per_req"
  done
done

best_rate() { printf '%s\n' $1 | sort -g | tail -1; }
least_cpu() { printf '%s\n' $1 | sort -g | head -1; }
c_rate=$(best_rate "${calls_per_s[castore]}"); s_rate=$(best_rate "${calls_per_s[squashfuse_ll]}")
c_cpu=$(least_cpu "${cpu_ns[castore]}"); s_cpu=$(least_cpu "${cpu_ns[squashfuse_ll]}")
echo "round trips, best of $ROUNDS rounds of $N statfs calls, client and servers on CPU $CPU, $(date +%F), load $(cut -d' ' -f1 /proc/loadavg):"
echo "| | statfs calls/s | server CPU per request (us) |"
echo "|---|---:|---:|"
echo "| squashfuse_ll | $s_rate | $s_cpu |"
echo "| castore | $c_rate | $c_cpu |"
echo "| castore/squashfuse_ll | $(ratio "$c_rate" "$s_rate") | $(ratio "$c_cpu" "$s_cpu") |"

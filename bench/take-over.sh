#!/usr/bin/env bash
# bench/take-over.sh: how long `castore mount --take-over` keeps requests waiting, with few node ids
# held by the kernel and with every entry of the bench tree held (after a stat walk).
#
# Usage (root, after bench/mount.sh has built its corpus and store):
#   bench/take-over.sh [ROUNDS]      ROUNDS take-overs in each state (default 3)
# Env: BENCH_DIR (default /var/tmp/castore-bench: the store bench/mount.sh imported), CASTORE
# (the launcher, default this checkout's ./castore). Prints, per take-over, the old process's line
# "handed ... over to pid N (requests waited up to T ms)": from pausing its readers to the new
# process's answer, the time a request arriving at the start of the hand-over waits.
set -euo pipefail
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
W="${BENCH_DIR:-/var/tmp/castore-bench}"
CASTORE="${CASTORE:-$ROOT/castore}"
ROUNDS="${1:-3}"
[ "$(id -u)" = 0 ] || { echo "take-over.sh: needs root (mounts)" >&2; exit 1; }
[ -d "$W/store" ] || { echo "take-over.sh: no store at $W/store: run bench/mount.sh first" >&2; exit 1; }
mnt=$(mktemp -d /tmp/castore-take-over.XXXXXX)
logs=$(mktemp -d /tmp/castore-take-over-logs.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 1
  mountpoint -q "$mnt" && umount -l "$mnt"
  rmdir "$mnt" 2>/dev/null || true
  rm -rf "$logs"
}
trap cleanup EXIT

# Starts a mount (with the given options) in the background; waits for its ready line.
start() {
  local n=$1; shift
  "$CASTORE" mount "$@" --store "$W/store" "$mnt" >"$logs/$n.out" 2>"$logs/$n.err" &
  pids+=($!)
  for _ in $(seq 1 600); do
    grep -q "castore: mounted" "$logs/$n.out" 2>/dev/null && return
    sleep 0.1
  done
  echo "take-over.sh: mount $n did not come up: $(cat "$logs/$n.err")" >&2
  exit 1
}

# Takes the mount over ROUNDS times, printing each old process's line.
take_over() {
  local label=$1
  for i in $(seq 1 "$ROUNDS"); do
    n=$((n + 1))
    start "$n" --take-over
    for _ in $(seq 1 100); do
      grep -q "handed" "$logs/$((n - 1)).err" 2>/dev/null && break
      sleep 0.1
    done
    echo "$label: $(grep handed "$logs/$((n - 1)).err")"
  done
}

n=0
start "$n"
stat "$mnt/tree" >/dev/null
take_over "few node ids held"
entries=$(find "$mnt/tree" -printf '%s\n' | wc -l)   # lstat of every entry: the kernel holds each
take_over "$entries entries held after a stat walk"

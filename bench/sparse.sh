#!/usr/bin/env bash
# bench/sparse.sh: a large file that is mostly zeros (a disk image, a padded dataset: FastCDC cuts a
# run of zeros into one chunk repeated over and over), read cold from start to end through castore
# mount, through castore mount over `castore daemon` on loopback with an empty --cache, through
# squashfuse_ll (its image built with mksquashfs, which stores runs of zero blocks as holes) and
# natively (ext4, the file sparse); prints MiB/s, the mount's CPU, the bytes the mount read from disk
# and the bytes it received over loopback, and the ratios castore/squashfuse_ll and castore/native.
# Client and mounts pinned to one CPU as in bench/mount.sh; best of BENCH_RUNS (default 2) cold runs.
#
# Usage (root): bench/sparse.sh [SIZE_MIB]   (default 4096: 96 MiB of random data in three places, zeros between)
# Env: BENCH_DIR (default /var/tmp/castore-sparse), BENCH_CPU (default 0), BENCH_RUNS (default 2),
# BENCH_SETTLE (default 2.5: seconds between mounting and the cold run, as bench/mount.sh takes them).
set -euo pipefail
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
SIZE_MIB="${1:-4096}"
WORK="${BENCH_DIR:-/var/tmp/castore-sparse}"
CPU="${BENCH_CPU:-0}"
RUNS="${BENCH_RUNS:-2}"
SETTLE="${BENCH_SETTLE:-2.5}"
PIN=(taskset -c "$CPU")
CASTORE="$ROOT/castore"
[ "$(id -u)" = 0 ] || { echo "sparse.sh: needs root (drop_caches and mounts)" >&2; exit 1; }
for tool in squashfuse_ll mksquashfs gcc taskset openssl; do
  command -v "$tool" >/dev/null || { echo "sparse.sh: needs $tool (apt-get install squashfuse squashfs-tools gcc openssl util-linux)" >&2; exit 1; }
done
export CASTORE_JAVA_OPTS="-XX:ActiveProcessorCount=2${CASTORE_JAVA_OPTS:+ $CASTORE_JAVA_OPTS}"
mkdir -p "$WORK/bin" "$WORK/mnt/castore" "$WORK/mnt/remote" "$WORK/mnt/squash"
. "$ROOT/bench/lib-mount.sh"
build_clients
(cd "$ROOT" && ./castore --version >/dev/null)   # build the CLI outside any measurement

# ---- corpus: one sparse file, its store, its image --------------------------------------------
FILE="$WORK/corpus/image/disk.img"
if [ ! -f "$WORK/corpus.done" ] || [ "$(cat "$WORK/corpus.done")" != "$SIZE_MIB" ]; then
  rm -rf "$WORK/corpus" "$WORK/store" "$WORK/daemon-store" "$WORK/image.sqsh" "$WORK/corpus.done"
  mkdir -p "$WORK/corpus/image"
  truncate -s "${SIZE_MIB}M" "$FILE"
  # Random-looking data (AES-CTR of zeros), written into the sparse file at MiB offset $3.
  data() {
    { openssl enc -aes-128-ctr -nosalt -K "$1" -iv 0 </dev/zero 2>/dev/null || true; } | head -c "$2" |
      dd of="$FILE" bs=1M seek="$3" iflag=fullblock conv=notrunc status=none
  }
  data 000102030405060708090a0b0c0d0e0f $((64 << 20)) 0
  data 0f0e0d0c0b0a09080706050403020100 $((16 << 20)) $((SIZE_MIB / 2))
  data 00112233445566778899aabbccddeeff $((16 << 20)) $((SIZE_MIB - 16))
  "$CASTORE" import --store "$WORK/store" --quiet --name image "$WORK/corpus/image" >/dev/null
  "$CASTORE" import --store "$WORK/daemon-store" --quiet --name image "$WORK/corpus/image" >/dev/null
  mksquashfs "$WORK/corpus/image" "$WORK/image.sqsh" -noappend -noI -noD -noF -noX -quiet >/dev/null
  echo "$SIZE_MIB" >"$WORK/corpus.done"
fi
BYTES=$((SIZE_MIB << 20))

MOUNTED=() PIDS=()
stop_all() {
  for m in "${MOUNTED[@]}"; do mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m"; }; done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  MOUNTED=() PIDS=()
}
DAEMON=""
trap 'stop_all; [ -z "$DAEMON" ] || { kill "$DAEMON" 2>/dev/null; wait "$DAEMON" 2>/dev/null; } || true' EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$CASTORE" daemon --store "$WORK/daemon-store" --listen "127.0.0.1:$port" >"$WORK/daemon.log" 2>&1 &
DAEMON=$!
for _ in $(seq 600); do grep -q 'castore daemon: serving' "$WORK/daemon.log" && break; sleep 0.1; done

# Mounts $1 fresh; sets SRV (the PID serving the file, 0 for native) and SRV_FILE (where it is).
mount_fresh() {
  local m pid=0 line=""
  case "$1" in
    native) SRV=0 SRV_FILE="$FILE"; return ;;
    castore|remote)
      local args=(--store "$WORK/store")
      m="$WORK/mnt/castore"
      if [ "$1" = remote ]; then
        rm -rf "$WORK/cache"
        args=(--store "grpc+http://127.0.0.1:$port" --cache "$WORK/cache") m="$WORK/mnt/remote"
      fi
      coproc MOUNT { exec "${PIN[@]}" "$CASTORE" mount "${args[@]}" --threads 4 "$m" 2>&1; }
      pid=$!
      while [[ "$line" != "castore: mounted "* ]]; do read -r -t 300 line <&"${MOUNT[0]}"; done ;;
    squashfuse_ll)
      m="$WORK/mnt/squash"
      "${PIN[@]}" squashfuse_ll -f -o clone_fd "$WORK/image.sqsh" "$m" &
      pid=$!
      for _ in $(seq 100); do mountpoint -q "$m" && break; sleep 0.05; done ;;
  esac
  MOUNTED+=("$m") PIDS+=("$pid")
  SRV=$pid SRV_FILE="$m/image/disk.img"   # castore: root "image"
  [ "$1" != squashfuse_ll ] || SRV_FILE="$m/disk.img"   # the image holds the directory's contents
}

cpu_ms() { [ "$1" = 0 ] && { echo 0; return; }; awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) * 1000 / t}' "/proc/$1/stat"; }
disk_bytes() { [ "$1" = 0 ] && { echo 0; return; }; awk '/^read_bytes/ {print $2}' "/proc/$1/io"; }
lo_bytes() { awk '/ lo:/ {print $2}' /proc/net/dev; }

declare -A BEST CPUMS DISK NET
for sys in native squashfuse_ll castore remote; do
  for _ in $(seq "$RUNS"); do
    mount_fresh "$sys"
    pid=$SRV path=$SRV_FILE
    stat "$path" >/dev/null
    sleep "$SETTLE"
    sync; echo 3 >/proc/sys/vm/drop_caches
    c0=$(cpu_ms "$pid") r0=$(disk_bytes "$pid") n0=$(lo_bytes) t0=$(date +%s%N)
    "${PIN[@]}" "$WORK/bin/fsbench" range "$path" 0 "$BYTES" >/dev/null
    t1=$(date +%s%N) c1=$(cpu_ms "$pid") r1=$(disk_bytes "$pid") n1=$(lo_bytes)
    rate=$(awk -v b="$BYTES" -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f", b / 1048576 / (ns / 1e9) }')
    echo "$sys: $rate MiB/s, CPU $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%d", b - a }') ms, read from disk $(( (r1 - r0) >> 20 )) MiB, over loopback $(( (n1 - n0) >> 20 )) MiB" >&2
    if [ -z "${BEST[$sys]:-}" ] || awk -v a="$rate" -v b="${BEST[$sys]}" 'BEGIN { exit !(a > b) }'; then
      BEST[$sys]=$rate
      CPUMS[$sys]=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%d", b - a }')
      DISK[$sys]=$(( (r1 - r0) >> 20 )) NET[$sys]=$(( (n1 - n0) >> 20 ))
    fi
    stop_all
  done
done

echo
echo "castore sparse-file benchmark, $(date -u +%Y-%m-%d), $(nproc) CPUs, kernel $(uname -r), client and mounts on CPU $CPU;"
echo "$SIZE_MIB MiB file, 96 MiB of data in three places, zeros between; best of $RUNS cold runs (${SETTLE} s after mounting); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| system | MiB/s | server CPU ms | read from disk MiB | over loopback MiB | /squashfuse_ll | /native |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for sys in native squashfuse_ll castore remote; do
  name=$sys; [ "$sys" = remote ] && name="castore over gRPC (cold --cache)"
  [ "$sys" = native ] && { CPUMS[$sys]="-"; DISK[$sys]="-"; }
  echo "| $name | ${BEST[$sys]} | ${CPUMS[$sys]} | ${DISK[$sys]} | ${NET[$sys]} | $(ratio "${BEST[$sys]}" "${BEST[squashfuse_ll]}") | $(ratio "${BEST[$sys]}" "${BEST[native]}") |"
done

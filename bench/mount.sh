#!/usr/bin/env bash
# bench/mount.sh: the same corpus served by castore mount, by squashfuse_ll (C, libfuse3 low-level)
# and by the native directory, each cold (fresh mount, caches dropped), warm (run again) and
# cold-again (caches dropped again under the same, already-running mount: the cold case of a
# long-lived mount, whose JVM has compiled its request path):
#   walk   find over the tree (names only)                  entries/s
#   walkstat  find over the tree, stat of every entry (find -printf %s: like ls -lR, du, tar)   entries/s
#   lstat  lstat of every entry                             entries/s
#   read   every file of the tree read whole                MiB/s
#   seq-random / seq-real   sequential read of a 1 GiB file (random / real data)   MiB/s
#   pread  20k random 4 KiB preads in the random file       preads/s
#   par4   4 parallel readers, each a quarter of the random file                   MiB/s
# and prints castore/squashfuse_ll and castore/native for each (throughput ratios: > 1 is faster).
#
# Needs root (drop_caches, mounts), squashfuse + squashfs-tools, gcc. The corpus (a copy of
# /usr/share and /usr/include, >50k files, plus the two 1 GiB files), the castore store and the
# squashfs image (uncompressed, like the castore local store) are built once under $BENCH_DIR.
# Client and daemons run on one CPU (taskset -c $BENCH_CPU): split across the 2 CPUs the figures
# swing by 3x. The runs go in $BENCH_COLD rounds (default 2); in each, every system in turn gets a
# fresh mount, one cold run, $BENCH_WARM warm runs (default 2) and one cold-again run. Rounds go
# native, squashfuse_ll, castore, then the reverse, and so on: a cold run pays for the memory the
# run before it freed (the VM hands it back to its host), so no system always follows the same one
# (docs/performance.md, Mount, "Session 30"). Each figure is
# the best of its runs: other processes on a shared machine only ever slow a run down.
# With CASTORE_PASSTHROUGH=1, castore mounts with --passthrough $BENCH_DIR/plain (plain copies of files
# of 1 MiB or more, read by the kernel itself): the copies are made first by a mount that reads those
# files once, so "cold" means copies on disk, page cache dropped (the state of any later mount).
# BENCH_SETTLE=SECONDS (default 0) waits that long between a fresh mount and its cold run, for every
# system: the cold case of a mount that was idle a while (castore's warm-up has then compiled its
# request path; docs/filesystem.md, "Warm-up"). With 0 the cold run starts as soon as the mount is up.
# Usage: bench/mount.sh [workload...]   (default: all)
set -euo pipefail
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
WORK="${BENCH_DIR:-/var/tmp/castore-bench}"
CPU="${BENCH_CPU:-0}"
THREADS="${CASTORE_THREADS:-4}"
COLD_RUNS="${BENCH_COLD:-2}"
WARM_RUNS="${BENCH_WARM:-2}"
PASSTHROUGH="${CASTORE_PASSTHROUGH:-0}"
SETTLE="${BENCH_SETTLE:-0}"
CASTORE_ARGS=()
[ "$PASSTHROUGH" = 1 ] && CASTORE_ARGS=(--passthrough "$WORK/plain")
WORKLOADS=("${@:-walk walkstat lstat read seq-random seq-real pread par4}")
read -r -a WORKLOADS <<<"${WORKLOADS[*]}"

die() { echo "mount.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (drop_caches and mounts)"
for tool in squashfuse_ll mksquashfs gcc taskset fusermount3; do
  command -v "$tool" >/dev/null || die "$tool missing (apt-get install squashfuse squashfs-tools gcc util-linux fuse3)"
done
mkdir -p "$WORK"/{bin,mnt/castore,mnt/squash}
CORPUS="$WORK/corpus"
STORE="$WORK/store"
IMAGE="$WORK/corpus.sqsh"
export CASTORE_JAVA_OPTS="-XX:ActiveProcessorCount=2${CASTORE_JAVA_OPTS:+ $CASTORE_JAVA_OPTS}"
CASTORE="$ROOT/castore"
PIN=(taskset -c "$CPU")
BIG_BYTES=1073741824
. "$ROOT/bench/lib-mount.sh"   # build_clients, drop_caches, measure, unit, ratio, best

# ---- corpus, store, image (built once) -----------------------------------------------------
build_corpus() {
  if [ ! -f "$CORPUS/.done" ]; then
    echo "building the corpus in $CORPUS ..." >&2
    rm -rf "$CORPUS"; mkdir -p "$CORPUS/tree" "$CORPUS/big"
    cp -a /usr/share "$CORPUS/tree/share"
    cp -a /usr/include "$CORPUS/tree/include"
    # 1 GiB of random bytes (AES-CTR keystream: reproducible) and 1 GiB of real data (system libraries).
    openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv 0 </dev/zero 2>/dev/null \
      | head -c 1073741824 >"$CORPUS/big/random.bin" || true   # the producers end by SIGPIPE
    find /usr/lib /usr/bin /usr/share -xdev -type f -size +16k -print0 2>/dev/null | LC_ALL=C sort -z \
      | xargs -0 cat 2>/dev/null | head -c 1073741824 >"$CORPUS/big/real.bin" || true
    [ "$(stat -c %s "$CORPUS/big/random.bin")" = 1073741824 ] || die "could not write 1 GiB of random data"
    [ "$(stat -c %s "$CORPUS/big/real.bin")" = 1073741824 ] || die "not 1 GiB of real data on this machine"
    touch "$CORPUS/.done"
  fi
  (cd "$CORPUS/tree" && find . -mindepth 1 -print0) >"$WORK/entries.list"
  (cd "$CORPUS/tree" && find . -type f -print0) >"$WORK/files.list"
  # The marker names the store layout: a store from an older castore (directories among chunk
  # data, before metadata packs; trees laid out backwards, before walk-order import; big files
  # interleaved, before writer affinity; chunks without a recorded CRC32C) is rebuilt,
  # so the bench measures what castore writes today.
  if [ ! -f "$STORE/.done-layout-5" ]; then
    echo "importing into the castore store $STORE ..." >&2
    rm -rf "$STORE"
    "$CASTORE" import --store "$STORE" --quiet --name tree "$CORPUS/tree" >/dev/null
    "$CASTORE" import --store "$STORE" --quiet --name big "$CORPUS/big" >/dev/null
    touch "$STORE/.done-layout-5"
  fi
  if [ ! -f "$IMAGE.done" ]; then
    echo "building the squashfs image $IMAGE ..." >&2
    mksquashfs "$CORPUS" "$IMAGE" -noappend -noI -noD -noF -noX -quiet -e .done >/dev/null
    touch "$IMAGE.done"
  fi
}

# ---- the three systems ---------------------------------------------------------------------
DAEMON=""
unmount_all() {
  for m in "$WORK/mnt/castore" "$WORK/mnt/squash"; do
    if mountpoint -q "$m"; then umount "$m" 2>/dev/null || umount -l "$m"; fi
  done
  if [ -n "$DAEMON" ]; then
    # A daemon still starting (or refusing to go) is told to stop rather than waited for forever.
    for _ in $(seq 100); do kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.05; done
    kill "$DAEMON" 2>/dev/null || true
    wait "$DAEMON" 2>/dev/null || true
    DAEMON=""
  fi
}
trap unmount_all EXIT


# Mounts $1 fresh with cold caches and sets BASE to where the corpus appears. The caches are
# dropped once the daemon is up, right before the workload, for every system alike: this VM hands
# memory freed by drop_caches back to its host about 2 s later (virtio-balloon free page reporting),
# and touching such pages again costs a host fault each, so a workload that starts a second after
# the drop (a JVM coming up) paid up to a second more system time than one that starts at once
# (docs/performance.md, "Cold runs and the VM's free page reporting").
start() {
  unmount_all
  case "$1" in
    native) BASE="$CORPUS" ;;
    castore)
      coproc CASTORE_MOUNT { exec "${PIN[@]}" "$CASTORE" mount --store "$STORE" --threads "$THREADS" "${CASTORE_ARGS[@]}" "$WORK/mnt/castore" 2>&1; }
      DAEMON=$!
      ready=""
      while [[ "$ready" != "castore: mounted "* ]]; do   # the launcher may say it is building first
        read -r -t 300 ready <&"${CASTORE_MOUNT[0]}" || die "castore mount did not start${ready:+: $ready}"
      done
      BASE="$WORK/mnt/castore" ;;
    squashfuse_ll)
      "${PIN[@]}" squashfuse_ll -f -o clone_fd "$IMAGE" "$WORK/mnt/squash" &
      DAEMON=$!
      for _ in $(seq 100); do mountpoint -q "$WORK/mnt/squash" && break; sleep 0.05; done
      BASE="$WORK/mnt/squash" ;;
  esac
  # The daemon's own start-up is not part of any workload.
  stat "$BASE/tree" >/dev/null
  sleep "$SETTLE"
  drop_caches
}

# With --passthrough: one mount reads every file of 1 MiB or more once, then waits until the
# copies those opens asked for are made (nothing left in plain/tmp, the directory's size steady).
prepare_copies() {
  [ "$PASSTHROUGH" = 1 ] || return 0
  start castore
  (cd "$BASE" && find tree big -type f -size +1023k -print0 | xargs -0 cat >/dev/null)
  local last=-1 now
  for _ in $(seq 600); do
    sleep 1
    now=$(du -sb "$WORK/plain" | cut -f1)
    [ -z "$(ls -A "$WORK/plain/tmp" 2>/dev/null)" ] && [ "$now" = "$last" ] && break
    last=$now
  done
  echo "plain copies: $(find "$WORK/plain" -type f -name '????????????????????????????????????????????????????????????????' | wc -l) files, $(du -sh "$WORK/plain" | cut -f1)" >&2
  unmount_all
}

build_clients
build_corpus
(cd "$ROOT" && ./castore --version >/dev/null)   # build the CLI outside any measurement
prepare_copies
declare -A RESULT
for w in "${WORKLOADS[@]}"; do
  # Rounds: each system in turn on a fresh mount (cold, warm, cold-again), so that a slow spell
  # of the shared machine or its disk slows one run of each system rather than all runs of one.
  declare -A COLD=() WARM=() AGAIN=()
  order=(native squashfuse_ll castore)
  for _ in $(seq "$COLD_RUNS"); do
    for sys in "${order[@]}"; do
      start "$sys"
      COLD[$sys]+=" $(measure "$w")"
      for _ in $(seq "$WARM_RUNS"); do WARM[$sys]+=" $(measure "$w")"; done
      drop_caches
      AGAIN[$sys]+=" $(measure "$w")"
    done
    # Each round in the other order: a cold run pays for the memory the run before it freed
    # (this VM hands freed pages back to its host), so no system always follows the same one.
    order=("${order[2]}" "${order[1]}" "${order[0]}")
  done
  for sys in native squashfuse_ll castore; do
    read -r -a cold <<<"${COLD[$sys]}"; read -r -a warm <<<"${WARM[$sys]}"; read -r -a again <<<"${AGAIN[$sys]}"
    RESULT[$w,$sys,cold]=$(best "${cold[@]}")
    RESULT[$w,$sys,warm]=$(best "${warm[@]}")
    RESULT[$w,$sys,cold-again]=$(best "${again[@]}")
    echo "$w $sys cold ${cold[*]} warm ${warm[*]} cold-again ${again[*]} $(unit "$w")" >&2
  done
done
unmount_all

echo
echo "castore mount benchmark, $(date -u +%Y-%m-%d), $(nproc) CPUs, kernel $(uname -r), client and daemons on CPU $CPU,"
echo "castore --threads $THREADS ${CASTORE_ARGS[*]}, JVM $CASTORE_JAVA_OPTS; best of $COLD_RUNS rounds of one cold (${SETTLE} s after mounting), $WARM_RUNS warm and one cold-again run per system; load average $(cut -d' ' -f1-3 /proc/loadavg); corpus: $(tr -cd '\0' <"$WORK/entries.list" | wc -c) entries, $(tr -cd '\0' <"$WORK/files.list" | wc -c) files + 2 x 1 GiB"
echo
echo "| workload | unit | state | native | squashfuse_ll | castore | castore/squashfuse_ll | castore/native |"
echo "|---|---|---|---:|---:|---:|---:|---:|"
for w in "${WORKLOADS[@]}"; do
  for state in cold warm cold-again; do
    n=${RESULT[$w,native,$state]} s=${RESULT[$w,squashfuse_ll,$state]} c=${RESULT[$w,castore,$state]}
    echo "| $w | $(unit "$w") | $state | $n | $s | $c | $(ratio "$c" "$s") | $(ratio "$c" "$n") |"
  done
done

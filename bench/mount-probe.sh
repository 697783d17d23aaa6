#!/usr/bin/env bash
# bench/mount-probe.sh: one workload on a fresh mount, caches dropped right before it, with what the serving
# process itself spent: wall time, its CPU (user/system), the bytes it read from disk
# (/proc/PID/io read_bytes; the device's read requests and how long it was busy, from /sys, of every
# process: busy close to the wall time means the disk set the pace) and by read system calls (rchar:
# page-cache hits included). Steadier than wall-clock ratios on a shared machine, and the way
# to see one change's effect (docs/performance.md, Mount).
#
# Usage (root, after bench/mount.sh has built the corpus, store and image):
#   bench/mount-probe.sh castore|squashfuse_ll WORKLOAD [MOUNT OPTIONS...]
#   WORKLOAD: walk | walkstat (find -printf %s: stats what it lists) | lstat (every entry by path) | read (every file of the tree) |
#             seq (1 GiB sequential, random data) | seq-real (the same, real data) | pread (20k random 4 KiB preads) |
#             par4 (4 parallel readers, each a quarter of the 1 GiB file)
#   e.g. bench/mount-probe.sh castore pread --no-cache-push
# BENCH_SETTLE=SECONDS (default 0): wait that long after mounting before dropping the caches (a mount
# that was idle a while: castore's warm-up has run; compare with the mount option --no-warm-up).
# BENCH_FILL=MIB (default 0): read that much of a scratch file ($BENCH_DIR/fill.bin, made once) into the
# page cache before the drop, so the drop frees that much memory the VM has not handed back to its host.
# BENCH_AGAIN=1: run the workload twice before dropping the caches (cold-again: the mount has served it before).
# BENCH_STORE=ADDRESS (default $BENCH_DIR/store): the store castore mounts, e.g.
# 'local:///var/tmp/castore-bench/store?direct-reads=false' for the page-cache read path.
# BENCH_PERF=FILE: also `perf record -C $BENCH_CPU` the workload into FILE (read it with
# `perf report -i FILE --no-children --sort comm,dso,sym`; add -XX:+UnlockDiagnosticVMOptions
# -XX:+DumpPerfMapAtExit to CASTORE_JAVA_OPTS for JIT symbols); BENCH_PERF_EVENT=EVENT records
# that event with call graphs instead of CPU samples (e.g. page-faults: who touches fresh memory);
# BENCH_PERF_FREQ=HZ samples that often (default 4999; a 150 ms walk wants more, e.g. 25000, at the
# price of a slower run); BENCH_PERF_CALLS=1 records call graphs of CPU samples too (add
# -XX:+PreserveFramePointer for Java frames).
# BENCH_HOOK='COMMAND': run after the settle wait, before the drop, with $pid the mount's process
# (e.g. 'jcmd $pid GC.run' to see what the state of its heap costs the workload).
set -euo pipefail
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
WORK="${BENCH_DIR:-/var/tmp/castore-bench}"
CPU="${BENCH_CPU:-0}"
system=${1:?castore or squashfuse_ll}
workload=${2:?walk, walkstat, lstat, read, seq, seq-real, pread or par4}
shift 2
M="$WORK/mnt/probe"
mkdir -p "$M"
[ -x "$WORK/bin/fsbench" ] && [ -f "$WORK/corpus.sqsh.done" ] || { echo "run bench/mount.sh first" >&2; exit 1; }
(cd "$ROOT" && ./castore --version >/dev/null)   # build outside the measurement

pid=""
cleanup() {
  mountpoint -q "$M" && { umount "$M" 2>/dev/null || umount -l "$M"; }
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
}
trap cleanup EXIT

run_workload() {
  case "$workload" in
    walk) taskset -c "$CPU" find "$M/tree" >/dev/null ;;
    walkstat) taskset -c "$CPU" find "$M/tree" -printf '%s\n' >/dev/null ;;
    lstat) taskset -c "$CPU" "$WORK/bin/fsbench" lstat "$M/tree" "$WORK/entries.list" >/dev/null ;;
    read) taskset -c "$CPU" "$WORK/bin/fsbench" read "$M/tree" "$WORK/files.list" >/dev/null ;;
    seq) taskset -c "$CPU" "$WORK/bin/fsbench" range "$M/big/random.bin" 0 1073741824 >/dev/null ;;
    seq-real) taskset -c "$CPU" "$WORK/bin/fsbench" range "$M/big/real.bin" 0 1073741824 >/dev/null ;;
    pread) taskset -c "$CPU" "$WORK/bin/fsbench" pread "$M/big/random.bin" 20000 >/dev/null ;;
    par4)
      q=$((1073741824 / 4)) pids=()
      for i in 0 1 2 3; do taskset -c "$CPU" "$WORK/bin/fsbench" range "$M/big/random.bin" $((i * q)) $q >/dev/null & pids+=($!); done
      for p in "${pids[@]}"; do wait "$p"; done ;;
    *) echo "unknown workload $workload" >&2; exit 1 ;;
  esac
}

case "$system" in
  castore)
    coproc PROBE { CASTORE_JAVA_OPTS="-XX:ActiveProcessorCount=2${CASTORE_JAVA_OPTS:+ $CASTORE_JAVA_OPTS}" exec taskset -c "$CPU" \
      "$ROOT/castore" mount "$@" --store "${BENCH_STORE:-$WORK/store}" "$M" 2>&1; }
    pid=$!
    line=""
    while [[ "$line" != "castore: mounted "* ]]; do read -r -t 120 line <&"${PROBE[0]}"; done ;;
  squashfuse_ll)
    taskset -c "$CPU" squashfuse_ll -f -o clone_fd "$WORK/corpus.sqsh" "$M" &
    pid=$!
    for _ in $(seq 100); do mountpoint -q "$M" && break; sleep 0.05; done ;;
  *) echo "unknown system $system" >&2; exit 1 ;;
esac
stat "$M/tree" "$M/big" >/dev/null
sleep "${BENCH_SETTLE:-0}"
[ -n "${BENCH_HOOK:-}" ] && eval "$BENCH_HOOK"
# BENCH_AGAIN=1: the workload twice first (cold, then warm), so the measured run is a long-lived
# mount's cold case (bench/mount.sh's cold-again).
if [ "${BENCH_AGAIN:-0}" = 1 ]; then run_workload; run_workload; fi
# BENCH_FILL=MIB: fill the page cache with that much of a scratch file first, so the drop below frees
# that much memory the VM has not yet handed back to its host (docs/performance.md, "Cold runs and
# the VM's free page reporting").
if [ "${BENCH_FILL:-0}" -gt 0 ]; then
  fill="$WORK/fill.bin"
  [ "$(stat -c %s "$fill" 2>/dev/null || echo 0)" -ge $((BENCH_FILL * 1048576)) ] \
    || head -c $((BENCH_FILL * 1048576)) /dev/zero >"$fill"
  head -c $((BENCH_FILL * 1048576)) "$fill" >/dev/null
fi
# Dropped once the daemon is up, right before the workload (see bench/mount.sh, start).
sync; echo 3 >/proc/sys/vm/drop_caches

# Read requests completed by the block device under the bench directory (its /sys stat's first field).
dev_stat="/sys/class/block/$(basename "$(df --output=source "$WORK" | tail -1)")/stat"
# Read requests completed, and the milliseconds the device was busy (fields 1 and 10).
disk_reads() { if [ -r "$dev_stat" ]; then awk '{print $1, $10}' "$dev_stat"; else echo 0 0; fi; }
sample() { echo "$(awk '/^read_bytes/ {print $2}' /proc/$pid/io) $(awk '/^rchar/ {print $2}' /proc/$pid/io) $(awk '{print $14, $15, $10}' /proc/$pid/stat) $(disk_reads) $(date +%s%N)"; }
perf_pid=""
if [ -n "${BENCH_PERF:-}" ]; then
  calls=""
  [ -n "${BENCH_PERF_EVENT:-}" ] || [ "${BENCH_PERF_CALLS:-0}" = 1 ] && calls=-g
  perf record -q -C "$CPU" ${BENCH_PERF_EVENT:+-e "$BENCH_PERF_EVENT"} $calls -F "${BENCH_PERF_FREQ:-4999}" -o "$BENCH_PERF" 2>/dev/null &
  perf_pid=$!
  sleep 1   # perf's own start-up outside the measurement
fi
read -r r0 c0 u0 s0 f0 d0 b0 t0 < <(sample)
run_workload
read -r r1 c1 u1 s1 f1 d1 b1 t1 < <(sample)
[ -n "$perf_pid" ] && { kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true; }
tick=$(getconf CLK_TCK)
echo "$system $workload $*: $(( (t1 - t0) / 1000000 )) ms wall, CPU user $(( (u1 - u0) * 1000 / tick )) ms" \
  "system $(( (s1 - s0) * 1000 / tick )) ms, $((f1 - f0)) minor faults, read from disk $(( (r1 - r0) / 1048576 )) MiB in $((d1 - d0)) device reads (all processes; device busy $((b1 - b0)) ms)," \
  "read by syscalls $(( (c1 - c0) / 1048576 )) MiB, load $(cut -d' ' -f1 /proc/loadavg)"

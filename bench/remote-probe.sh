#!/usr/bin/env bash
# bench/remote-probe.sh: one read of a 1 GiB file through a fresh mount over `castore daemon` on
# loopback (with --cache), with what the mount process and the daemon spent in CPU. Steadier than
# wall-clock figures on a shared machine, and quick enough to alternate two builds
# (docs/performance.md, "Remote mount").
#
# Usage (root):
#   bench/remote-probe.sh setup          corpus (two 1 GiB random files), daemon on 127.0.0.1, imports
#   bench/remote-probe.sh run MODE [WORKLOAD]
#       MODE: cold (empty --cache) | warm (the cache a cold run left) | local (the local store)
#       WORKLOAD: seq (default; 1 GiB sequential) | par4 (4 readers, a quarter each) | pread (20k random 4 KiB)
#                 | walk (find over root "tree", after add-tree; e.g. MOUNT_ARGS=--prefetch)
#                 | read (every file of root "tree" read whole, one after another, after add-tree)
#                 | lstat (lstat of every entry of root "tree" by its path, after add-tree)
#   Every run also prints how long the mount took to its ready line and its first stat of a root.
#   bench/remote-probe.sh add-tree DIR   imports DIR as root "tree" into the daemon and the local store (for walk)
#   bench/remote-probe.sh daemon-cpu [RUNS]  restarts the daemon with $CASTORE, then its CPU for each of RUNS
#                                        reads of the 1 GiB blob (after one to warm it up)
#   bench/remote-probe.sh setup-s3       S3Proxy (filesystem backend) on 127.0.0.1 beside the daemon, roots "big"
#                                        and "big2" imported into it; `REMOTE=s3 bench/remote-probe.sh run ...` then mounts
#                                        from it (its own --cache), and add-tree imports into it too
#   bench/remote-probe.sh stop           stops the daemon (and S3Proxy)
# Env: REMOTE (grpc, the default, or s3: the remote store of cold and warm runs), BENCH_DIR (default /var/tmp/castore-remote-probe), BENCH_CPU (default 0: the mount and the
# readers are pinned to it, the daemon is not), CASTORE (the launcher to mount with, default this
# checkout's ./castore: another checkout's measures another build), WARMUP=1 (cold only: read the
# first file, then measure a second one: a warm JVM on a cold cache; WARMUP_MIB=N reads only its first
# N MiB), BENCH_DAEMON_WARM=1 (cold and warm: read the daemon's store into the page cache after the
# drop, so the daemon's disk reads are out of the measurement), BENCH_THREADS=1 (also print the
# mount's CPU during the workload per thread name), CASTORE_JAVA_OPTS (added to
# -XX:ActiveProcessorCount=2, as bench/remote.sh does), MOUNT_ARGS (more `castore mount` options),
# BENCH_FILES=FILE (read: the NUL-separated list of files under root "tree" to read, in its order;
# default $W/files.list, the source's readdir order, e.g. a sorted copy for name order),
# BENCH_SETTLE=SECONDS (default 0: wait that long after the first stat, before the workload, so
# the mount's warm-up, which starts after 1 s idle, has run),
# BENCH_PERF=FILE (also `perf record -g -C $BENCH_CPU` the workload into FILE; BENCH_PERF_EVENT=EVENT
# records that event instead of CPU samples, e.g. page-faults: who touches fresh memory; add
# -XX:+UnlockDiagnosticVMOptions -XX:+DumpPerfMapAtExit -XX:+PreserveFramePointer to CASTORE_JAVA_OPTS
# for JIT symbols).
set -euo pipefail
ROOT="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
W="${BENCH_DIR:-/var/tmp/castore-remote-probe}"
CPU="${BENCH_CPU:-0}"
CASTORE="${CASTORE:-$ROOT/castore}"
GiB=1073741824
[ "$(id -u)" = 0 ] || { echo "remote-probe.sh: needs root (drop_caches and mounts)" >&2; exit 1; }
# The credentials S3Proxy is started with (setup-s3), for every command that talks to it.
S3_ENV=(AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The corpus: root NAME ("big" or "big2") as one GiB of AES-CTR bytes under $W/corpus/NAME.
make_big() {
  local key=000102030405060708090a0b0c0d0e0f
  [ "$1" = big2 ] && key=0f0e0d0c0b0a09080706050403020100
  mkdir -p "$W/corpus/$1"
  openssl enc -aes-128-ctr -nosalt -K "$key" -iv 0 </dev/zero 2>/dev/null | head -c "$GiB" >"$W/corpus/$1/random.bin" || true
}

case "${1:-}" in
setup)
  mkdir -p "$W/bin" "$W/mnt"
  WORK="$W"; . "$ROOT/bench/lib-mount.sh"; build_clients
  make_big big; make_big big2
  (cd "$ROOT" && ./castore --version >/dev/null)
  port=$(free_port)
  "$ROOT/castore" daemon --store "$W/daemon-store" --listen "127.0.0.1:$port" >"$W/daemon.log" 2>&1 &
  echo $! >"$W/daemon.pid"
  for _ in $(seq 1 600); do grep -q 'castore daemon: serving' "$W/daemon.log" && break; sleep 0.1; done
  echo "grpc+http://127.0.0.1:$port" >"$W/address"
  for name in big big2; do
    "$ROOT/castore" import --store "$(cat "$W/address")" --quiet --name "$name" "$W/corpus/$name" >/dev/null
  done
  "$ROOT/castore" import --store "$W/local-store" --quiet --name big "$W/corpus/big" >/dev/null
  rm -rf "$W/corpus"
  echo "daemon $(cat "$W/daemon.pid") serving $(cat "$W/address")" ;;
setup-s3)
  # The same kind of S3Proxy as bench/remote.sh, on the same random GiB as root "big".
  (cd "$ROOT" && ./mvnw -B -q -pl s3 -am package -DskipTests)
  . "$ROOT/bin/find-jdk.sh"
  port=$(free_port)
  mkdir -p "$W/s3data/bench"
  printf '%s\n' "s3proxy.endpoint=http://127.0.0.1:$port" s3proxy.authorization=aws-v2-or-v4 s3proxy.identity=bench \
    s3proxy.credential=bench-secret jclouds.provider=filesystem-nio2 "jclouds.filesystem.basedir=$W/s3data" >"$W/s3proxy.conf"
  "$JAVA_HOME/bin/java" -jar "$ROOT/s3/target/s3proxy/s3proxy.jar" --properties "$W/s3proxy.conf" >"$W/s3proxy.log" 2>&1 &
  echo $! >"$W/s3proxy.pid"
  for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  echo "s3://bench/probe?endpoint=http://127.0.0.1:$port" >"$W/s3-address"
  export "${S3_ENV[@]}"
  for name in big big2; do   # big2 for WARMUP=1, as in setup
    make_big "$name"
    "$ROOT/castore" import --store "$(cat "$W/s3-address")" --quiet --name "$name" "$W/corpus/$name" >/dev/null
  done
  rm -rf "$W/corpus"
  echo "S3Proxy $(cat "$W/s3proxy.pid") serving $(cat "$W/s3-address")" ;;
add-tree)
  dir=${2:?the directory to import as root "tree"}
  "$CASTORE" import --store "$(cat "$W/address")" --quiet --name tree "$dir" >/dev/null
  "$CASTORE" import --store "$W/local-store" --quiet --name tree "$dir" >/dev/null
  if [ -f "$W/s3-address" ]; then
    env "${S3_ENV[@]}" "$CASTORE" import --store "$(cat "$W/s3-address")" --quiet --name tree "$dir" >/dev/null
  fi
  (cd "$dir" && find . -type f -print0) >"$W/files.list"
  (cd "$dir" && find . -mindepth 1 -print0) >"$W/entries.list" ;;
stop)
  kill "$(cat "$W/daemon.pid")"
  if [ -f "$W/s3proxy.pid" ]; then kill "$(cat "$W/s3proxy.pid")" 2>/dev/null || true; rm -f "$W/s3proxy.pid" "$W/s3-address"; fi ;;
daemon-cpu)
  # The daemon's own CPU per GiB served: restarts the daemon with $CASTORE (another checkout's
  # launcher measures another build) on the same store and port, warms it with one read of root
  # "big", then times RUNS more (`castore cat` of big/random.bin from this checkout).
  runs=${2:-4}
  address=$(cat "$W/address")
  kill "$(cat "$W/daemon.pid")" 2>/dev/null || true
  while kill -0 "$(cat "$W/daemon.pid")" 2>/dev/null; do sleep 0.1; done
  "$CASTORE" daemon --store "$W/daemon-store" --listen "127.0.0.1:${address##*:}" >"$W/daemon.log" 2>&1 &
  daemon=$!
  echo "$daemon" >"$W/daemon.pid"
  for _ in $(seq 1 600); do grep -q 'castore daemon: serving' "$W/daemon.log" && break; sleep 0.1; done
  tick=$(getconf CLK_TCK)
  "$ROOT/castore" cat --store "$address" big/random.bin >/dev/null
  for _ in $(seq "$runs"); do
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$daemon/stat"); t0=$(date +%s%N)
    "$ROOT/castore" cat --store "$address" big/random.bin >/dev/null
    t1=$(date +%s%N); read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$daemon/stat")
    echo "daemon-cpu: $(( (t1 - t0) / 1000000 )) ms wall, daemon CPU user $(( (u1 - u0) * 1000 / tick )) ms system $(( (s1 - s0) * 1000 / tick )) ms"
  done ;;
run)
  mode=${2:?cold, warm or local}
  workload=${3:-seq}
  # "daemon" is whichever server the remote runs read from: castore daemon or S3Proxy.
  case "${REMOTE:-grpc}" in
    grpc) daemon=$(cat "$W/daemon.pid") address=$(cat "$W/address") cache="$W/cache" ;;
    s3) daemon=$(cat "$W/s3proxy.pid") address=$(cat "$W/s3-address") cache="$W/cache-s3"
        export "${S3_ENV[@]}" ;;
    *) echo "unknown REMOTE ${REMOTE}: grpc or s3" >&2; exit 2 ;;
  esac
  case "$mode" in
    local) args=(--store "$W/local-store") ;;
    cold) rm -rf "$cache"; args=(--store "$address" --cache "$cache") ;;
    warm) args=(--store "$address" --cache "$cache") ;;
    *) echo "unknown mode $mode" >&2; exit 2 ;;
  esac
  M="$W/mnt"
  pid=""
  cleanup() {
    mountpoint -q "$M" && { umount "$M" 2>/dev/null || umount -l "$M"; }
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  }
  trap cleanup EXIT
  launched=$(date +%s%N)
  coproc PROBE { CASTORE_JAVA_OPTS="-XX:ActiveProcessorCount=2 ${CASTORE_JAVA_OPTS:-}" exec taskset -c "$CPU" \
      "$CASTORE" mount "${args[@]}" --threads 4 ${MOUNT_ARGS:-} "$M" 2>&1; }
  pid=$!
  line=""
  while [[ "$line" != "castore: mounted "* ]]; do read -r -t 120 line <&"${PROBE[0]}"; done
  ready=$(date +%s%N)
  stat "$M/big" >/dev/null
  first_stat_us=$(( ($(date +%s%N) - ready) / 1000 ))
  sleep "${BENCH_SETTLE:-0}"   # a mount left idle that long: its warm-up has run
  sync; echo 3 >/proc/sys/vm/drop_caches   # right before the workload: see bench/mount.sh, start
  # BENCH_DAEMON_WARM=1: the daemon's store back in the page cache, so its disk is out of the picture.
  if [ -n "${BENCH_DAEMON_WARM:-}" ]; then find "$W/daemon-store" -type f -exec cat {} + >/dev/null; fi
  file="$M/big/random.bin"
  if [ -n "${WARMUP:-}" ] && [ "$mode" = cold ]; then
    taskset -c "$CPU" "$W/bin/fsbench" range "$file" 0 "$(( ${WARMUP_MIB:-1024} << 20 ))" >/dev/null
    file="$M/big2/random.bin"
    sync; echo 1 >/proc/sys/vm/drop_caches
  fi
  cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
  sys() { awk '{print $15}' "/proc/$1/stat"; }
  faults() { awk '{print $10}' "/proc/$1/stat"; }
  # Read requests completed by the block device under the bench directory (all processes), as bench/mount-probe.sh counts them.
  dev_stat="/sys/class/block/$(basename "$(df --output=source "$W" | tail -1)")/stat"
  disk_reads() { if [ -r "$dev_stat" ]; then awk '{print $1}' "$dev_stat"; else echo 0; fi; }
  perf_pid=""
  if [ -n "${BENCH_PERF:-}" ]; then
    if [ -n "${BENCH_PERF_EVENT:-}" ]; then sampling=(-e "$BENCH_PERF_EVENT" -c 1); else sampling=(-F 1999); fi
    perf record -q -g -C "$CPU" "${sampling[@]}" -o "$BENCH_PERF" 2>/dev/null &
    perf_pid=$!
    sleep 1   # perf's own start-up outside the measurement
  fi
  # CPU ticks of each of the mount's threads, by name with digits dropped (BENCH_THREADS=1 prints them).
  # A thread may end while they are read: each stat is read once, and one gone is skipped.
  thread_ticks() { for t in /proc/"$1"/task/*; do
      line=$(cat "$t/stat" 2>/dev/null) || continue
      [ -n "$line" ] || continue
      awk '{ name = $0; sub(/^[0-9]+ \(/, "", name); sub(/\) .*/, "", name); sub(/[0-9#]*$/, "", name); gsub(/ /, "_", name)
             n = split($0, f, ") "); split(f[n], g, " "); print name "\t" g[12] + g[13] }' <<<"$line"; done; }
  [ -n "${BENCH_THREADS:-}" ] && thread_ticks "$pid" >"$W/threads.before"
  m0=$(cpu "$pid") d0=$(cpu "$daemon") s0=$(sys "$pid") f0=$(faults "$pid") r0=$(disk_reads) t0=$(date +%s%N)
  readers=()
  case "$workload" in
    seq) taskset -c "$CPU" "$W/bin/fsbench" range "$file" 0 "$GiB" >/dev/null ;;
    par4) for i in 0 1 2 3; do taskset -c "$CPU" "$W/bin/fsbench" range "$file" $((i * GiB / 4)) $((GiB / 4)) >/dev/null & readers+=($!); done
          wait "${readers[@]}" ;;
    pread) taskset -c "$CPU" "$W/bin/fsbench" pread "$file" 20000 >/dev/null ;;
    walk) entries=$(taskset -c "$CPU" find "$M/tree" | wc -l) ;;
    read) list="${BENCH_FILES:-$W/files.list}"
          taskset -c "$CPU" "$W/bin/fsbench" read "$M/tree" "$list" >/dev/null
          entries=$(tr -cd '\0' <"$list" | wc -c) ;;
    lstat) [ -f "$W/entries.list" ] || { echo "run add-tree again: no entries.list" >&2; exit 2; }
           taskset -c "$CPU" "$W/bin/fsbench" lstat "$M/tree" "$W/entries.list" >/dev/null
           entries=$(tr -cd '\0' <"$W/entries.list" | wc -c) ;;
    *) echo "unknown workload $workload" >&2; exit 2 ;;
  esac
  [ -n "${BENCH_THREADS:-}" ] && thread_ticks "$pid" >"$W/threads.after"
  t1=$(date +%s%N) m1=$(cpu "$pid") d1=$(cpu "$daemon") s1=$(sys "$pid") f1=$(faults "$pid") r1=$(disk_reads)
  [ -n "$perf_pid" ] && { kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true; }
  tick=$(getconf CLK_TCK) ms=$(( (t1 - t0) / 1000000 ))
  rate=$(awk -v ms="$ms" -v w="$workload" -v n="${entries:-0}" 'BEGIN { if (w == "pread") printf "%.0f preads/s", 20000 / ms * 1000;
      else if (w == "walk" || w == "lstat") printf "%d entries", n; else if (w == "read") printf "%d files", n; else printf "%.0f MB/s", 1073.741824 / ms * 1000 }')
  echo "${REMOTE:+$REMOTE }$mode${WARMUP:+ (warm JVM)} $workload: $rate ($ms ms), mount CPU $(( (m1 - m0) * 1000 / tick )) ms (system $(( (s1 - s0) * 1000 / tick )), $((f1 - f0)) minor faults)," \
    "daemon CPU $(( (d1 - d0) * 1000 / tick )) ms, $((r1 - r0)) device reads; ready line $(( (ready - launched) / 1000000 )) ms," \
    "first stat $first_stat_us us; load $(cut -d' ' -f1 /proc/loadavg)"
  if [ -n "${BENCH_THREADS:-}" ]; then
    awk -v tick="$(getconf CLK_TCK)" 'FNR == NR { before[$1] += $2; next } { after[$1] += $2 }
        END { for (n in after) if (after[n] - before[n] > 0) printf "  %-28s %6d ms\n", n, (after[n] - before[n]) * 1000 / tick }' \
        "$W/threads.before" "$W/threads.after" | sort -k2 -n -r
  fi ;;
*)
  echo "usage: bench/remote-probe.sh setup | setup-s3 | add-tree DIR | run cold|warm|local [seq|par4|pread|walk|read|lstat] | daemon-cpu [RUNS] | stop" >&2; exit 2 ;;
esac

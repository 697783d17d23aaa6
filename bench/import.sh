#!/usr/bin/env bash
# Import speed: castore import next to mksquashfs (uncompressed) and b3sum on the same data, in the
# same run, warm and cold page cache; prints medians and ratios (castore / peer; < 1 is faster).
#
#   bench/import.sh                  # both corpora, warm and cold, 5 runs each
#   RUNS=3 CORPORA=tree MODES=warm bench/import.sh
#   CASTORE_JAVA_OPTS=-XX:TieredStopAtLevel=1 bench/import.sh   # JVM options through the launcher
#
# Corpora, built once under $OUT (default /var/tmp/castore-bench-import: outside the repository,
# where the launcher's look for changed sources would walk it):
#   tree: a real tree of >= 50k files: copies of /usr/share and /usr/include
#   big:  2 GiB of big files: 4 x 256 MiB random, 4 x 256 MiB of real binaries from /usr/lib
# Compared, each from a fresh store / image:
#   castore          ./castore import into a fresh local store (default: durable, fsyncs its data)
#   castore-nosync   the same with local://...?fsync=false (page cache only)
#   mksquashfs+sync  mksquashfs -noI -noD -noF -noX, then fsync of the image: durable like castore
#   mksquashfs       the same without the fsync: page cache only, like castore-nosync
#   b3sum            hashing every file (find | xargs b3sum), the native BLAKE3 anchor
# Needs: squashfs-tools (mksquashfs), b3sum, python3; root for the cold runs
# (echo 3 > /proc/sys/vm/drop_caches). Stores and images are written to $OUT as well.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-/var/tmp/castore-bench-import}"
RUNS="${RUNS:-5}"
CORPORA="${CORPORA:-tree big}"
MODES="${MODES:-warm cold}"
THREADS="${THREADS:-$(nproc)}"

for tool in mksquashfs b3sum python3; do
  command -v "$tool" >/dev/null || { echo "bench/import.sh: needs $tool (apt-get install squashfs-tools b3sum)" >&2; exit 1; }
done
mkdir -p "$OUT"

build_tree() {
  [ -f "$OUT/tree.done" ] && return
  rm -rf "$OUT/tree"
  mkdir -p "$OUT/tree"
  cp -a /usr/share "$OUT/tree/share"
  cp -a /usr/include "$OUT/tree/include"
  # Special files cannot be imported (nor are they data): drop any.
  find "$OUT/tree" \( -type b -o -type c -o -type p -o -type s \) -delete
  touch "$OUT/tree.done"
}

build_big() {
  [ -f "$OUT/big.done" ] && return
  rm -rf "$OUT/big"
  mkdir -p "$OUT/big"
  for i in 1 2 3 4; do
    head -c $((256 << 20)) /dev/urandom >"$OUT/big/random$i.bin"
  done
  # Real binary data: the libraries of /usr/lib, concatenated, cut into 256 MiB files.
  # (head closes the pipe early: the SIGPIPE status of the feeding commands is expected.)
  { find /usr/lib -type f -size +64k -print0 | sort -z | xargs -0 cat 2>/dev/null || true; } | head -c $((1024 << 20)) \
    | split -b $((256 << 20)) -d - "$OUT/big/real"
  [ "$(du -sb "$OUT/big" | cut -f1)" -ge $((2047 << 20)) ] || { echo "bench/import.sh: could not build 2 GiB of big files" >&2; exit 1; }
  touch "$OUT/big.done"
}

# The launcher builds the CLI if needed; build before timing anything.
"$ROOT/castore" --version >/dev/null

summary="$OUT/summary.txt"
: >"$summary"
echo "castore import vs mksquashfs -noI -noD -noF -noX and b3sum; medians of $RUNS interleaved runs, $THREADS threads;" \
  "CASTORE_JAVA_OPTS='${CASTORE_JAVA_OPTS:-}'" | tee -a "$summary"
for corpus in $CORPORA; do
  "build_$corpus"
  data="$OUT/$corpus"
  files=$(find "$data" -type f | wc -l)
  bytes=$(find "$data" -type f -printf '%s\n' | awk '{s+=$1} END {printf "%.0f", s}')
  echo "== $corpus: $files files, $((bytes >> 20)) MiB" | tee -a "$summary"
  for mode in $MODES; do
    if [ "$mode" = cold ] && [ "$(id -u)" != 0 ]; then
      echo "   (cold runs need root: skipped)" | tee -a "$summary"
      continue
    fi
    prep="true"
    [ "$mode" = cold ] && prep="sync; echo 3 > /proc/sys/vm/drop_caches"
    # Interleaved rounds (every command once per round, after a warm-up round), so that a burst of
    # load from elsewhere hits all commands alike; medians of wall time, and CPU time per command.
    python3 - "$RUNS" "$mode" "$OUT" "$prep" \
      castore "'$ROOT/castore' import -q --threads $THREADS --store '$OUT/store' '$data' >/dev/null" \
      castore-nosync "'$ROOT/castore' import -q --threads $THREADS --store 'local://$OUT/store?fsync=false' '$data' >/dev/null" \
      mksquashfs+sync "mksquashfs '$data' '$OUT/image.sqfs' -noI -noD -noF -noX -quiet -no-progress -processors $THREADS >/dev/null && sync '$OUT/image.sqfs'" \
      mksquashfs "mksquashfs '$data' '$OUT/image.sqfs' -noI -noD -noF -noX -quiet -no-progress -processors $THREADS >/dev/null" \
      b3sum "cd '$data' && find . -type f -print0 | xargs -0 b3sum >/dev/null" <<'PY' | tee -a "$summary"
import os, statistics, subprocess, sys, time
runs, mode, out, prep = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
cmds = dict(zip(sys.argv[5::2], sys.argv[6::2]))
wall = {k: [] for k in cmds}
cpu = {k: [] for k in cmds}
for r in range(runs + 1):
    for name, cmd in cmds.items():
        subprocess.run(f"rm -rf '{out}/store' '{out}/image.sqfs'; sync; {prep}", shell=True, check=True)
        t = time.monotonic()
        p = subprocess.Popen(["bash", "-c", cmd])
        _, status, usage = os.wait4(p.pid, 0)
        elapsed = time.monotonic() - t
        if status != 0:
            sys.exit(f"bench/import.sh: {name} failed (status {status})")
        if r > 0:  # round 0 warms up
            wall[name].append(elapsed)
            cpu[name].append(usage.ru_utime + usage.ru_stime)
med = {k: statistics.median(v) for k, v in wall.items()}
mcpu = {k: statistics.median(v) for k, v in cpu.items()}
def show(k):
    return f"{k} {med[k]:5.2f} s (cpu {mcpu[k]:4.1f} s)"
print(f"   {mode:4}  durable: {show('castore')}  {show('mksquashfs+sync')}  ratio {med['castore'] / med['mksquashfs+sync']:.2f}")
print(f"   {mode:4}  cached:  {show('castore-nosync')}  {show('mksquashfs')}  ratio {med['castore-nosync'] / med['mksquashfs']:.2f}")
print(f"   {mode:4}  hashing: {show('b3sum')}  castore-nosync/b3sum {med['castore-nosync'] / med['b3sum']:.2f}")
PY
  done
done
rm -rf "$OUT/store" "$OUT/image.sqfs"

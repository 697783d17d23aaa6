#!/usr/bin/env bash
# Import speed: castore import next to mksquashfs (uncompressed) and b3sum on the same data, in the
# same run, warm and cold page cache; prints medians and ratios (castore / peer; < 1 is faster).
#
#   bench/import.sh                  # both corpora, warm and cold, 5 runs each
#   RUNS=3 CORPORA=tree bench/import.sh
#
# Corpora, built once under $OUT (default bench/out/import):
#   tree: a real tree of >= 50k files: copies of /usr/share and /usr/include
#   big:  2 GiB of big files: 4 x 256 MiB random, 4 x 256 MiB of real binaries from /usr/lib
# Needs: squashfs-tools (mksquashfs), b3sum, hyperfine, python3; root for the cold runs
# (echo 3 > /proc/sys/vm/drop_caches). Stores and images are written to $OUT as well.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/bench/out/import}"
RUNS="${RUNS:-5}"
CORPORA="${CORPORA:-tree big}"
MODES="${MODES:-warm cold}"
THREADS="${THREADS:-$(nproc)}"

for tool in mksquashfs b3sum hyperfine python3; do
  command -v "$tool" >/dev/null || { echo "bench/import.sh: needs $tool (apt-get install squashfs-tools b3sum hyperfine)" >&2; exit 1; }
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

cache_prepare() {
  if [ "$1" = cold ]; then
    echo "sync; echo 3 > /proc/sys/vm/drop_caches"
  else
    echo "true"
  fi
}

summary="$OUT/summary.txt"
: >"$summary"
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
    prep="$(cache_prepare "$mode")"
    cat "$data"/* >/dev/null 2>&1 || true
    json="$OUT/$corpus-$mode.json"
    hyperfine --runs "$RUNS" --warmup 1 --export-json "$json" --style basic \
      --prepare "rm -rf '$OUT/store' '$OUT/image.sqfs'; $prep" \
      -n castore "'$ROOT/castore' import -q --threads $THREADS --store '$OUT/store' '$data'" \
      -n mksquashfs "mksquashfs '$data' '$OUT/image.sqfs' -noI -noD -noF -noX -quiet -no-progress -processors $THREADS" \
      -n b3sum "cd '$data' && find . -type f -print0 | xargs -0 b3sum >/dev/null" \
      >"$OUT/$corpus-$mode.log"
    python3 - "$json" "$corpus" "$mode" <<'EOF' | tee -a "$summary"
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
med = {k: v["median"] for k, v in res.items()}
c = med["castore"]
print(f"   {sys.argv[3]:4}  castore {c:6.2f} s   mksquashfs {med['mksquashfs']:6.2f} s   b3sum {med['b3sum']:6.2f} s"
      f"   castore/mksquashfs {c / med['mksquashfs']:.2f}   castore/b3sum {c / med['b3sum']:.2f}")
EOF
  done
done
rm -rf "$OUT/store" "$OUT/image.sqfs"
echo "(medians of $RUNS runs, $THREADS threads; hyperfine logs and JSON in $OUT)"

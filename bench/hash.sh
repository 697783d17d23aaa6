#!/usr/bin/env bash
# Hashing and chunking throughput per core: castore's BLAKE3 (native and pure Java) and FastCDC
# (JMH, one thread) next to `b3sum --num-threads 1` on the same data, in the same run.
#
#   bench/hash.sh                 full run (about 5 minutes)
#   QUICK=1 bench/hash.sh         fewer, shorter iterations (noisier)
#   PIN=1 bench/hash.sh           pin b3sum and the JMH fork to CPU 1 (taskset)
#   SIZE_MIB=512 bench/hash.sh    a smaller data file (default 1024)
#
# Needs: b3sum (apt-get install b3sum), python3; hyperfine if installed (else a timed loop).
# Data and results go to bench/target/hash/.
set -euo pipefail
cd "$(dirname "$0")/.."

size_mib=${SIZE_MIB:-1024}
size=$((size_mib * 1024 * 1024))
out=bench/target/hash
mkdir -p "$out"
data=$out/random-${size_mib}MiB.bin
pin=()
if [ "${PIN:-0}" = 1 ]; then pin=(taskset -c 1); fi

command -v b3sum >/dev/null || { echo "bench/hash.sh: b3sum not found (apt-get install b3sum)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench/hash.sh: python3 not found" >&2; exit 1; }

if [ ! -f "$data" ] || [ "$(stat -c %s "$data")" != "$size" ]; then
  echo "generating $data" >&2
  head -c "$size" /dev/urandom >"$data.tmp" && mv "$data.tmp" "$data"
fi
cat "$data" >/dev/null # warm page cache, as for every run below

echo "building castore-bench" >&2
./mvnw -B -q -pl bench -am package -DskipTests
. bin/find-jdk.sh
classpath=bench/target/classes:$(cat bench/target/classpath.txt)

# --- b3sum, one thread, mapped file (its default) and read() (--no-mmap) ---
b3sum_csv=$out/b3sum.csv
echo "command,mean_s" >"$b3sum_csv"
for mode in mmap no-mmap; do
  args=(b3sum --num-threads 1)
  [ "$mode" = no-mmap ] && args+=(--no-mmap)
  args+=("$data")
  if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 2 --runs 10 --export-json "$out/b3sum-$mode.json" "${pin[*]:+${pin[*]} }${args[*]}" >&2
    mean=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["mean"])' "$out/b3sum-$mode.json")
  else
    runs=10
    start=$(date +%s%N)
    for _ in $(seq $runs); do "${pin[@]}" "${args[@]}" >/dev/null; done
    mean=$(python3 -c "print(($(date +%s%N) - $start) / 1e9 / $runs)")
  fi
  echo "b3sum --num-threads 1 ($mode),$mean" >>"$b3sum_csv"
done

# --- JMH: BLAKE3 on 4 KiB, 1 MiB and the mapped data file; FastCDC over 256 MiB ---
jmh_opts=(-f 1 -rf json -rff "$out/jmh.json" -p "file=$(realpath "$data")" -p "size=4096,1048576,$size")
if [ "${QUICK:-0}" = 1 ]; then jmh_opts+=(-wi 1 -i 2 -w 1s -r 2s); fi
echo "running JMH (java: $JAVA_HOME)" >&2
"${pin[@]}" "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -cp "$classpath" \
  org.openjdk.jmh.Main 'castore\.bench\.(Blake3|FastCdc)Benchmark' "${jmh_opts[@]}" >"$out/jmh.log"

# --- report ---
python3 - "$b3sum_csv" "$out/jmh.json" "$size" <<'EOF'
import csv, json, sys
b3sum_csv, jmh_json, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
b3 = {row["command"]: size / float(row["mean_s"]) / 1e6 for row in csv.DictReader(open(b3sum_csv))}
anchor = b3["b3sum --num-threads 1 (mmap)"]
print(f"{'what':58} {'MB/s':>8} {'/ b3sum':>8}")
for name, mbs in b3.items():
    print(f"{name:58} {mbs:8.0f} {mbs / anchor:8.2f}")
for r in json.load(open(jmh_json)):
    bench = r["benchmark"].rsplit(".", 2)[-2:]
    p = r.get("params", {})
    ops = r["primaryMetric"]["score"]
    if bench[0] == "Blake3Benchmark":
        n = int(p["size"])
        where = "mapped file" if n > 64 << 20 else "byte[]"
        label = f"castore BLAKE3 {p['impl'].lower()}, {n:,} bytes ({where})"
    else:
        n = 256 << 20
        label = f"castore FastCDC {bench[1]}, 256 MiB ({p['memory']})"
    mbs = ops * n / 1e6
    print(f"{label:58} {mbs:8.0f} {mbs / anchor:8.2f}")
EOF
echo "(MB/s = 10^6 bytes per second of one thread; ratios against b3sum on the mapped file; raw: $out/)" >&2

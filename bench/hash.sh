#!/usr/bin/env bash
# Hashing and chunking throughput per core: castore's BLAKE3 (native and pure Java) and FastCDC
# (JMH, one thread) next to `b3sum --num-threads 1` on the same data, in the same run.
#
#   bench/hash.sh                 full run (about 8 minutes)
#   QUICK=1 bench/hash.sh         fewer, shorter iterations (noisier)
#   PIN=1 bench/hash.sh           pin b3sum and the JMH fork to CPU 1 (taskset)
#   SIZE_MIB=512 bench/hash.sh    a smaller data file (default 1024)
#
# Prints MB/s by wall clock and per CPU second of the hashing thread (user + system time for
# b3sum, the thread's CPU time for JMH): on a machine busy with other work the wall-clock
# figures understate what one core does, the CPU-time ones hold.
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

# --- b3sum, one thread, on the mapped file (its default) and with read() (--no-mmap) ---
b3sum_csv=$out/b3sum.csv
echo "command,wall_s,cpu_s" >"$b3sum_csv"
for mode in mmap no-mmap; do
  args=(b3sum --num-threads 1)
  [ "$mode" = no-mmap ] && args+=(--no-mmap)
  args+=("$data")
  if command -v hyperfine >/dev/null; then
    hyperfine -N --warmup 2 --runs 10 --export-json "$out/b3sum-$mode.json" "${pin[*]:+${pin[*]} }${args[*]}" >&2
    times=$(python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
print(r["mean"], r["user"] + r["system"], sep=",")' "$out/b3sum-$mode.json")
  else
    runs=10
    times=$( { TIMEFORMAT='%R %U %S'; time (for _ in $(seq $runs); do "${pin[@]}" "${args[@]}" >/dev/null; done); } 2>&1 |
      awk -v n=$runs '{ printf "%f,%f", $1 / n, ($2 + $3) / n }')
  fi
  echo "b3sum --num-threads 1 ($mode),$times" >>"$b3sum_csv"
done

# --- JMH: BLAKE3 on 4 KiB, 1 MiB and all of the data file (in memory, and open+map per op); FastCDC ---
jmh_opts=(-f 1 -rf json -rff "$out/jmh.json" -p "file=$(realpath "$data")" -p "size=4096,1048576,$size")
if [ "${QUICK:-0}" = 1 ]; then jmh_opts+=(-wi 1 -i 2 -w 1s -r 2s); fi
echo "running JMH (java: $JAVA_HOME; log: $out/jmh.log)" >&2
"${pin[@]}" "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -cp "$classpath" \
  org.openjdk.jmh.Main 'castore\.bench\.(Blake3|FastCdc)Benchmark' "${jmh_opts[@]}" >"$out/jmh.log"

# --- report ---
python3 - "$b3sum_csv" "$out/jmh.json" "$size" <<'REPORT'
import csv, json, sys
b3sum_csv, jmh_json, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = []  # (label, wall MB/s, CPU MB/s)
for row in csv.DictReader(open(b3sum_csv)):
    rows.append((row["command"], size / float(row["wall_s"]) / 1e6, size / float(row["cpu_s"]) / 1e6))
anchor = rows[0]
for r in json.load(open(jmh_json)):
    bench = r["benchmark"].rsplit(".", 2)[-2:]
    p = r.get("params", {})
    if bench[0] == "Blake3Benchmark":
        n = int(p["size"])
        how = ("byte[]" if n <= 64 << 20 else "file mapped once") if bench[1] == "digest" else "open+map+hash+unmap"
        label = f"castore BLAKE3 {p['impl'].lower()}, {n:,} B, {how}"
    else:
        n = 256 << 20
        label = f"castore FastCDC {bench[1]}, 256 MiB ({p['memory']})"
    aux = r["secondaryMetrics"]
    cpu = n * aux["operations"]["score"] / aux["cpuSeconds"]["score"] / 1e6
    rows.append((label, r["primaryMetric"]["score"] * n / 1e6, cpu))
print(f"{'':58} {'wall clock':>15}   {'CPU time':>15}")
print(f"{'what':58} {'MB/s':>7} {'/b3sum':>7}   {'MB/s':>7} {'/b3sum':>7}")
for label, wall, cpu in rows:
    print(f"{label:58} {wall:7.0f} {wall / anchor[1]:7.2f}   {cpu:7.0f} {cpu / anchor[2]:7.2f}")
REPORT
echo "(MB/s = 10^6 bytes per second of one thread; ratios against b3sum on the mapped file; raw results in $out/)" >&2

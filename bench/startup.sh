#!/usr/bin/env bash
# Start-up cost of ./castore with and without the launcher's JDK AOT cache (CASTORE_AOT=off), in
# interleaved rounds (so load from elsewhere hits both alike); prints median wall and CPU time
# (user+sys of the command and its children) and the ratio with/without.
#
#   bench/startup.sh                       # 10 rounds
#   ROUNDS=5 TREE=/var/tmp/castore-bench-import/tree bench/startup.sh
#
# Commands: `--version`, `roots` of a small store, `import -q` of /usr/include/linux (small tree),
# and, if TREE is a directory (default: bench/import.sh's 55k-file corpus), `import -q` of TREE;
# every import into a fresh local://...?fsync=false store under $OUT.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${ROUNDS:-10}"
OUT="${OUT:-/var/tmp/castore-bench-startup}"
TREE="${TREE:-/var/tmp/castore-bench-import/tree}"
SMALL=/usr/include/linux

rm -rf "$OUT"
mkdir -p "$OUT"
"$ROOT/castore" --version >/dev/null   # build and train outside any measurement
"$ROOT/castore" import -q --store "$OUT/small-store" "$SMALL" >/dev/null

declare -a names=(version roots import-small)
declare -A args=(
  [version]="--version"
  [roots]="roots --store $OUT/small-store"
  [import-small]="import -q --store local://$OUT/store?fsync=false $SMALL"
)
if [ -d "$TREE" ]; then
  names+=(import-tree)
  args[import-tree]="import -q --store local://$OUT/store?fsync=false $TREE"
fi

# One timed run: appends "wall cpu" to $OUT/<name>.<aot>.
run() {
  local name=$1 aot=$2
  rm -rf "$OUT/store"
  # shellcheck disable=SC2086 # args are word lists
  CASTORE_AOT=$aot /usr/bin/time -f '%e %U %S' -o "$OUT/time" "$ROOT/castore" ${args[$name]} >/dev/null
  awk '{printf "%s %.3f\n", $1, $2 + $3}' "$OUT/time" >>"$OUT/$name.$aot"
}

for round in $(seq 0 "$ROUNDS"); do
  for name in "${names[@]}"; do
    for aot in off on; do
      if [ "$round" -eq 0 ]; then run "$name" "$aot"; rm -f "$OUT/$name.$aot"; else run "$name" "$aot"; fi
    done
  done
done

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo "castore start-up, medians of $ROUNDS interleaved rounds (load average $(cut -d' ' -f1-3 /proc/loadavg))"
for name in "${names[@]}"; do
  wall_off=$(cut -d' ' -f1 "$OUT/$name.off" | median); cpu_off=$(cut -d' ' -f2 "$OUT/$name.off" | median)
  wall_on=$(cut -d' ' -f1 "$OUT/$name.on" | median); cpu_on=$(cut -d' ' -f2 "$OUT/$name.on" | median)
  printf '  %-13s no cache %6.2f s (cpu %5.2f s)   AOT cache %6.2f s (cpu %5.2f s)   ratio wall %.2f cpu %.2f\n' \
    "$name" "$wall_off" "$cpu_off" "$wall_on" "$cpu_on" "$(echo "$wall_on / $wall_off" | bc -l)" "$(echo "$cpu_on / $cpu_off" | bc -l)"
done
rm -rf "$OUT"

# bench/lib-mount.sh: the mount workloads of bench/mount.sh, sourced by bench/mount.sh and bench/remote.sh.
# The caller sets WORK (where the clients are built and the entry lists live), PIN (the command prefix
# that pins a client to a CPU, e.g. (taskset -c 0)), BASE (where the corpus is mounted: BASE/tree and
# BASE/big/random.bin, BASE/big/real.bin) and BIG_BYTES (the size of the big files).
# WORK/entries.list and WORK/files.list hold the tree's entries and files, NUL-separated, relative to it.

# ---- clients: tiny C programs, so the client costs next to nothing -------------------------
build_clients() {
  [ -x "$WORK/bin/fsbench" ] && [ "$WORK/bin/fsbench" -nt "${BASH_SOURCE[0]}" ] && return
  cat >"$WORK/bin/fsbench.c" <<'EOF'
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
static char buf[1 << 20];
/* Paths are NUL-separated, relative to the root given on the command line. */
static char *load(const char *list, size_t *len) {
  int fd = open(list, O_RDONLY); struct stat st; fstat(fd, &st);
  char *p = malloc(st.st_size + 1); size_t got = 0;
  while (got < (size_t) st.st_size) { ssize_t n = read(fd, p + got, st.st_size - got); if (n <= 0) break; got += n; }
  close(fd); *len = got; return p;
}
int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: fsbench lstat|read ROOT LIST | pread FILE N | range FILE OFF LEN | statfs PATH N\n"); return 2; }
  if (!strcmp(argv[1], "statfs")) {  /* FUSE sends every statfs(2) to the server: one round trip each */
    long n = atol(argv[3]); struct statfs sf;
    for (long i = 0; i < n; i++) if (statfs(argv[2], &sf)) { perror(argv[2]); return 1; }
    printf("%ld 0\n", n); return 0;
  }
  if (!strcmp(argv[1], "lstat") || !strcmp(argv[1], "read")) {
    if (chdir(argv[2])) { perror(argv[2]); return 1; }
    size_t len; char *p = load(argv[3], &len); long count = 0; long long bytes = 0; struct stat st;
    for (size_t i = 0; i < len; i += strlen(p + i) + 1, count++) {
      if (argv[1][0] == 'l') { if (lstat(p + i, &st)) { perror(p + i); return 1; } continue; }
      int fd = open(p + i, O_RDONLY); if (fd < 0) { perror(p + i); return 1; }
      ssize_t n; while ((n = read(fd, buf, sizeof buf)) > 0) bytes += n;
      if (n < 0) { perror(p + i); return 1; }
      close(fd);
    }
    printf("%ld %lld\n", count, bytes); return 0;
  }
  int fd = open(argv[2], O_RDONLY); if (fd < 0) { perror(argv[2]); return 1; }
  if (!strcmp(argv[1], "pread")) {
    long n = atol(argv[3]); off_t pages = lseek(fd, 0, SEEK_END) / 4096 - 1; unsigned long long x = 88172645463325252ULL;
    for (long i = 0; i < n; i++) {
      x ^= x << 13; x ^= x >> 7; x ^= x << 17;
      if (pread(fd, buf, 4096, (off_t) (x % pages) * 4096) != 4096) { perror("pread"); return 1; }
    }
    printf("%ld %ld\n", n, n * 4096); return 0;
  }
  off_t off = atoll(argv[3]), left = atoll(argv[4]);  /* range */
  while (left > 0) {
    ssize_t n = pread(fd, buf, left < (off_t) sizeof buf ? left : (off_t) sizeof buf, off);
    if (n <= 0) { perror("pread"); return 1; }
    off += n; left -= n;
  }
  printf("1 %s\n", argv[4]); return 0;
}
EOF
  gcc -O2 -o "$WORK/bin/fsbench" "$WORK/bin/fsbench.c"
}

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# Runs workload $1 under $BASE; prints its throughput.
measure() {
  local start end out count bytes
  start=$(date +%s%N)
  case "$1" in
    walk) count=$("${PIN[@]}" find "$BASE/tree" | wc -l); bytes=0 ;;
    walkstat) count=$("${PIN[@]}" find "$BASE/tree" -printf '%s\n' | wc -l); bytes=0 ;;
    lstat) out=$("${PIN[@]}" "$WORK/bin/fsbench" lstat "$BASE/tree" "$WORK/entries.list") ;;
    read) out=$("${PIN[@]}" "$WORK/bin/fsbench" read "$BASE/tree" "$WORK/files.list") ;;
    seq-random) out=$("${PIN[@]}" "$WORK/bin/fsbench" range "$BASE/big/random.bin" 0 "$BIG_BYTES") ;;
    seq-real) out=$("${PIN[@]}" "$WORK/bin/fsbench" range "$BASE/big/real.bin" 0 "$BIG_BYTES") ;;
    pread) out=$("${PIN[@]}" "$WORK/bin/fsbench" pread "$BASE/big/random.bin" 20000) ;;
    par4)
      local q=$((BIG_BYTES / 4)) pids=()
      for i in 0 1 2 3; do "${PIN[@]}" "$WORK/bin/fsbench" range "$BASE/big/random.bin" $((i * q)) $q >/dev/null & pids+=($!); done
      for p in "${pids[@]}"; do wait "$p"; done
      out="4 $((q * 4))" ;;
  esac
  end=$(date +%s%N)
  [ -n "${out:-}" ] && read -r count bytes <<<"$out"
  local seconds; seconds=$(awk -v ns=$((end - start)) 'BEGIN { printf "%.6f", ns / 1e9 }')
  case "$1" in
    walk|walkstat|lstat|pread) awk -v n="$count" -v s="$seconds" 'BEGIN { printf "%.0f", n / s }' ;;
    *) awk -v b="$bytes" -v s="$seconds" 'BEGIN { printf "%.1f", b / 1048576 / s }' ;;
  esac
}

unit() { case "$1" in walk|walkstat|lstat) echo "entries/s" ;; pread) echo "preads/s" ;; *) echo "MiB/s" ;; esac; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "-") printf "%.2f", a / b; else print "-" }'; }
best() { printf '%s\n' "$@" | sort -g | tail -1; }


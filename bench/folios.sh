#!/usr/bin/env bash
# bench/folios.sh FILE [PAGES]: how the page cache holds FILE's first PAGES pages (default 16384 = 64 MiB):
# reads it whole, maps it, and counts pages that are heads or tails of large folios against plain 4 KiB
# pages (/proc/self/pagemap and /proc/kpageflags: needs root). On kernel 6.18 a file on ext4 is held in
# large folios and a file read through FUSE in 4 KiB pages only (docs/performance.md, session 7).
# NOREAD=1: skip the read, to see what the page cache holds already (mapping never reads what is cached).
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "folios.sh: needs root (/proc/kpageflags)" >&2; exit 1; }
file=${1:?usage: bench/folios.sh FILE [PAGES]}
bin="${TMPDIR:-/tmp}/castore-folios"
if [ ! -x "$bin" ] || [ "$bin" -ot "${BASH_SOURCE[0]}" ]; then
  cat >"$bin.c" <<'EOF'
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
  int fd = open(argv[1], O_RDONLY); struct stat st;
  if (fd < 0 || fstat(fd, &st)) { perror(argv[1]); return 1; }
  size_t pages = st.st_size / 4096, want = argc > 2 ? strtoul(argv[2], 0, 10) : 16384;
  if (pages > want) pages = want;
  static char buf[1 << 20];
  if (!getenv("NOREAD")) while (read(fd, buf, sizeof buf) > 0) {}
  volatile char *m = mmap(0, pages * 4096, PROT_READ, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) { perror("mmap"); return 1; }
  long sum = 0, heads = 0, tails = 0, small = 0;
  for (size_t i = 0; i < pages; i++) sum += m[i * 4096];
  int pm = open("/proc/self/pagemap", O_RDONLY), kf = open("/proc/kpageflags", O_RDONLY);
  for (size_t i = 0; i < pages; i++) {
    uint64_t e = 0, f = 0;
    pread(pm, &e, 8, ((uintptr_t) m / 4096 + i) * 8);
    pread(kf, &f, 8, (e & ((1ULL << 55) - 1)) * 8);
    if (f & (1ULL << 15)) heads++; else if (f & (1ULL << 16)) tails++; else small++;
  }
  printf("%s: %zu pages: %ld large-folio heads, %ld tails, %ld 4 KiB pages\n", argv[1], pages, heads, tails, small);
  return sum == 42;
}
EOF
  gcc -O2 -o "$bin" "$bin.c"
fi
"$bin" "$file" "${2:-16384}"

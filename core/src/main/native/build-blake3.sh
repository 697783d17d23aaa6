#!/bin/sh
# Builds libcastore_blake3.so (castore_blake3.c + the official BLAKE3 C implementation with its
# SSE2/SSE4.1/AVX2/AVX-512 assembly and runtime dispatch) into OUTDIR/linux-x86_64/, where Maven
# packages it as a resource of castore-core. castore.hash.NativeBlake3 loads it at run time;
# without it castore uses its pure-Java BLAKE3, so a missing compiler or missing sources only
# print a note. The BLAKE3 sources are taken from the system, never copied into this repository:
# $CASTORE_BLAKE3_C_DIR, else the newest /usr/share/cargo/registry/blake3-*/c (Debian package
# librust-blake3-dev). Usage: build-blake3.sh OUTDIR
set -eu
out_root=${1:?usage: build-blake3.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)

platform="$(uname -s)-$(uname -m)"
if [ "$platform" != Linux-x86_64 ]; then
  echo "castore: no native BLAKE3 build for $platform; the pure-Java BLAKE3 will be used"
  exit 0
fi

src=${CASTORE_BLAKE3_C_DIR:-}
if [ -z "$src" ]; then
  src=$(ls -d /usr/share/cargo/registry/blake3-*/c 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [ -z "$src" ] || [ ! -f "$src/blake3.c" ]; then
  echo "castore: BLAKE3 C sources not found (apt-get install librust-blake3-dev, or set CASTORE_BLAKE3_C_DIR);" \
       "building without native BLAKE3: the pure-Java BLAKE3 will be used"
  exit 0
fi
cc=${CC:-gcc}
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "castore: no C compiler ($cc) found; building without native BLAKE3: the pure-Java BLAKE3 will be used"
  exit 0
fi

out_dir=$out_root/linux-x86_64
out=$out_dir/libcastore_blake3.so
# Up to date when nothing it is built from is newer.
if [ -f "$out" ] && [ -z "$(find "$src" "$here" "$0" -type f -newer "$out" 2>/dev/null | head -n 1)" ]; then
  exit 0
fi

mkdir -p "$out_dir"
tmp=$out.tmp.$$
trap 'rm -f "$tmp"' EXIT
"$cc" -shared -fPIC -O3 -fvisibility=hidden -s -Wl,-z,noexecstack -Wl,-z,relro,-z,now \
  -I"$src" -o "$tmp" \
  "$here/castore_blake3.c" \
  "$src/blake3.c" "$src/blake3_dispatch.c" "$src/blake3_portable.c" \
  "$src/blake3_sse2_x86-64_unix.S" "$src/blake3_sse41_x86-64_unix.S" \
  "$src/blake3_avx2_x86-64_unix.S" "$src/blake3_avx512_x86-64_unix.S"
mv -f "$tmp" "$out"
echo "castore: built $out from $src"

/*
 * castore's ABI over the official BLAKE3 C implementation, bound from Java with the FFM API
 * (castore.hash.NativeBlake3). The BLAKE3 sources themselves are not part of this repository:
 * build-blake3.sh compiles them from the system's copy (Debian: librust-blake3-dev).
 *
 * Only these functions are exported (the library is built with -fvisibility=hidden), so the
 * Java side depends on nothing but this file.
 */
#include <stddef.h>
#include <stdint.h>

#include "blake3.h"
#include "blake3_impl.h"

#define CASTORE_EXPORT __attribute__((visibility("default")))

/* Size of the incremental state, so Java allocates it without knowing the struct layout. */
CASTORE_EXPORT size_t castore_blake3_state_size(void) { return sizeof(blake3_hasher); }

/* The version of the BLAKE3 C sources this library was built from. */
CASTORE_EXPORT const char *castore_blake3_version(void) { return blake3_version(); }

/* How many chunks the dispatcher hashes at once: 16 with AVX-512, 8 with AVX2, 4 with SSE, 1 portable. */
CASTORE_EXPORT size_t castore_blake3_simd_degree(void) { return blake3_simd_degree(); }

CASTORE_EXPORT void castore_blake3_init(blake3_hasher *state) { blake3_hasher_init(state); }

CASTORE_EXPORT void castore_blake3_update(blake3_hasher *state, const void *input, size_t length) {
  blake3_hasher_update(state, input, length);
}

/* Writes the 32-byte digest of everything so far; the state stays usable. */
CASTORE_EXPORT void castore_blake3_finalize(const blake3_hasher *state, uint8_t *out) {
  blake3_hasher_finalize(state, out, BLAKE3_OUT_LEN);
}

/* One-shot digest: one downcall instead of three for the common small input. */
CASTORE_EXPORT void castore_blake3_hash(const void *input, size_t length, uint8_t *out) {
  blake3_hasher state;
  blake3_hasher_init(&state);
  blake3_hasher_update(&state, input, length);
  blake3_hasher_finalize(&state, out, BLAKE3_OUT_LEN);
}

package castore.service;

import castore.model.B3Digest;

/** One chunk of a blob: the BLAKE3 digest and length of that byte range. */
public record ChunkMeta(B3Digest digest, long size) {
}

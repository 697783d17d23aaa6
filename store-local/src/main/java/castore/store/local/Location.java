package castore.store.local;

import castore.model.B3Digest;

/**
 * Where one object lives: its pack (published or still being written), the offset of its
 * payload and its length. {@code aux} is the blob size for BLOB entries and the tvix size for
 * DIRECTORY entries (so child checks need no read), the payload's CRC32C for CHUNK entries
 * ({@link ChunkCrc}; 0 in packs written before it).
 */
record Location(ObjectKind kind, B3Digest digest, PackSource source, long offset, int length, long aux) {
    String describe() {
        return kind.label() + " " + digest + " in " + source.describe() + " at offset " + offset;
    }
}

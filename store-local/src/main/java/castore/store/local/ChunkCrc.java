package castore.store.local;

import castore.hash.RecordedCrc;

/**
 * The CRC32C a CHUNK's index entry records in its {@code aux} field ({@link RecordedCrc}: bit 32
 * set, the CRC in the low 32 bits). Packs written before it have 0 there, and their chunks are
 * checked by digest.
 *
 * <p>Why: a chunk is hashed with BLAKE3 when it is written, so the store knows its bytes are the
 * digest's. What a read from the store's own disk must catch is damage since then (bit rot, a
 * torn or misplaced write), and a CRC32C catches that as well as a second BLAKE3 pass at a
 * fraction of the cost: the JIT's intrinsic runs at many GB/s where BLAKE3 ran at 2-3 GB/s on
 * one core of the benchmark host, a sixth of a cold mount's CPU (docs/local-store.md, "Checks on
 * read"). What it does not catch is someone who rewrites both a pack and its index on purpose;
 * {@code digest-reads=true} checks every read by digest for stores shared with such writers.
 */
final class ChunkCrc {
    private ChunkCrc() {
    }

    /** Whether {@code location} is a chunk whose index entry records a CRC32C. */
    static boolean recorded(Location location) {
        return location.kind() == ObjectKind.CHUNK && (location.aux() & RecordedCrc.PRESENT) != 0;
    }

    /**
     * Whether the index entry records a CRC32C that {@code data}, the chunk's whole payload, does
     * not have: for {@code verify}, which reports such an entry even when the bytes hash right.
     */
    static boolean disagrees(Location location, byte[] data) {
        return recorded(location) && RecordedCrc.of(data, 0, data.length) != location.aux();
    }
}

package castore.store.local;

import java.lang.foreign.MemorySegment;
import java.util.zip.CRC32C;

/**
 * The CRC32C a CHUNK's index entry records in its {@code aux} field: bit 32 set, the CRC in the
 * low 32 bits. Packs written before it have 0 there, and their chunks are checked by digest.
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
    static final long PRESENT = 1L << 32;

    private ChunkCrc() {
    }

    /** The aux value recording {@code data[offset, offset + length)}'s CRC32C. */
    static long aux(byte[] data, int offset, int length) {
        CRC32C crc = new CRC32C();
        crc.update(data, offset, length);
        return PRESENT | crc.getValue();
    }

    /** The aux value recording {@code payload}'s CRC32C. */
    static long aux(MemorySegment payload) {
        CRC32C crc = new CRC32C();
        crc.update(payload.asByteBuffer()); // a direct buffer for native memory: the intrinsic reads it in place
        return PRESENT | crc.getValue();
    }

    /** Whether {@code location} is a chunk whose index entry records a CRC32C. */
    static boolean recorded(Location location) {
        return location.kind() == ObjectKind.CHUNK && (location.aux() & PRESENT) != 0;
    }
}

package castore.hash;

import java.lang.foreign.MemorySegment;
import java.util.zip.CRC32C;

/**
 * A CRC32C as a store records it next to bytes it verified: bit 32 set, so that 0 means "none
 * recorded", and the CRC in bits 0-31. The local store keeps one in each chunk's index entry, the
 * cache's disk tier in each chunk record; both check a chunk read back against it instead of
 * hashing it again (docs/local-store.md, "Checks on read"). Java's CRC32C is an intrinsic, also
 * under C1, and reads native memory in place.
 */
public final class RecordedCrc {
    /** Set in every recorded value. */
    public static final long PRESENT = 1L << 32;

    private RecordedCrc() {
    }

    /** The recorded value for {@code bytes}. */
    public static long of(MemorySegment bytes) {
        CRC32C crc = new CRC32C();
        crc.update(bytes.asByteBuffer());
        return PRESENT | crc.getValue();
    }

    /** The recorded value for {@code data[offset, offset + length)}. */
    public static long of(byte[] data, int offset, int length) {
        CRC32C crc = new CRC32C();
        crc.update(data, offset, length);
        return PRESENT | crc.getValue();
    }

    /** The recorded value for a CRC read back from where it was stored (its low 32 bits). */
    public static long stored(int crc) {
        return PRESENT | Integer.toUnsignedLong(crc);
    }
}

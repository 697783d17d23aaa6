package castore.store.local;

import castore.model.B3Digest;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Byte layout of pack and index files (docs/local-store.md draws it). Integers are little-endian,
 * digests are compared as unsigned bytes (read as big-endian longs).
 *
 * <pre>
 * pack:  "CASPACK\0" u32 version u32 0 | entries: u8 kind, 3 zero bytes, u32 length, digest[32], payload
 * index: "CASIDX\0\0" u32 version u32 count u64 packSize | fanout u32[256] | entries[count] | u32 crc32c u32 "IEND"
 * index entry (56 bytes, sorted by digest then kind): digest[32] u8 kind, 3 zero bytes, u32 length,
 *        u64 payload offset, u64 aux (blob size for BLOB, tvix size for DIRECTORY, for CHUNK 1 << 32 | CRC32C
 *        of the payload, or 0 in packs written before CRCs: {@link ChunkCrc})
 * </pre>
 */
final class PackFormat {
    static final int VERSION = 1;
    static final long PACK_MAGIC = 0x004b434150534143L; // "CASPACK\0" little-endian
    static final long INDEX_MAGIC = 0x0000584449534143L; // "CASIDX\0\0" little-endian
    static final int INDEX_END = 0x444e4549; // "IEND"
    static final int PACK_HEADER = 16;
    static final int ENTRY_HEADER = 40;
    static final int INDEX_HEADER = 24;
    static final int FANOUT = 256 * 4;
    static final int INDEX_ENTRY = 56;
    static final int INDEX_TRAILER = 8;

    static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong DIGEST_WORD = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    /**
     * The same fields read from heap arrays. A byte-array VarHandle is cheap from a fresh JVM's
     * first calls on; a MemorySegment accessor costs microseconds until compiled (docs/fuse.md).
     */
    static final VarHandle DIGEST_WORD_OF_ARRAY = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.BIG_ENDIAN);
    static final VarHandle INT_OF_ARRAY = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);

    private PackFormat() {
    }

    static long indexSize(int count) {
        return INDEX_HEADER + FANOUT + (long) count * INDEX_ENTRY + INDEX_TRAILER;
    }

    /** A digest as four big-endian words, for comparing against mapped indexes without allocating. */
    record Key(long w0, long w1, long w2, long w3) {
        static Key of(B3Digest digest) {
            byte[] b = new byte[B3Digest.LENGTH];
            digest.copyTo(b, 0);
            return of(b, 0);
        }

        /** The key of the digest stored at {@code b[at, at + 32)}. */
        static Key of(byte[] b, int at) {
            return new Key((long) DIGEST_WORD_OF_ARRAY.get(b, at), (long) DIGEST_WORD_OF_ARRAY.get(b, at + 8),
                    (long) DIGEST_WORD_OF_ARRAY.get(b, at + 16), (long) DIGEST_WORD_OF_ARRAY.get(b, at + 24));
        }

        // Written out: a record's generated equals/hashCode go through invokedynamic (see FileNode).
        @Override
        public boolean equals(Object o) {
            return o instanceof Key k && w0 == k.w0 && w1 == k.w1 && w2 == k.w2 && w3 == k.w3;
        }

        @Override
        public int hashCode() {
            return Long.hashCode(w0);
        }

        int firstByte() {
            return (int) (w0 >>> 56);
        }

        /** Digest bytes 1-4, as {@link Pack} keeps them per entry. */
        int prefix() {
            return (int) (w0 >>> 24);
        }

        /** Compares this key with the digest stored at {@code offset} of {@code segment}. */
        int compareTo(MemorySegment segment, long offset) {
            int c = Long.compareUnsigned(w0, segment.get(DIGEST_WORD, offset));
            if (c != 0) {
                return c;
            }
            c = Long.compareUnsigned(w1, segment.get(DIGEST_WORD, offset + 8));
            if (c != 0) {
                return c;
            }
            c = Long.compareUnsigned(w2, segment.get(DIGEST_WORD, offset + 16));
            return c != 0 ? c : Long.compareUnsigned(w3, segment.get(DIGEST_WORD, offset + 24));
        }
    }
}

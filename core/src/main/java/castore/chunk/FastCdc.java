package castore.chunk;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Objects;

/**
 * Content-defined chunking: FastCDC as published in 2020 (gear hash, cut-point skipping below
 * the minimum size, normalized chunking at level 1, rolling two bytes per step), cut for cut
 * identical to the {@code fastcdc} crate's {@code v2020} module that tvix uses, so the same
 * blob gives the same chunks in both.
 *
 * <p>Contract (as the crate's {@code cut}): given {@code length} bytes available at
 * {@code offset}, where callers always pass {@code min(maxSize(), bytes left in the stream)},
 * return the length of the next chunk, in [1, length]. Deterministic for the same input.
 * A cut depends only on the chunk's own bytes, so boundaries resynchronise after an edit.
 */
public final class FastCdc {
    /** The crate's bounds on the sizes (outside them its mask table has no entry). */
    public static final int MINIMUM_MIN = 64, MINIMUM_MAX = 1 << 20;
    public static final int AVERAGE_MIN = 256, AVERAGE_MAX = 4 << 20;
    public static final int MAXIMUM_MIN = 1024, MAXIMUM_MAX = 16 << 20;

    /**
     * Judgement masks by number of one bits (index), the bits spread over the word as the
     * FastCDC paper recommends; the crate's table (from the C reference and restic-FastCDC).
     */
    private static final long[] MASKS = {
        0, 0, 0, 0, 0,
        0x0000000001804110L, // 5, only for normalization level 3
        0x0000000001803110L, // 64 B
        0x0000000018035100L, // 128 B
        0x0000001800035300L, // 256 B
        0x0000019000353000L, // 512 B
        0x0000590003530000L, // 1 KiB
        0x0000d90003530000L, // 2 KiB
        0x0000d90103530000L, // 4 KiB
        0x0000d90303530000L, // 8 KiB
        0x0000d90313530000L, // 16 KiB
        0x0000d90f03530000L, // 32 KiB
        0x0000d90303537000L, // 64 KiB
        0x0000d90703537000L, // 128 KiB
        0x0000d90707537000L, // 256 KiB
        0x0000d91707537000L, // 512 KiB
        0x0000d91747537000L, // 1 MiB
        0x0000d91767537000L, // 2 MiB
        0x0000d93767537000L, // 4 MiB
        0x0000d93777537000L, // 8 MiB
        0x0000d93777577000L, // 16 MiB
        0x0000db3777577000L, // 25, only for normalization level 3
    };

    /** GEAR[i]: the first 8 bytes (big-endian) of MD5 of 64 bytes equal to i, as in the crate. */
    private static final long[] GEAR = gear();
    /** GEAR shifted left once: the first byte of each two-byte step is judged against masks shifted alike. */
    private static final long[] GEAR_LS = shiftedLeft(GEAR);

    private static final ValueLayout.OfLong LONG_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** tvix's parameters: min/avg/max 128/256/512 KiB (after the tables, which its constructor reads). */
    public static final FastCdc TVIX = new FastCdc(128 * 1024, 256 * 1024, 512 * 1024);

    private final int minSize;
    private final int avgSize;
    private final int maxSize;
    /** Stricter mask (one more bit) before the average size, looser (one less) after: normalization level 1. */
    private final long maskS;
    private final long maskL;
    private final long maskSLs;
    private final long maskLLs;
    /**
     * Over zero bytes the hash settles within 32 steps: each step makes it 4h + 3g (g = GEAR[0]),
     * so after 32 steps from any start it is -g, and -2g after a step's first byte. If no mask
     * cuts there, a window of zeros has no cut past its first 32 steps, and {@link #cut} takes a
     * window of only zeros (a file's holes, zeroed disk images) without hashing it byte by byte.
     */
    private final boolean zerosSettleUncut;
    /** {@link #maxSize} zero bytes, that windows are compared against (and as a segment). */
    private final byte[] zeros;
    private final MemorySegment zerosSegment;

    public FastCdc(int minSize, int avgSize, int maxSize) {
        if (!(0 < minSize && minSize <= avgSize && avgSize <= maxSize)) {
            throw new IllegalArgumentException("need 0 < min <= avg <= max, got " + minSize + "/" + avgSize + "/" + maxSize);
        }
        if (minSize < MINIMUM_MIN || minSize > MINIMUM_MAX || avgSize < AVERAGE_MIN || avgSize > AVERAGE_MAX
                || maxSize < MAXIMUM_MIN || maxSize > MAXIMUM_MAX) {
            throw new IllegalArgumentException("chunk sizes " + minSize + "/" + avgSize + "/" + maxSize
                    + " out of range: min " + MINIMUM_MIN + ".." + MINIMUM_MAX + ", avg " + AVERAGE_MIN + ".." + AVERAGE_MAX
                    + ", max " + MAXIMUM_MIN + ".." + MAXIMUM_MAX);
        }
        this.minSize = minSize;
        this.avgSize = avgSize;
        this.maxSize = maxSize;
        int bits = (int) Math.round(Math.log(avgSize) / Math.log(2));
        this.maskS = MASKS[bits + 1];
        this.maskL = MASKS[bits - 1];
        this.maskSLs = maskS << 1;
        this.maskLLs = maskL << 1;
        long settled = -GEAR[0];
        long settledHalf = -2 * GEAR[0];
        this.zerosSettleUncut = (settledHalf & maskSLs) != 0 && (settled & maskS) != 0
                && (settledHalf & maskLLs) != 0 && (settled & maskL) != 0;
        this.zeros = new byte[maxSize];
        this.zerosSegment = MemorySegment.ofArray(zeros);
    }

    public int minSize() {
        return minSize;
    }

    public int avgSize() {
        return avgSize;
    }

    public int maxSize() {
        return maxSize;
    }

    public int cut(byte[] data, int offset, int length) {
        Objects.checkFromIndexSize(offset, length, data.length);
        if (length <= minSize) {
            return length;
        }
        int remaining = Math.min(length, maxSize);
        int from = minSize / 2 * 2;
        // Stops at the first byte that is not zero: at once on most data.
        if (zerosSettleUncut && java.util.Arrays.mismatch(data, offset + from, offset + remaining, zeros, 0, remaining - from) < 0) {
            return cutInZeros(remaining);
        }
        return scan(data, offset, remaining);
    }

    /** {@link #cut} without the shortcut for zeros (for tests): the hash over every byte. */
    int scan(byte[] data, int offset, int length) {
        if (length <= minSize) {
            return length;
        }
        int remaining = Math.min(length, maxSize);
        int center = Math.min(avgSize, remaining);
        // The hash starts at the minimum size (cut-point skipping) and takes two bytes per step;
        // a cut found on a step's first byte excludes that byte, as in the crate.
        long hash = 0;
        int a = minSize / 2 * 2;
        // Two loops, not one over both masks: a single loop choosing the mask (by a phase
        // variable or a comparison) ran at 2/3 of this speed.
        for (int stop = center / 2 * 2; a < stop; a += 2) {
            hash = (hash << 2) + GEAR_LS[data[offset + a] & 0xff];
            if ((hash & maskSLs) == 0) {
                return a;
            }
            hash += GEAR[data[offset + a + 1] & 0xff];
            if ((hash & maskS) == 0) {
                return a + 1;
            }
        }
        for (int stop = remaining / 2 * 2; a < stop; a += 2) {
            hash = (hash << 2) + GEAR_LS[data[offset + a] & 0xff];
            if ((hash & maskLLs) == 0) {
                return a;
            }
            hash += GEAR[data[offset + a + 1] & 0xff];
            if ((hash & maskL) == 0) {
                return a + 1;
            }
        }
        return remaining;
    }

    /**
     * The cut in a window whose hashed bytes (from the minimum size to {@code remaining}) are all
     * zeros: the steps of {@link #scan} until the hash has settled, then none can cut.
     */
    private int cutInZeros(int remaining) {
        int center = Math.min(avgSize, remaining);
        int centerStop = center / 2 * 2;
        int stop = remaining / 2 * 2;
        long hash = 0;
        int a = minSize / 2 * 2;
        for (int step = 0; step < 32 && a < stop; step++, a += 2) {
            boolean small = a < centerStop;
            hash = (hash << 2) + GEAR_LS[0];
            if ((hash & (small ? maskSLs : maskLLs)) == 0) {
                return a;
            }
            hash += GEAR[0];
            if ((hash & (small ? maskS : maskL)) == 0) {
                return a + 1;
            }
        }
        return remaining;
    }

    /**
     * The same cut on a memory segment, e.g. a mapped file. Reads eight bytes per access (two
     * at a time is 17% slower off-heap); heap arrays take the {@code byte[]} path, as a call
     * site that sees both kinds of segment runs at 60% speed.
     */
    public int cut(MemorySegment data, long offset, int length) {
        Objects.checkFromIndexSize(offset, length, data.byteSize());
        if (data.heapBase().orElse(null) instanceof byte[] array) {
            return cut(array, Math.toIntExact(data.address() + offset), length);
        }
        if (length <= minSize) {
            return length;
        }
        int remaining = Math.min(length, maxSize);
        int from = minSize / 2 * 2;
        if (zerosSettleUncut && MemorySegment.mismatch(data, offset + from, offset + remaining, zerosSegment, 0, remaining - from) < 0) {
            return cutInZeros(remaining);
        }
        int center = Math.min(avgSize, remaining);
        MemorySegment s = data.asSlice(offset, remaining);
        long hash = 0;
        int a = minSize / 2 * 2;
        long maskLs = maskSLs;
        long mask = maskS;
        int stop = center / 2 * 2;
        for (int phase = 0; phase < 2; phase++) {
            while (a < stop) {
                long w;
                int pairs;
                if (a + 8 <= stop) {
                    w = s.get(LONG_LE, a);
                    pairs = 4;
                } else {
                    w = s.get(SHORT_LE, a);
                    pairs = 1;
                }
                for (int k = 0; k < pairs; k++, a += 2, w >>>= 16) {
                    hash = (hash << 2) + GEAR_LS[(int) w & 0xff];
                    if ((hash & maskLs) == 0) {
                        return a;
                    }
                    hash += GEAR[(int) (w >>> 8) & 0xff];
                    if ((hash & mask) == 0) {
                        return a + 1;
                    }
                }
            }
            maskLs = maskLLs;
            mask = maskL;
            stop = remaining / 2 * 2;
        }
        return remaining;
    }

    /** Whether windows of zeros are cut without hashing them (for tests). */
    boolean skipsZeros() {
        return zerosSettleUncut;
    }

    /** The gear table entry for byte value {@code b} (for tests). */
    static long gear(int b) {
        return GEAR[b];
    }

    private static long[] gear() {
        try {
            MessageDigest md5 = MessageDigest.getInstance("MD5");
            long[] table = new long[256];
            byte[] input = new byte[64];
            for (int i = 0; i < 256; i++) {
                java.util.Arrays.fill(input, (byte) i);
                byte[] d = md5.digest(input);
                long v = 0;
                for (int k = 0; k < 8; k++) {
                    v = v << 8 | (d[k] & 0xff);
                }
                table[i] = v;
            }
            return table;
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("MD5 is required of every JDK", e);
        }
    }

    private static long[] shiftedLeft(long[] table) {
        long[] shifted = new long[table.length];
        for (int i = 0; i < table.length; i++) {
            shifted[i] = table[i] << 1;
        }
        return shifted;
    }

    @Override
    public String toString() {
        return "FastCDC 2020 " + minSize + "/" + avgSize + "/" + maxSize;
    }
}

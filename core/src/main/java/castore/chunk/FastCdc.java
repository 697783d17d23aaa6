package castore.chunk;

import java.lang.foreign.MemorySegment;

/**
 * Content-defined chunking. PLACEHOLDER body (fixed-size cuts at the average size) until the
 * FastCDC 2020 implementation lands; the API is fixed.
 *
 * <p>Contract (as the fastcdc crate's {@code cut}): given {@code length} bytes available at
 * {@code offset}, where callers always pass {@code min(maxSize(), bytes left in the stream)},
 * return the length of the next chunk, in [1, length]. Deterministic for the same input.
 */
public final class FastCdc {
    /** tvix's parameters: min/avg/max 128/256/512 KiB. */
    public static final FastCdc TVIX = new FastCdc(128 * 1024, 256 * 1024, 512 * 1024);

    private final int minSize;
    private final int avgSize;
    private final int maxSize;

    public FastCdc(int minSize, int avgSize, int maxSize) {
        if (!(0 < minSize && minSize <= avgSize && avgSize <= maxSize)) {
            throw new IllegalArgumentException("need 0 < min <= avg <= max, got " + minSize + "/" + avgSize + "/" + maxSize);
        }
        this.minSize = minSize;
        this.avgSize = avgSize;
        this.maxSize = maxSize;
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
        return Math.min(length, avgSize);
    }

    public int cut(MemorySegment data, long offset, int length) {
        return Math.min(length, avgSize);
    }
}

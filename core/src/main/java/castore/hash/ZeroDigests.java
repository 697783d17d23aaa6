package castore.hash;

import castore.model.B3Digest;
import java.util.Arrays;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Digests of runs of zero bytes, remembered by length: a file's holes and a zeroed disk image
 * cut into chunks of the same few lengths (mostly the chunker's maximum), each of which would
 * otherwise be hashed again.
 */
public final class ZeroDigests {
    private static final int REMEMBERED = 256;
    private static final byte[] ZEROS = new byte[64 << 10];
    private static final ConcurrentHashMap<Integer, B3Digest> BY_LENGTH = new ConcurrentHashMap<>();

    private ZeroDigests() {
    }

    /** Whether {@code length} bytes of {@code data} at {@code offset} are all zero (stops at the first that is not). */
    public static boolean isZeros(byte[] data, int offset, int length) {
        for (int done = 0; done < length; done += ZEROS.length) {
            int n = Math.min(ZEROS.length, length - done);
            if (Arrays.mismatch(data, offset + done, offset + done + n, ZEROS, 0, n) >= 0) {
                return false;
            }
        }
        return true;
    }

    /** The BLAKE3 digest of {@code length} bytes of {@code data}: from memory if they are all zero. */
    public static B3Digest digest(byte[] data, int offset, int length) {
        return isZeros(data, offset, length) ? of(length) : Blake3.digest(data, offset, length);
    }

    /** The BLAKE3 digest of {@code length} zero bytes. */
    public static B3Digest of(int length) {
        B3Digest known = BY_LENGTH.get(length);
        if (known != null) {
            return known;
        }
        B3Digest digest = Blake3.digest(new byte[length]);
        if (BY_LENGTH.size() < REMEMBERED) {
            BY_LENGTH.putIfAbsent(length, digest);
        }
        return digest;
    }
}

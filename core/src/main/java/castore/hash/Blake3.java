package castore.hash;

import castore.model.B3Digest;
import java.nio.ByteBuffer;

/**
 * BLAKE3 (unkeyed hash mode, 32-byte output) in portable Java. This is the reference
 * algorithm: chunks of 1 KiB compressed block by block, chaining values merged into a
 * binary tree. Faster engines must agree with it bit for bit.
 */
public final class Blake3 {
    static final int[] IV = {
        0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
    };
    static final int CHUNK_START = 1;
    static final int CHUNK_END = 2;
    static final int PARENT = 4;
    static final int ROOT = 8;
    static final int BLOCK_LEN = 64;
    static final int CHUNK_LEN = 1024;

    private Blake3() {
    }

    public static B3Digest digest(byte[] data) {
        return digest(data, 0, data.length);
    }

    public static B3Digest digest(byte[] data, int offset, int length) {
        Hasher h = newHasher();
        h.update(data, offset, length);
        return h.digest();
    }

    public static B3Digest digest(ByteBuffer data) {
        Hasher h = newHasher();
        h.update(data);
        return h.digest();
    }

    public static Hasher newHasher() {
        return new PortableHasher();
    }

    /** An incremental BLAKE3 hasher. Not thread-safe. */
    public interface Hasher {
        void update(byte[] data, int offset, int length);

        default void update(byte[] data) {
            update(data, 0, data.length);
        }

        /** Consumes the buffer's remaining bytes. */
        void update(ByteBuffer data);

        /** The digest of everything so far; the hasher may be updated further. */
        B3Digest digest();

        /** Forgets all input, for reuse. */
        void reset();
    }

    static final class PortableHasher implements Hasher {
        private final int[] cvStack = new int[54 * 8];
        private int cvStackLen;
        private final int[] cv = new int[8];
        private long chunkCounter;
        private final byte[] block = new byte[BLOCK_LEN];
        private int blockLen;
        private int blocksCompressed;
        private final int[] words = new int[16];
        private final int[] state = new int[16];

        PortableHasher() {
            reset();
        }

        @Override
        public void reset() {
            System.arraycopy(IV, 0, cv, 0, 8);
            cvStackLen = 0;
            chunkCounter = 0;
            blockLen = 0;
            blocksCompressed = 0;
        }

        private int chunkLen() {
            return blocksCompressed * BLOCK_LEN + blockLen;
        }

        @Override
        public void update(byte[] data, int offset, int length) {
            while (length > 0) {
                if (chunkLen() == CHUNK_LEN) {
                    finishChunk();
                }
                if (blockLen == BLOCK_LEN) {
                    compressBlock();
                }
                int take = Math.min(BLOCK_LEN - blockLen, length);
                take = Math.min(take, CHUNK_LEN - chunkLen());
                System.arraycopy(data, offset, block, blockLen, take);
                blockLen += take;
                offset += take;
                length -= take;
            }
        }

        @Override
        public void update(ByteBuffer data) {
            if (data.hasArray()) {
                update(data.array(), data.arrayOffset() + data.position(), data.remaining());
                data.position(data.limit());
                return;
            }
            byte[] tmp = new byte[Math.min(data.remaining(), 16384)];
            while (data.hasRemaining()) {
                int n = Math.min(tmp.length, data.remaining());
                data.get(tmp, 0, n);
                update(tmp, 0, n);
            }
        }

        private void compressBlock() {
            loadWords(block, 0, words);
            compress(cv, words, chunkCounter, BLOCK_LEN, CHUNK_START_IF(blocksCompressed), state);
            System.arraycopy(state, 0, cv, 0, 8);
            blocksCompressed++;
            blockLen = 0;
        }

        private static int CHUNK_START_IF(int blocksCompressed) {
            return blocksCompressed == 0 ? CHUNK_START : 0;
        }

        /** Completes the current (full) chunk and merges its chaining value into the tree. */
        private void finishChunk() {
            java.util.Arrays.fill(block, blockLen, BLOCK_LEN, (byte) 0);
            loadWords(block, 0, words);
            compress(cv, words, chunkCounter, blockLen, CHUNK_START_IF(blocksCompressed) | CHUNK_END, state);
            int[] chunkCv = new int[8];
            System.arraycopy(state, 0, chunkCv, 0, 8);
            long totalChunks = chunkCounter + 1;
            while ((totalChunks & 1) == 0) {
                cvStackLen--;
                parentCv(cvStack, cvStackLen * 8, chunkCv);
                totalChunks >>= 1;
            }
            System.arraycopy(chunkCv, 0, cvStack, cvStackLen * 8, 8);
            cvStackLen++;
            chunkCounter++;
            System.arraycopy(IV, 0, cv, 0, 8);
            blockLen = 0;
            blocksCompressed = 0;
        }

        /** right := parent(left at stack[offset], right). */
        private void parentCv(int[] stack, int offset, int[] right) {
            int[] m = new int[16];
            System.arraycopy(stack, offset, m, 0, 8);
            System.arraycopy(right, 0, m, 8, 8);
            compress(IV, m, 0, BLOCK_LEN, PARENT, state);
            System.arraycopy(state, 0, right, 0, 8);
        }

        @Override
        public B3Digest digest() {
            // Output of the current chunk, then fold the stack from the top.
            int[] inCv = cv.clone();
            int[] m = new int[16];
            byte[] last = block.clone();
            java.util.Arrays.fill(last, blockLen, BLOCK_LEN, (byte) 0);
            loadWords(last, 0, m);
            long counter = chunkCounter;
            int len = blockLen;
            int flags = CHUNK_START_IF(blocksCompressed) | CHUNK_END;
            int[] out = new int[16];
            for (int i = cvStackLen - 1; i >= 0; i--) {
                compress(inCv, m, counter, len, flags, out);
                int[] pm = new int[16];
                System.arraycopy(cvStack, i * 8, pm, 0, 8);
                System.arraycopy(out, 0, pm, 8, 8);
                inCv = IV.clone();
                m = pm;
                counter = 0;
                len = BLOCK_LEN;
                flags = PARENT;
            }
            compress(inCv, m, counter, len, flags | ROOT, out);
            byte[] digest = new byte[32];
            for (int i = 0; i < 8; i++) {
                int w = out[i];
                digest[4 * i] = (byte) w;
                digest[4 * i + 1] = (byte) (w >>> 8);
                digest[4 * i + 2] = (byte) (w >>> 16);
                digest[4 * i + 3] = (byte) (w >>> 24);
            }
            return B3Digest.wrap(digest);
        }
    }

    static void loadWords(byte[] b, int off, int[] w) {
        for (int i = 0; i < 16; i++) {
            int p = off + 4 * i;
            w[i] = (b[p] & 0xff) | (b[p + 1] & 0xff) << 8 | (b[p + 2] & 0xff) << 16 | (b[p + 3] & 0xff) << 24;
        }
    }

    /** The BLAKE3 compression function; writes the 16-word output into {@code out}. */
    static void compress(int[] cv, int[] m, long counter, int blockLen, int flags, int[] out) {
        int s0 = cv[0], s1 = cv[1], s2 = cv[2], s3 = cv[3], s4 = cv[4], s5 = cv[5], s6 = cv[6], s7 = cv[7];
        int s8 = IV[0], s9 = IV[1], s10 = IV[2], s11 = IV[3];
        int s12 = (int) counter, s13 = (int) (counter >>> 32), s14 = blockLen, s15 = flags;
        int m0 = m[0], m1 = m[1], m2 = m[2], m3 = m[3], m4 = m[4], m5 = m[5], m6 = m[6], m7 = m[7];
        int m8 = m[8], m9 = m[9], m10 = m[10], m11 = m[11], m12 = m[12], m13 = m[13], m14 = m[14], m15 = m[15];
        for (int r = 0; r < 7; r++) {
            // Columns.
            s0 += s4 + m0; s12 = Integer.rotateRight(s12 ^ s0, 16); s8 += s12; s4 = Integer.rotateRight(s4 ^ s8, 12);
            s0 += s4 + m1; s12 = Integer.rotateRight(s12 ^ s0, 8); s8 += s12; s4 = Integer.rotateRight(s4 ^ s8, 7);
            s1 += s5 + m2; s13 = Integer.rotateRight(s13 ^ s1, 16); s9 += s13; s5 = Integer.rotateRight(s5 ^ s9, 12);
            s1 += s5 + m3; s13 = Integer.rotateRight(s13 ^ s1, 8); s9 += s13; s5 = Integer.rotateRight(s5 ^ s9, 7);
            s2 += s6 + m4; s14 = Integer.rotateRight(s14 ^ s2, 16); s10 += s14; s6 = Integer.rotateRight(s6 ^ s10, 12);
            s2 += s6 + m5; s14 = Integer.rotateRight(s14 ^ s2, 8); s10 += s14; s6 = Integer.rotateRight(s6 ^ s10, 7);
            s3 += s7 + m6; s15 = Integer.rotateRight(s15 ^ s3, 16); s11 += s15; s7 = Integer.rotateRight(s7 ^ s11, 12);
            s3 += s7 + m7; s15 = Integer.rotateRight(s15 ^ s3, 8); s11 += s15; s7 = Integer.rotateRight(s7 ^ s11, 7);
            // Diagonals.
            s0 += s5 + m8; s15 = Integer.rotateRight(s15 ^ s0, 16); s10 += s15; s5 = Integer.rotateRight(s5 ^ s10, 12);
            s0 += s5 + m9; s15 = Integer.rotateRight(s15 ^ s0, 8); s10 += s15; s5 = Integer.rotateRight(s5 ^ s10, 7);
            s1 += s6 + m10; s12 = Integer.rotateRight(s12 ^ s1, 16); s11 += s12; s6 = Integer.rotateRight(s6 ^ s11, 12);
            s1 += s6 + m11; s12 = Integer.rotateRight(s12 ^ s1, 8); s11 += s12; s6 = Integer.rotateRight(s6 ^ s11, 7);
            s2 += s7 + m12; s13 = Integer.rotateRight(s13 ^ s2, 16); s8 += s13; s7 = Integer.rotateRight(s7 ^ s8, 12);
            s2 += s7 + m13; s13 = Integer.rotateRight(s13 ^ s2, 8); s8 += s13; s7 = Integer.rotateRight(s7 ^ s8, 7);
            s3 += s4 + m14; s14 = Integer.rotateRight(s14 ^ s3, 16); s9 += s14; s4 = Integer.rotateRight(s4 ^ s9, 12);
            s3 += s4 + m15; s14 = Integer.rotateRight(s14 ^ s3, 8); s9 += s14; s4 = Integer.rotateRight(s4 ^ s9, 7);
            // Permute the message words: [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8].
            int t0 = m2, t1 = m6, t2 = m3, t3 = m10, t4 = m7, t5 = m0, t6 = m4, t7 = m13;
            int t8 = m1, t9 = m11, t10 = m12, t11 = m5, t12 = m9, t13 = m14, t14 = m15, t15 = m8;
            m0 = t0; m1 = t1; m2 = t2; m3 = t3; m4 = t4; m5 = t5; m6 = t6; m7 = t7;
            m8 = t8; m9 = t9; m10 = t10; m11 = t11; m12 = t12; m13 = t13; m14 = t14; m15 = t15;
        }
        out[0] = s0 ^ s8; out[1] = s1 ^ s9; out[2] = s2 ^ s10; out[3] = s3 ^ s11;
        out[4] = s4 ^ s12; out[5] = s5 ^ s13; out[6] = s6 ^ s14; out[7] = s7 ^ s15;
        out[8] = s8 ^ cv[0]; out[9] = s9 ^ cv[1]; out[10] = s10 ^ cv[2]; out[11] = s11 ^ cv[3];
        out[12] = s12 ^ cv[4]; out[13] = s13 ^ cv[5]; out[14] = s14 ^ cv[6]; out[15] = s15 ^ cv[7];
    }
}

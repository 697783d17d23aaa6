package castore.hash;

import castore.model.B3Digest;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * BLAKE3 (unkeyed hash, 32-byte output) in portable Java: the fallback where the native
 * library is not available, and the reference the native path is tested against.
 *
 * <p>Speed comes from a compression function on local variables, message words read straight
 * from the input, whole chunks hashed from the caller's array without copying, and no
 * allocation per block or chunk.
 */
final class JavaBlake3 implements Blake3.Engine {
    static final JavaBlake3 INSTANCE = new JavaBlake3();

    private static final int IV0 = 0x6A09E667, IV1 = 0xBB67AE85, IV2 = 0x3C6EF372, IV3 = 0xA54FF53A;
    private static final int IV4 = 0x510E527F, IV5 = 0x9B05688C, IV6 = 0x1F83D9AB, IV7 = 0x5BE0CD19;
    private static final int[] IV = {IV0, IV1, IV2, IV3, IV4, IV5, IV6, IV7};
    private static final int CHUNK_START = 1;
    private static final int CHUNK_END = 2;
    private static final int PARENT = 4;
    private static final int ROOT = 8;
    static final int BLOCK_LEN = 64;
    static final int CHUNK_LEN = 1024;
    private static final int CV_LEN = 32;
    /** 2^54 chunks of 1 KiB exceed any input; the stack never holds more CVs than that. */
    private static final int MAX_DEPTH = 54;

    private static final VarHandle INT_LE = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);

    private JavaBlake3() {
    }

    @Override
    public Blake3.Implementation implementation() {
        return Blake3.Implementation.JAVA;
    }

    @Override
    public B3Digest digest(byte[] data, int offset, int length) {
        Hasher h = new Hasher();
        h.update(data, offset, length);
        return h.digest();
    }

    @Override
    public B3Digest digest(MemorySegment data) {
        Hasher h = new Hasher();
        h.update(data, 0, data.byteSize());
        return h.digest();
    }

    @Override
    public Blake3.Hasher newHasher() {
        return new Hasher();
    }

    /** Incremental state: the chunk being hashed and the stack of finished subtree CVs. */
    static final class Hasher implements Blake3.Hasher {
        /** The CV of the chunk in progress. */
        private final int[] cv = new int[8];
        /** Input not yet compressed: compressing waits until more input proves it is not the last block. */
        private final byte[] block = new byte[BLOCK_LEN];
        private int blockLen;
        private int blocksCompressed;
        private long chunkCounter;
        /**
         * CVs of finished subtrees, 32 little-endian bytes each: two neighbours are exactly the
         * 64-byte block of their parent node, so merging reads them in place.
         */
        private byte[] cvStack;
        private int cvStackLen;
        private final int[] scratch = new int[8];
        private byte[] copyBuffer;

        Hasher() {
            reset();
        }

        @Override
        public void reset() {
            System.arraycopy(IV, 0, cv, 0, 8);
            blockLen = 0;
            blocksCompressed = 0;
            chunkCounter = 0;
            cvStackLen = 0;
        }

        @Override
        public void update(byte[] data, int offset, int length) {
            Objects.checkFromIndexSize(offset, length, data.length);
            while (length > 0) {
                int chunkLen = blocksCompressed * BLOCK_LEN + blockLen;
                if (chunkLen == CHUNK_LEN) {
                    // More input follows, so the full chunk is not the last one: finish it.
                    finishChunk();
                    chunkLen = 0;
                }
                if (chunkLen == 0 && length > CHUNK_LEN) {
                    // Whole chunks straight from the input while more input follows each.
                    do {
                        hashChunk(data, offset);
                        offset += CHUNK_LEN;
                        length -= CHUNK_LEN;
                    } while (length > CHUNK_LEN);
                    continue;
                }
                if (blockLen == BLOCK_LEN) {
                    compress(cv, block, 0, chunkCounter, BLOCK_LEN, startFlag(), cv);
                    blocksCompressed++;
                    blockLen = 0;
                }
                if (blockLen == 0) {
                    // Blocks straight from the input while more input follows (and not the chunk's last block).
                    while (length > BLOCK_LEN && blocksCompressed < CHUNK_LEN / BLOCK_LEN - 1) {
                        compress(cv, data, offset, chunkCounter, BLOCK_LEN, startFlag(), cv);
                        blocksCompressed++;
                        offset += BLOCK_LEN;
                        length -= BLOCK_LEN;
                    }
                }
                int take = Math.min(BLOCK_LEN - blockLen, length);
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
            } else {
                update(MemorySegment.ofBuffer(data), 0, data.remaining());
                data.position(data.limit());
            }
        }

        @Override
        public void update(MemorySegment data, long offset, long length) {
            Objects.checkFromIndexSize(offset, length, data.byteSize());
            if (data.heapBase().orElse(null) instanceof byte[] array && length <= Integer.MAX_VALUE) {
                long base = data.address(); // a heap segment's address is its offset in the array
                update(array, Math.toIntExact(base + offset), (int) length);
                return;
            }
            if (copyBuffer == null) {
                copyBuffer = new byte[64 * CHUNK_LEN];
            }
            while (length > 0) {
                int n = (int) Math.min(copyBuffer.length, length);
                MemorySegment.copy(data, ValueLayout.JAVA_BYTE, offset, copyBuffer, 0, n);
                update(copyBuffer, 0, n);
                offset += n;
                length -= n;
            }
        }

        private int startFlag() {
            return blocksCompressed == 0 ? CHUNK_START : 0;
        }

        /** Hashes one whole 1 KiB chunk from {@code data} (not the last chunk of the input). */
        private void hashChunk(byte[] data, int offset) {
            int[] c = cv;
            compress(c, data, offset, chunkCounter, BLOCK_LEN, CHUNK_START, c);
            for (int b = 1; b < CHUNK_LEN / BLOCK_LEN - 1; b++) {
                compress(c, data, offset + b * BLOCK_LEN, chunkCounter, BLOCK_LEN, 0, c);
            }
            compress(c, data, offset + CHUNK_LEN - BLOCK_LEN, chunkCounter, BLOCK_LEN, CHUNK_END, c);
            pushChunkCv();
        }

        /** Compresses the buffered last block of a full chunk (more input follows) and pushes its CV. */
        private void finishChunk() {
            compress(cv, block, 0, chunkCounter, BLOCK_LEN, startFlag() | CHUNK_END, cv);
            pushChunkCv();
        }

        /**
         * Pushes the CV of chunk {@code chunkCounter} and merges completed subtrees: after
         * chunk n, as many merges as n+1 has trailing zero bits. Merged parents are never
         * the root because more input is known to follow.
         */
        private void pushChunkCv() {
            if (cvStack == null) {
                cvStack = new byte[(MAX_DEPTH + 1) * CV_LEN];
            }
            storeCv(cv, cvStack, cvStackLen * CV_LEN);
            cvStackLen++;
            long total = chunkCounter + 1;
            while ((total & 1) == 0) {
                cvStackLen--;
                int left = (cvStackLen - 1) * CV_LEN;
                compress(IV, cvStack, left, 0, BLOCK_LEN, PARENT, scratch);
                storeCv(scratch, cvStack, left);
                total >>= 1;
            }
            chunkCounter++;
            System.arraycopy(IV, 0, cv, 0, 8);
            blocksCompressed = 0;
            blockLen = 0;
        }

        @Override
        public B3Digest digest() {
            // The current chunk's output, then parents up the stack; ROOT only on the last compression.
            byte[] last = new byte[BLOCK_LEN];
            System.arraycopy(block, 0, last, 0, blockLen);
            int[] inCv = cv.clone();
            int flags = startFlag() | CHUNK_END;
            if (cvStackLen == 0) {
                compress(inCv, last, 0, chunkCounter, blockLen, flags | ROOT, scratch);
                return toDigest(scratch);
            }
            int[] out = new int[8];
            compress(inCv, last, 0, chunkCounter, blockLen, flags, out);
            byte[] parentBlock = new byte[BLOCK_LEN];
            for (int i = cvStackLen - 1; i >= 0; i--) {
                System.arraycopy(cvStack, i * CV_LEN, parentBlock, 0, CV_LEN);
                storeCv(out, parentBlock, CV_LEN);
                compress(IV, parentBlock, 0, 0, BLOCK_LEN, i == 0 ? PARENT | ROOT : PARENT, out);
            }
            return toDigest(out);
        }
    }

    private static void storeCv(int[] cv, byte[] dst, int offset) {
        for (int i = 0; i < 8; i++) {
            INT_LE.set(dst, offset + 4 * i, cv[i]);
        }
    }

    private static B3Digest toDigest(int[] words) {
        byte[] digest = new byte[32];
        storeCv(words, digest, 0);
        return B3Digest.wrap(digest);
    }

    /**
     * The BLAKE3 compression function in chaining-value form: {@code out[i] = s[i] ^ s[i + 8]}
     * for the 64-byte block at {@code block[off]}. {@code out} may be {@code cv}.
     */
    static void compress(int[] cv, byte[] block, int off, long counter, int blockLen, int flags, int[] out) {
        Objects.checkFromIndexSize(off, BLOCK_LEN, block.length);
        int m0 = (int) INT_LE.get(block, off), m1 = (int) INT_LE.get(block, off + 4);
        int m2 = (int) INT_LE.get(block, off + 8), m3 = (int) INT_LE.get(block, off + 12);
        int m4 = (int) INT_LE.get(block, off + 16), m5 = (int) INT_LE.get(block, off + 20);
        int m6 = (int) INT_LE.get(block, off + 24), m7 = (int) INT_LE.get(block, off + 28);
        int m8 = (int) INT_LE.get(block, off + 32), m9 = (int) INT_LE.get(block, off + 36);
        int m10 = (int) INT_LE.get(block, off + 40), m11 = (int) INT_LE.get(block, off + 44);
        int m12 = (int) INT_LE.get(block, off + 48), m13 = (int) INT_LE.get(block, off + 52);
        int m14 = (int) INT_LE.get(block, off + 56), m15 = (int) INT_LE.get(block, off + 60);
        int s0 = cv[0], s1 = cv[1], s2 = cv[2], s3 = cv[3], s4 = cv[4], s5 = cv[5], s6 = cv[6], s7 = cv[7];
        int s8 = IV0, s9 = IV1, s10 = IV2, s11 = IV3;
        int s12 = (int) counter, s13 = (int) (counter >>> 32), s14 = blockLen, s15 = flags;
        // Seven rounds of column then diagonal G steps. A loop (not full unrolling, which was 1.6x
        // slower: the code no longer fits the CPU's decoded-instruction cache).
        for (int round = 0; round < 7; round++) {
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
            // Permute the message words for the next round: m[i] = m[P[i]], P = {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8}.
            int t0 = m2, t1 = m6, t2 = m3, t3 = m10, t4 = m7, t5 = m0, t6 = m4, t7 = m13;
            int t8 = m1, t9 = m11, t10 = m12, t11 = m5, t12 = m9, t13 = m14, t14 = m15, t15 = m8;
            m0 = t0; m1 = t1; m2 = t2; m3 = t3; m4 = t4; m5 = t5; m6 = t6; m7 = t7;
            m8 = t8; m9 = t9; m10 = t10; m11 = t11; m12 = t12; m13 = t13; m14 = t14; m15 = t15;
        }
        out[0] = s0 ^ s8;
        out[1] = s1 ^ s9;
        out[2] = s2 ^ s10;
        out[3] = s3 ^ s11;
        out[4] = s4 ^ s12;
        out[5] = s5 ^ s13;
        out[6] = s6 ^ s14;
        out[7] = s7 ^ s15;
    }
}

package castore.chunk;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class FastCdcTest {
    private static final FastCdc TVIX = FastCdc.TVIX;

    /** Chunk lengths of {@code data}, calling cut as the contract says: min(max, bytes left). */
    static List<Integer> chunks(FastCdc cdc, byte[] data) {
        List<Integer> lengths = new ArrayList<>();
        for (int offset = 0; offset < data.length; ) {
            int n = cdc.cut(data, offset, Math.min(cdc.maxSize(), data.length - offset));
            lengths.add(n);
            offset += n;
        }
        return lengths;
    }

    static List<Integer> chunks(FastCdc cdc, MemorySegment data) {
        List<Integer> lengths = new ArrayList<>();
        for (long offset = 0; offset < data.byteSize(); ) {
            int n = cdc.cut(data, offset, (int) Math.min(cdc.maxSize(), data.byteSize() - offset));
            lengths.add(n);
            offset += n;
        }
        return lengths;
    }

    static byte[] random(long seed, int length) {
        byte[] data = new byte[length];
        new SplittableRandom(seed).nextBytes(data);
        return data;
    }

    @Test
    void gearTableIsTheCratesMd5Table() {
        assertThat(FastCdc.gear(0)).isEqualTo(0x3b5d3c7d207e37dcL);
        assertThat(FastCdc.gear(1)).isEqualTo(0x784d68ba91123086L);
        assertThat(FastCdc.gear(2)).isEqualTo(0xcd52880f882e7298L);
        assertThat(FastCdc.gear(255)).isEqualTo(0xaabd2b2a451504e1L);
    }

    /**
     * The fastcdc crate (v2020, 128/256/512 KiB, level 1) cuts a 1 GiB SplittableRandom(42)
     * stream (nextBytes into a 1 GiB buffer: nextLong() words, little-endian) first at
     * 200872, 420208, 419483, 524288, 467522, into 3220 chunks. Generated here in pieces of a
     * multiple of 8 bytes, which yields the same bytes, through a window as a streaming chunker keeps.
     */
    @Test
    void tvixCutPointsOnTheReferenceStream() {
        SplittableRandom random = new SplittableRandom(42);
        long total = 1L << 30;
        byte[] window = new byte[2 * TVIX.maxSize()];
        int start = 0;
        int end = 0;
        long generated = 0;
        List<Integer> first = new ArrayList<>();
        int count = 0;
        long consumed = 0;
        while (consumed < total) {
            if (end - start < TVIX.maxSize() && generated < total) {
                System.arraycopy(window, start, window, 0, end - start);
                end -= start;
                start = 0;
                int piece = (int) Math.min(window.length - end, total - generated) & ~7;
                byte[] fresh = new byte[piece];
                random.nextBytes(fresh);
                System.arraycopy(fresh, 0, window, end, piece);
                end += piece;
                generated += piece;
                continue;
            }
            int n = TVIX.cut(window, start, Math.min(TVIX.maxSize(), end - start));
            assertThat(n).isBetween(1, TVIX.maxSize());
            if (first.size() < 5) {
                first.add(n);
            }
            start += n;
            consumed += n;
            count++;
        }
        assertThat(first).containsExactly(200872, 420208, 419483, 524288, 467522);
        assertThat(count).isEqualTo(3220);
    }

    @Test
    void segmentsCutExactlyLikeArrays() {
        byte[] data = random(5, 24 << 20);
        // Stretches of low entropy too: zeros and a short repeated pattern.
        Arrays.fill(data, 3 << 20, 5 << 20, (byte) 0);
        for (int i = 9 << 20; i < 11 << 20; i++) {
            data[i] = (byte) (i % 7);
        }
        List<Integer> expected = chunks(TVIX, data);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment offHeap = arena.allocate(data.length + 3L);
            MemorySegment.copy(data, 0, offHeap, ValueLayout.JAVA_BYTE, 3, data.length);
            assertThat(chunks(TVIX, offHeap.asSlice(3))).as("native segment at an odd address").isEqualTo(expected);
        }
        assertThat(chunks(TVIX, MemorySegment.ofArray(data))).as("heap segment").isEqualTo(expected);
        FastCdc small = new FastCdc(64, 256, 1024);
        byte[] head = Arrays.copyOf(data, 1 << 20);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment offHeap = arena.allocate(head.length);
            MemorySegment.copy(head, 0, offHeap, ValueLayout.JAVA_BYTE, 0, head.length);
            assertThat(chunks(small, offHeap)).isEqualTo(chunks(small, head));
        }
    }

    @Test
    void windowsOfZerosAreCutWhereHashingEveryByteCutsThem() {
        assertThat(TVIX.skipsZeros()).as("tvix's masks never cut a settled hash over zeros").isTrue();
        var random = new java.util.SplittableRandom(8);
        int skipping = 0;
        int notSkipping = 0;
        for (int minBits = 6; minBits <= 17; minBits++) {
            for (int avgBits = Math.max(minBits, 8); avgBits <= Math.min(minBits + 3, 19); avgBits++) {
                for (int maxBits = Math.max(avgBits, 10); maxBits <= Math.min(avgBits + 2, 20); maxBits++) {
                    FastCdc cdc = new FastCdc(1 << minBits, 1 << avgBits, 1 << maxBits);
                    if (cdc.skipsZeros()) {
                        skipping++;
                    } else {
                        notSkipping++;
                    }
                    for (int round = 0; round < 6; round++) {
                        byte[] window = new byte[cdc.maxSize() + 1 + random.nextInt(64)];
                        int length = switch (round) {
                            case 0 -> window.length;
                            case 1 -> cdc.minSize() + 1 + random.nextInt(Math.max(1, cdc.maxSize() - cdc.minSize()));
                            default -> cdc.minSize() + 1 + random.nextInt(window.length - cdc.minSize());
                        };
                        if (round >= 3) { // one byte that is not zero, somewhere past the minimum size, or within the first steps
                            int at = round == 3 ? cdc.minSize() + random.nextInt(64) : cdc.minSize() + random.nextInt(length - cdc.minSize());
                            window[Math.min(at, length - 1)] = (byte) (1 + random.nextInt(255));
                        }
                        int expected = cdc.scan(window, 0, length);
                        assertThat(cdc.cut(window, 0, length)).as("%s, %d bytes, round %d", cdc, length, round).isEqualTo(expected);
                        try (Arena arena = Arena.ofConfined()) {
                            MemorySegment offHeap = arena.allocate(length);
                            MemorySegment.copy(window, 0, offHeap, ValueLayout.JAVA_BYTE, 0, length);
                            assertThat(cdc.cut(offHeap, 0, length)).as("%s off-heap", cdc).isEqualTo(expected);
                        }
                    }
                }
            }
        }
        // No mask of the crate's table cuts the settled hash: every parameter set skips zeros.
        assertThat(notSkipping).as("parameters whose masks cut zeros").isZero();
        assertThat(skipping).isPositive();
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3})
    void chunksRespectTheBounds(long seed) {
        byte[] data = random(seed, 20 << 20);
        List<Integer> lengths = chunks(TVIX, data);
        assertThat(lengths.stream().mapToLong(Integer::longValue).sum()).isEqualTo(data.length);
        for (int i = 0; i < lengths.size() - 1; i++) {
            assertThat(lengths.get(i)).isBetween(TVIX.minSize(), TVIX.maxSize());
        }
        assertThat(lengths.getLast()).isBetween(1, TVIX.maxSize());
        // Normalized chunking keeps the mean near the average (well above min, below max).
        double mean = (double) data.length / lengths.size();
        assertThat(mean).isBetween(0.9 * TVIX.avgSize(), 1.6 * TVIX.avgSize());
    }

    @Test
    void dataWithoutCutPointsIsCutAtTheMaximum() {
        byte[] zeros = new byte[3 * TVIX.maxSize() + 5];
        List<Integer> lengths = chunks(TVIX, zeros);
        assertThat(lengths).allSatisfy(n -> assertThat(n).isBetween(1, TVIX.maxSize()));
        assertThat(lengths.stream().mapToInt(Integer::intValue).sum()).isEqualTo(zeros.length);
        assertThat(chunks(TVIX, zeros)).as("deterministic").isEqualTo(lengths);
    }

    @Test
    void cutDependsOnlyOnTheBytesOffered() {
        byte[] data = random(11, 3 << 20);
        int[] offsets = {0, 1, 777, 1 << 20};
        for (int offset : offsets) {
            byte[] copy = Arrays.copyOfRange(data, offset, offset + TVIX.maxSize());
            assertThat(TVIX.cut(data, offset, TVIX.maxSize())).isEqualTo(TVIX.cut(copy, 0, copy.length));
        }
        // Offering more than the maximum is the same as offering the maximum.
        assertThat(TVIX.cut(data, 0, 2 * TVIX.maxSize())).isEqualTo(TVIX.cut(data, 0, TVIX.maxSize()));
    }

    @Test
    void boundariesResynchroniseAfterAnInsertion() {
        byte[] original = random(21, 16 << 20);
        int editAt = 5 << 20;
        byte[] inserted = random(22, 100);
        byte[] edited = new byte[original.length + inserted.length];
        System.arraycopy(original, 0, edited, 0, editAt);
        System.arraycopy(inserted, 0, edited, editAt, inserted.length);
        System.arraycopy(original, editAt, edited, editAt + inserted.length, original.length - editAt);

        List<Long> before = boundaries(chunks(TVIX, original));
        List<Long> after = boundaries(chunks(TVIX, edited));
        // Identical up to the edit.
        assertThat(after.stream().filter(b -> b < editAt).toList()).isEqualTo(before.stream().filter(b -> b < editAt).toList());
        // Shifted by the insertion from shortly after it on: a few chunks differ, not the rest.
        long resyncBy = editAt + 4L * TVIX.maxSize();
        List<Long> shiftedBefore = before.stream().filter(b -> b > resyncBy).map(b -> b + inserted.length).toList();
        List<Long> tailAfter = after.stream().filter(b -> b > resyncBy + inserted.length).toList();
        assertThat(tailAfter).isEqualTo(shiftedBefore).hasSizeGreaterThan(20);
    }

    private static List<Long> boundaries(List<Integer> lengths) {
        List<Long> ends = new ArrayList<>();
        long end = 0;
        for (int n : lengths) {
            end += n;
            ends.add(end);
        }
        return ends;
    }

    @Test
    void shortInputsAreOneChunk() {
        byte[] data = random(4, TVIX.minSize() + 1);
        assertThat(TVIX.cut(data, 0, 0)).isZero();
        assertThat(TVIX.cut(data, 0, 1)).isEqualTo(1);
        assertThat(TVIX.cut(data, 0, TVIX.minSize())).isEqualTo(TVIX.minSize());
        assertThat(TVIX.cut(data, 0, TVIX.minSize() + 1)).isEqualTo(TVIX.minSize() + 1);
    }

    @Test
    void invalidArgumentsAreRejected() {
        byte[] data = new byte[10];
        assertThatThrownBy(() -> TVIX.cut(data, 5, 6)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> TVIX.cut(MemorySegment.ofArray(data), 0, 11)).isInstanceOf(IndexOutOfBoundsException.class);
        assertThatThrownBy(() -> new FastCdc(256, 128, 512)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("min <= avg <= max");
        assertThatThrownBy(() -> new FastCdc(16, 256, 1024)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("out of range");
        assertThatThrownBy(() -> new FastCdc(1 << 20, 8 << 20, 16 << 20)).isInstanceOf(IllegalArgumentException.class);
        assertThat(new FastCdc(64, 256, 1024)).hasToString("FastCDC 2020 64/256/1024");
    }
}

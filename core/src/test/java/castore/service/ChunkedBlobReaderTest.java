package castore.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.hash.Blake3;
import castore.model.B3Digest;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Chunks that occur more than once in a blob are loaded once and copied from memory elsewhere. */
class ChunkedBlobReaderTest {
    /** A reader over chunks held in a map, counting loads per index and the repeats it was told of. */
    private static final class CountingReader extends ChunkedBlobReader {
        final Map<B3Digest, byte[]> store;
        final Map<Integer, AtomicInteger> loads = new HashMap<>();
        final List<Integer> repeatsServed = new ArrayList<>();
        volatile boolean refuseRepeats;

        CountingReader(List<ChunkMeta> chunks, Map<B3Digest, byte[]> store) {
            super(chunks);
            this.store = store;
        }

        @Override
        protected synchronized byte[] chunk(int index) {
            loads.computeIfAbsent(index, i -> new AtomicInteger()).incrementAndGet();
            return store.get(chunks().get(index).digest());
        }

        @Override
        protected synchronized void servingRepeat(int index, byte[] data) throws IOException {
            if (refuseRepeats) {
                throw new CorruptedDataException("refused at " + index);
            }
            repeatsServed.add(index);
        }

        int totalLoads() {
            return loads.values().stream().mapToInt(AtomicInteger::get).sum();
        }
    }

    private final Map<B3Digest, byte[]> store = new HashMap<>();

    /** A chunk of {@code size} random bytes from {@code seed}, stored. */
    private ChunkMeta chunk(long seed, int size) {
        byte[] data = new byte[size];
        new SplittableRandom(seed).nextBytes(data);
        B3Digest d = Blake3.digest(data);
        store.put(d, data);
        return new ChunkMeta(d, size);
    }

    private byte[] bytesOf(List<ChunkMeta> chunks) {
        var out = new java.io.ByteArrayOutputStream();
        chunks.forEach(c -> out.writeBytes(store.get(c.digest())));
        return out.toByteArray();
    }

    private static byte[] readAll(ChunkedBlobReader reader, int step) throws IOException {
        ByteBuffer all = ByteBuffer.allocate((int) reader.size());
        while (all.hasRemaining()) {
            int n = reader.read(all.position(), all.slice().limit(Math.min(step, all.remaining())));
            all.position(all.position() + n);
        }
        return all.array();
    }

    @Test
    void aChunkOfNoBytesInTheListIsAnErrorNotAnEndlessLoop() {
        // Only a forged list holds one (every backend's list parsing refuses or skips them), but a
        // read that found it made no progress and spun forever, a hung FUSE request.
        ChunkMeta a = chunk(1, 1000);
        ChunkMeta empty = chunk(2, 0);
        ChunkMeta b = chunk(3, 1000);
        for (List<ChunkMeta> list : List.of(List.of(a, empty, b), List.of(empty, a), List.of(a, empty, empty, b))) {
            var reader = new CountingReader(list, store);
            org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(10), () -> {
                ByteBuffer dst = ByteBuffer.allocate(2000);
                try {
                    int n = 0;
                    for (long position = 0; position < reader.size() && n >= 0; position += n) {
                        n = reader.read(position, dst.clear());
                    }
                } catch (CorruptedDataException expected) {
                    assertThat(expected).hasMessageContaining("no bytes");
                    return;
                }
                // A list whose empty chunk the search never lands on reads whole: fine too.
            });
        }
    }

    @Test
    void aChunkOfAnotherLengthThanItsPlaceIsRefusedNotCopied() throws IOException {
        // One digest names one content, so one length: a list that gives a repeated chunk two
        // sizes (which still add up) is wrong, and its bytes would land at the wrong places.
        ChunkMeta a = chunk(3, 5000);
        List<ChunkMeta> lie = List.of(a, new ChunkMeta(a.digest(), 5005), new ChunkMeta(a.digest(), 4995));
        CountingReader reader = new CountingReader(lie, store);
        ByteBuffer first = ByteBuffer.allocate(10);
        assertThat(reader.read(0, first)).isEqualTo(10);
        for (long at : new long[] {5000, 10_005, 10_010, 14_999}) {
            assertThatThrownBy(() -> reader.read(at, ByteBuffer.allocate(10))).as("at %d", at)
                    .isInstanceOf(CorruptedDataException.class).hasMessageContaining("listed as");
        }
        // Without repeats too: whatever supplies a chunk, its length is checked before a byte is copied.
        CountingReader shifted = new CountingReader(List.of(new ChunkMeta(a.digest(), 4990), chunk(4, 6010)), store);
        assertThatThrownBy(() -> shifted.read(0, ByteBuffer.allocate(10))).isInstanceOf(CorruptedDataException.class);
    }

    @Test
    void aChunkThatRepeatsIsLoadedOnceAndEveryOtherPlaceIsServedFromMemory() throws IOException {
        ChunkMeta a = chunk(1, 5000);
        ChunkMeta b = chunk(2, 7000);
        ChunkMeta c = chunk(3, 3000);
        List<ChunkMeta> list = List.of(a, b, a, a, c, a, b, a);
        var reader = new CountingReader(list, store);
        assertThat(reader.distinctBytes()).isEqualTo(5000 + 7000 + 3000);
        assertThat(readAll(reader, 1000)).isEqualTo(bytesOf(list));
        assertThat(reader.loads.get(0)).hasValue(1);
        assertThat(reader.loads.get(1)).hasValue(1);
        assertThat(reader.loads.get(4)).hasValue(3); // c occurs once: the subclass's own path, once per read here
        assertThat(reader.totalLoads()).isEqualTo(5);
        // The subclass sees each place served from the copy (also the first place, read again).
        assertThat(reader.repeatsServed).contains(2, 3, 5, 6, 7).doesNotContain(4);
        assertThat(reader.holdsRepeat(7)).isTrue();
        assertThat(reader.holdsRepeat(4)).isFalse();
        // The chunk a filesystem may push to the kernel is the one at the place read, with its bytes.
        reader.read(5000 + 7000 + 10, ByteBuffer.allocate(10));
        var lent = new java.util.ArrayList<Long>();
        assertThat(reader.lendRecentChunk(5000 + 7000 + 10, (start, data, length) -> {
            lent.add(start);
            assertThat(java.util.Arrays.copyOf(data, length)).isEqualTo(store.get(a.digest()));
        })).isTrue();
        assertThat(lent).containsExactly(5000L + 7000);
        assertThat(reader.lendRecentChunk(5000 + 7000 + 5000, (start, data, length) -> lent.add(start)))
                .as("a position outside that chunk").isFalse();
    }

    @Test
    void onlyTheLastFewRepeatedChunksAreKept() throws IOException {
        int distinct = ChunkedBlobReader.REPEATS_KEPT + 4;
        List<ChunkMeta> pattern = new ArrayList<>();
        for (int i = 0; i < distinct; i++) {
            pattern.add(chunk(10 + i, 1000 + i));
        }
        List<ChunkMeta> list = new ArrayList<>(pattern);
        list.addAll(pattern); // each occurs twice, further apart than the kept ones reach
        var reader = new CountingReader(list, store);
        assertThat(readAll(reader, 4096)).isEqualTo(bytesOf(list));
        assertThat(reader.totalLoads()).isEqualTo(2 * distinct); // evicted before their second place: loaded again
        var near = new ArrayList<ChunkMeta>();
        for (int i = 0; i < ChunkedBlobReader.REPEATS_KEPT; i++) {
            near.add(pattern.get(i));
        }
        var twice = new ArrayList<>(near);
        twice.addAll(near);
        var reader2 = new CountingReader(twice, store);
        assertThat(readAll(reader2, 4096)).isEqualTo(bytesOf(twice));
        assertThat(reader2.totalLoads()).isEqualTo(ChunkedBlobReader.REPEATS_KEPT);
    }

    @Test
    void theSubclassCanRefuseAPlaceServedFromACopy() throws IOException {
        ChunkMeta a = chunk(4, 4000);
        ChunkMeta b = chunk(5, 4000);
        var reader = new CountingReader(List.of(a, b, a), store);
        reader.read(0, ByteBuffer.allocate(4000));
        reader.refuseRepeats = true;
        assertThatThrownBy(() -> reader.read(8000, ByteBuffer.allocate(100)))
                .isInstanceOf(CorruptedDataException.class).hasMessageContaining("refused at 2");
        assertThat(reader.read(4000, ByteBuffer.allocate(4000))).isEqualTo(4000);
    }

    @Test
    void aBlobWithoutRepeatsKeepsNothingAside() throws IOException {
        List<ChunkMeta> list = List.of(chunk(6, 100), chunk(7, 200), chunk(8, 300));
        var reader = new CountingReader(list, store);
        assertThat(reader.distinctBytes()).isEqualTo(reader.size());
        assertThat(readAll(reader, 50)).isEqualTo(bytesOf(list));
        assertThat(reader.repeatsServed).isEmpty();
        assertThat(reader.holdsRepeat(0)).isFalse();
    }
}

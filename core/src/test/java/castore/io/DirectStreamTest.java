package castore.io;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** {@link DirectStreams} over an in-memory blob: the ring, its loads and its failures, without a disk. */
class DirectStreamTest {
    private static final int CHUNK = 10_000;
    private static final int COUNT = 40;
    private final byte[] blob = new byte[CHUNK * COUNT];
    private final DirectReads reads = new DirectReads("test-direct-read");
    private final ConcurrentHashMap<Integer, AtomicInteger> loads = new ConcurrentHashMap<>();

    DirectStreamTest() {
        new Random(7).nextBytes(blob);
    }

    @AfterEach
    void stop() {
        reads.shutdown();
    }

    /** Copies chunk {@code index} of the blob into the buffer at an unaligned place, as a pack entry would sit. */
    private MemorySegment load(int index, MemorySegment buffer) {
        loads.computeIfAbsent(index, i -> new AtomicInteger()).incrementAndGet();
        MemorySegment.copy(MemorySegment.ofArray(blob), (long) index * CHUNK, buffer, 123, CHUNK);
        return buffer.asSlice(123, CHUNK);
    }

    private void readSequentially(DirectStreams streams, int from, int to) throws IOException {
        readSequentially(streams, from, to, null);
    }

    /**
     * Reads chunks {@code [from, to)} 4000 bytes at a time through the streams. With {@code
     * declined} (readers racing for the streams), a read the streams decline (-1 from start: the
     * stream it was given was re-pointed by another reader meanwhile, as callers allow) is
     * counted and read as its caller would, elsewhere; without it, every read must be served.
     */
    private void readSequentially(DirectStreams streams, int from, int to, AtomicInteger declined) throws IOException {
        for (int index = from; index < to; index++) {
            for (int within = 0; within < CHUNK; within += 4000) {
                ByteBuffer dst = ByteBuffer.allocate(4000);
                int n = streams.copy(index, within, dst);
                if (n < 0) {
                    n = streams.start(index, within, dst);
                }
                if (n < 0 && declined != null) {
                    declined.incrementAndGet();
                    n = Math.min(4000, CHUNK - within);
                    dst.put(blob, index * CHUNK + within, n);
                }
                assertThat(n).isEqualTo(Math.min(4000, CHUNK - within));
                int at = index * CHUNK + within;
                assertThat(Arrays.equals(dst.array(), 0, n, blob, at, at + n)).as("chunk %d + %d", index, within).isTrue();
            }
        }
    }

    @Test
    void aSequentialReaderGetsExactBytesWithEachChunkLoadedOnceAhead() throws IOException {
        try (DirectStreams streams = new DirectStreams(reads, 4, COUNT, CHUNK, this::load)) {
            readSequentially(streams, 0, COUNT);
            assertThat(streams.active()).isTrue();
            assertThat(loads).hasSize(COUNT);
            assertThat(loads.values()).allMatch(n -> n.get() == 1);
            assertThat(reads.held()).isPositive();
        }
        assertThat(reads.held()).isZero();
    }

    @Test
    void streamsLeftAloneGiveTheirBuffersBackWhenTheThreadsEndAndReadersGoOnLater() throws Exception {
        DirectReads quick = new DirectReads("test-idle-read", 800);
        try (DirectStreams streams = new DirectStreams(quick, 4, COUNT, CHUNK, this::load)) {
            readSequentially(streams, 0, COUNT / 2);
            assertThat(quick.held()).as("the reader is still open").isPositive();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (quick.held() > 0 && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            assertThat(quick.held()).as("given back once the threads ended").isZero();
            readSequentially(streams, COUNT / 2, COUNT); // a new stream
            assertThat(quick.held()).isPositive();
            // The first stream had read chunk COUNT / 2 ahead; with its buffers gone it was loaded again.
            assertThat(loads.get(COUNT / 2).get()).isEqualTo(2);
        } finally {
            quick.shutdown();
        }
        assertThat(quick.held()).isZero();
    }

    @Test
    void aFailedLoadLeavesTheChunkToTheCallerAndIsTriedAgainLater() throws IOException {
        AtomicInteger failuresLeft = new AtomicInteger(2);
        DirectStream.Loader flaky = (index, buffer) -> {
            if (index == 12 && failuresLeft.getAndDecrement() > 0) {
                if (failuresLeft.get() == 1) {
                    throw new IOException("disk says no");
                }
                throw new StackOverflowError("anything thrown"); // must not leave the chunk loading for good
            }
            return load(index, buffer);
        };
        try (DirectStreams streams = new DirectStreams(reads, 4, COUNT, CHUNK, flaky)) {
            readSequentially(streams, 0, 12);
            ByteBuffer dst = ByteBuffer.allocate(10);
            assertThat(streams.copy(12, 0, dst)).as("the read-ahead failed: the caller's own path reads it").isEqualTo(-1);
            assertThat(streams.start(12, 0, dst)).as("loaded again on the reader's thread, failing again").isEqualTo(-1);
            assertThat(dst.position()).isZero();
            readSequentially(streams, 12, COUNT);
            assertThat(loads.get(12).get()).isEqualTo(1);
        }
        assertThat(reads.held()).isZero();
    }

    @Test
    void aChunkTheLoaderDoesNotHaveIsLeftToTheCaller() throws IOException {
        try (DirectStreams streams = new DirectStreams(reads, 4, COUNT, CHUNK, (index, buffer) -> index == 5 ? null : load(index, buffer))) {
            readSequentially(streams, 0, 5);
            ByteBuffer dst = ByteBuffer.allocate(100);
            assertThat(streams.copy(5, 0, dst)).isEqualTo(-1);
            assertThat(streams.start(5, 0, dst)).isEqualTo(-1);
            assertThat(dst.position()).isZero();
            readSequentially(streams, 6, COUNT);
        }
    }

    /**
     * A loader that reads spans: as many chunks as fit in the buffer after an unaligned start,
     * laid out back to back as a pack holds them; chunk {@code bad} fails its check.
     */
    private final class SpanLoader implements DirectStream.Loader {
        final int bad;
        final long buffer;
        final AtomicInteger spans = new AtomicInteger();
        final AtomicInteger longest = new AtomicInteger();

        SpanLoader(int bad, long buffer) {
            this.bad = bad;
            this.buffer = buffer;
        }

        @Override
        public MemorySegment load(int index, MemorySegment into) throws IOException {
            MemorySegment[] one = new MemorySegment[1];
            return loadSpan(index, 1, into, one) == 1 ? one[0] : null;
        }

        @Override
        public long spanBuffer() {
            return buffer;
        }

        @Override
        public int span(int index, int max, long bufferBytes) {
            return (int) Math.min(max, (bufferBytes - 123) / CHUNK);
        }

        @Override
        public int loadSpan(int index, int count, MemorySegment into, MemorySegment[] payloads) throws IOException {
            spans.incrementAndGet();
            longest.accumulateAndGet(count, Math::max);
            MemorySegment.copy(MemorySegment.ofArray(blob), (long) index * CHUNK, into, 123, (long) count * CHUNK);
            for (int k = 0; k < count; k++) {
                if (index + k == bad) {
                    if (k == 0) {
                        throw new IOException("chunk " + bad + " is corrupted");
                    }
                    return k;
                }
                loads.computeIfAbsent(index + k, i -> new AtomicInteger()).incrementAndGet();
                payloads[k] = into.asSlice(123 + (long) k * CHUNK, CHUNK);
            }
            return count;
        }
    }

    @Test
    void aLoaderThatReadsSpansServesExactBytesWithFewerLoadsEachChunkOnce() throws IOException {
        SpanLoader spans = new SpanLoader(-1, 4L * CHUNK + 4096);
        try (DirectStreams streams = new DirectStreams(reads, 4, COUNT, CHUNK, spans)) {
            readSequentially(streams, 0, COUNT);
            assertThat(loads).hasSize(COUNT);
            assertThat(loads.values()).allMatch(n -> n.get() == 1);
            assertThat(spans.longest.get()).as("spans of up to 4 chunks").isEqualTo(4);
            assertThat(spans.spans.get()).as("loads for %d chunks", COUNT).isLessThanOrEqualTo(COUNT / 2);
            assertThat(reads.held()).as("the buffers are as large as the loader asked")
                    .isEqualTo(DirectStream.footprint(CHUNK, spans)).isGreaterThan(DirectStream.footprint(CHUNK, this::load));
        }
        assertThat(reads.held()).isZero();
    }

    @Test
    void spansGrowFromTheFirstToTheWholeBufferWhichIsAlignedToHugePages() throws IOException {
        int chunk = 200_000;
        int count = 60;
        byte[] big = new byte[chunk * count];
        new Random(11).nextBytes(big);
        var spanLengths = new java.util.concurrent.ConcurrentSkipListMap<Integer, Integer>();
        var unaligned = new AtomicInteger();
        DirectStream.Loader loader = new DirectStream.Loader() {
            @Override
            public MemorySegment load(int index, MemorySegment into) {
                MemorySegment[] one = new MemorySegment[1];
                loadSpan(index, 1, into, one);
                return one[0];
            }

            @Override
            public long spanBuffer() {
                return DirectStream.SPAN_BUFFER;
            }

            @Override
            public int span(int index, int max, long bufferBytes) {
                return (int) Math.min(max, bufferBytes / chunk);
            }

            @Override
            public int loadSpan(int index, int n, MemorySegment into, MemorySegment[] payloads) {
                spanLengths.put(index, n);
                if (into.address() % Libc.HUGE_PAGE != 0) {
                    unaligned.incrementAndGet();
                }
                loads.computeIfAbsent(index, i -> new AtomicInteger()).addAndGet(n);
                MemorySegment.copy(MemorySegment.ofArray(big), (long) index * chunk, into, 0, (long) n * chunk);
                for (int k = 0; k < n; k++) {
                    payloads[k] = into.asSlice((long) k * chunk, chunk);
                }
                return n;
            }
        };
        try (DirectStreams streams = new DirectStreams(reads, 4, count, chunk, loader)) {
            for (int index = 0; index < count; index++) {
                ByteBuffer dst = ByteBuffer.allocate(chunk);
                int n = streams.copy(index, 0, dst);
                if (n < 0) {
                    n = streams.start(index, 0, dst);
                }
                assertThat(n).isEqualTo(chunk);
                assertThat(Arrays.equals(dst.array(), 0, chunk, big, index * chunk, (index + 1) * chunk)).as("chunk %d", index).isTrue();
            }
        }
        int whole = (int) (DirectStream.SPAN_BUFFER / chunk);
        assertThat(spanLengths.headMap(36)).as("the chunk asked for alone, then 1, 2 and 4 MiB")
                .containsExactly(Map.entry(0, 1), Map.entry(1, 5), Map.entry(6, 10), Map.entry(16, whole));
        assertThat(spanLengths.values().stream().mapToInt(Integer::intValue).sum()).as("each chunk once").isEqualTo(count);
        assertThat(unaligned.get()).as("span buffers start on a 2 MiB boundary").isZero();
        assertThat(reads.held()).isZero();
    }

    @Test
    void spansServeExactBytesToReadersThatJumpBackAndToSeveralAtOnce() throws Exception {
        SpanLoader spans = new SpanLoader(-1, 3L * CHUNK + 4096);
        try (DirectStreams streams = new DirectStreams(reads, 4, COUNT, CHUNK, spans)) {
            readSequentially(streams, 0, 20);
            readSequentially(streams, 5, 15); // back over chunks whose buffers went to later spans
            readSequentially(streams, 30, COUNT);
            readSequentially(streams, 2, 12);
            var pool = java.util.concurrent.Executors.newFixedThreadPool(3);
            AtomicInteger declined = new AtomicInteger();
            int reads = 0;
            try {
                var readers = new java.util.ArrayList<java.util.concurrent.Future<?>>();
                for (int from : new int[] {0, 13, 26}) {
                    int to = from + 14 > COUNT ? COUNT : from + 14;
                    reads += (to - from) * ((CHUNK + 3999) / 4000);
                    readers.add(pool.submit(() -> {
                        readSequentially(streams, from, to, declined);
                        return null;
                    }));
                }
                for (var r : readers) {
                    r.get(30, TimeUnit.SECONDS);
                }
            } finally {
                pool.shutdownNow();
            }
            // Readers 0-13 and 13-26 meet at chunk 13 and may take one stream from each other a time or two.
            assertThat(declined.get()).as("reads the streams declined, of %d", reads).isLessThan(reads / 10);
            assertThat(spans.longest.get()).isEqualTo(3);
        }
        assertThat(reads.held()).isZero();
    }

    @Test
    void aSpanEndsBeforeAChunkThatFailsItsCheckWhichIsLeftToTheCaller() throws IOException {
        SpanLoader spans = new SpanLoader(9, 4L * CHUNK + 4096);
        try (DirectStreams streams = new DirectStreams(reads, 4, COUNT, CHUNK, spans)) {
            readSequentially(streams, 0, 9);
            ByteBuffer dst = ByteBuffer.allocate(10);
            assertThat(streams.copy(9, 0, dst)).as("not held: the span ended before it").isEqualTo(-1);
            assertThat(streams.start(9, 0, dst)).as("its own load fails too").isEqualTo(-1);
            assertThat(dst.position()).isZero();
            readSequentially(streams, 10, COUNT);
            assertThat(loads).doesNotContainKey(9);
            assertThat(loads.values()).allMatch(n -> n.get() == 1);
        }
        assertThat(reads.held()).isZero();
    }

    @Test
    void closeWaitsForLoadsUnderWayAndTheCapRefusesStreamsBeyondIt() throws Exception {
        CountDownLatch held = new CountDownLatch(1);
        DirectStream.Loader slow = (index, buffer) -> {
            if (index > 0) {
                try {
                    held.await(10, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            return load(index, buffer);
        };
        DirectStreams streams = new DirectStreams(reads, 4, COUNT, CHUNK, slow);
        ByteBuffer dst = ByteBuffer.allocate(CHUNK);
        assertThat(streams.start(0, 0, dst)).isEqualTo(CHUNK);
        Thread closer = Thread.ofPlatform().start(streams::close);
        closer.join(300);
        assertThat(closer.isAlive()).as("close waits for the loads of chunks 1.. under way").isTrue();
        held.countDown();
        closer.join(10_000);
        assertThat(closer.isAlive()).isFalse();
        assertThat(reads.held()).isZero();

        assertThat(reads.reserve(DirectReads.MAX_BUFFERS)).isTrue();
        try (DirectStreams refused = new DirectStreams(reads, 4, COUNT, CHUNK, this::load)) {
            assertThat(refused.start(0, 0, ByteBuffer.allocate(10))).isEqualTo(-1);
            assertThat(refused.active()).isFalse();
        } finally {
            reads.release(DirectReads.MAX_BUFFERS);
        }
    }

    @Test
    void aReaderRefusedByTheCapTakesTheRoomOfAStreamLeftAlone() throws Exception {
        long one = DirectStream.footprint(CHUNK, this::load);
        assertThat(reads.reserve(DirectReads.MAX_BUFFERS - one)).isTrue();
        try (DirectStreams first = new DirectStreams(reads, 4, COUNT, CHUNK, this::load);
                DirectStreams second = new DirectStreams(reads, 4, COUNT, CHUNK, this::load)) {
            readSequentially(first, 0, COUNT); // to the end: its stream is left alone now
            assertThat(second.start(0, 0, ByteBuffer.allocate(10))).as("the first reader's stream is still fresh").isEqualTo(-1);
            Thread.sleep(DirectReads.IDLE_NANOS / 1_000_000 + 100);
            readSequentially(second, 0, COUNT);
            assertThat(second.active()).isTrue();
            assertThat(reads.held()).isEqualTo(DirectReads.MAX_BUFFERS);
            // The first reader's stream is gone; reading again, it finds no room and is served from elsewhere.
            ByteBuffer dst = ByteBuffer.allocate(10);
            assertThat(first.copy(3, 0, dst)).isEqualTo(-1);
            assertThat(first.start(3, 0, dst)).isEqualTo(-1);
        } finally {
            reads.release(DirectReads.MAX_BUFFERS - one);
        }
        assertThat(reads.held()).isZero();
    }

    @Test
    void aSpanGoesOnOnlyRightBehindItAndWithinTheBufferOnceRoundedOut() {
        int a = DirectStream.ALIGN;
        // A span from 100 to 5000 in a buffer of 3 pages: the next entry 40 bytes behind it.
        assertThat(DirectStream.continuesSpan(100, 5000, 5040, 3 * a - 5040, 3 * a)).as("ends at the buffer's end").isTrue();
        assertThat(DirectStream.continuesSpan(100, 5000, 5040, 3 * a - 5040 + 1, 3 * a)).as("one byte more: a fourth page").isFalse();
        assertThat(DirectStream.continuesSpan(a + 100, 5000, 5040, 3 * a - 5040 + 1, 3 * a))
                .as("a start in the second page reads from there").isTrue();
        assertThat(DirectStream.continuesSpan(100, 5000, 5000 + a, 10, 8 * a)).as("a page apart").isTrue();
        assertThat(DirectStream.continuesSpan(100, 5000, 5001 + a, 10, 8 * a)).as("further apart").isFalse();
        assertThat(DirectStream.continuesSpan(100, 5000, 4999, 10, 8 * a)).as("overlapping: the same entry again").isFalse();
    }

    @Test
    void readAlignedRoundsTheRangeOutAndRefusesAShortFile() throws IOException {
        try (var arena = java.lang.foreign.Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(3 * DirectStream.ALIGN, DirectStream.ALIGN);
            long[] asked = new long[2];
            MemorySegment slice = DirectStream.readAligned((dst, offset) -> {
                asked[0] = offset;
                asked[1] = dst.byteSize();
                dst.fill((byte) 7);
                return dst.byteSize();
            }, 5000, 4000, buffer);
            assertThat(asked).containsExactly(4096, 8192);
            assertThat(slice.byteSize()).isEqualTo(4000);
            assertThat(slice.address() - buffer.address()).isEqualTo(5000 - 4096);
            assertThat(DirectStream.readAligned((dst, offset) -> -1, 5000, 4000, buffer)).isNull();
            assertThatThrownBy(() -> DirectStream.readAligned((dst, offset) -> 100, 5000, 4000, buffer))
                    .isInstanceOf(IOException.class).hasMessageContaining("ends");
        }
    }
}

package castore.store.local;

import static castore.service.BlobServiceContract.assertRange;
import static castore.service.BlobServiceContract.randomBytes;
import static org.assertj.core.api.Assertions.assertThat;

import castore.model.B3Digest;
import castore.service.ChunkMeta;
import castore.service.Store;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Random reads of a long blob: their chunks go to a few buffers the reader reuses, and the chunk
 * a read used is lent after it (what a filesystem pushes to the kernel's page cache) without a
 * load reusing its buffer meanwhile.
 */
class LocalRandomReadsTest {
    @TempDir
    Path tmp;

    /** A blob of about 40 chunks, its bytes and its chunk list. */
    private record Blob(LocalStore local, Store store, B3Digest digest, byte[] data, List<ChunkMeta> chunks) implements AutoCloseable {
        long start(int index) {
            long start = 0;
            for (int i = 0; i < index; i++) {
                start += chunks.get(i).size();
            }
            return start;
        }

        LocalBlobReader open() throws IOException {
            return (LocalBlobReader) store.blobs().open(digest).orElseThrow();
        }

        @Override
        public void close() throws IOException {
            store.close();
            local.close();
        }
    }

    private Blob blob() throws IOException {
        LocalStore local = LocalStore.open(tmp.resolve("store"), LocalStore.Options.defaults());
        Store store = local.asStore();
        byte[] data = randomBytes(31, 10_000_000);
        B3Digest digest = LocalStoreTest.put(store, data);
        List<ChunkMeta> chunks = store.blobs().chunks(digest).orElseThrow();
        assertThat(chunks.size()).isGreaterThan(3 * LocalBlobReader.RANDOM_SLOTS);
        return new Blob(local, store, digest, data, chunks);
    }

    /**
     * Chunk indexes far enough apart that no read continues another (every one is random). Not
     * chunk 0 first: a reader that starts at the beginning is taken for a stream.
     */
    private static int[] scattered(int chunks, int count) {
        int[] order = new int[count];
        for (int i = 0; i < count; i++) {
            order[i] = ((i + 1) * 7) % chunks;
        }
        return order;
    }

    @Test
    void randomReadsLoadIntoAFewReusedBuffersAndTheChunkLentIsTheOneRead() throws IOException {
        try (Blob b = blob(); LocalBlobReader reader = b.open()) {
            int[] order = scattered(b.chunks().size(), 3 * b.chunks().size());
            for (int index : order) {
                long at = b.start(index) + b.chunks().get(index).size() / 3;
                assertRange(reader, b.data(), at, 4096);
                var lent = new AtomicReference<byte[]>();
                assertThat(reader.lendRecentChunk(at, (start, data, length) -> {
                    assertThat(start).isEqualTo(b.start(index));
                    lent.set(Arrays.copyOf(data, length));
                })).as("chunk %d lent", index).isTrue();
                assertThat(lent.get()).isEqualTo(Arrays.copyOfRange(b.data(), (int) b.start(index), (int) b.start(index + 1)));
            }
            assertThat(reader.randomSlotBuffersMade()).as("buffers made for %d random reads", order.length)
                    .isLessThanOrEqualTo(LocalBlobReader.RANDOM_SLOTS);
            // A chunk whose buffer went to later loads is not lent any more.
            long first = b.start(order[0]);
            assertThat(reader.lendRecentChunk(first, (start, data, length) -> { })).isFalse();
        }
    }

    @Test
    void aLoadWaitsForTheLoanOfItsBufferToEnd() throws Exception {
        try (Blob b = blob(); LocalBlobReader reader = b.open()) {
            int[] order = scattered(b.chunks().size(), LocalBlobReader.RANDOM_SLOTS + 1);
            int lentIndex = order[0];
            long at = b.start(lentIndex) + 100;
            assertRange(reader, b.data(), at, 4096);
            byte[] expected = Arrays.copyOfRange(b.data(), (int) b.start(lentIndex), (int) b.start(lentIndex + 1));
            var lending = new CountDownLatch(1);
            var loanEnded = new AtomicLong();
            var loadsEnded = new AtomicLong();
            var failure = new AtomicReference<Throwable>();
            // While the chunk is lent, another thread reads as many other chunks as there are
            // buffers: its last load needs the lent one's buffer and must wait for the loan.
            Thread loads = Thread.ofPlatform().start(() -> {
                try {
                    assertThat(lending.await(10, TimeUnit.SECONDS)).isTrue();
                    for (int k = 1; k < order.length; k++) {
                        assertRange(reader, b.data(), b.start(order[k]) + 100, 4096);
                    }
                    loadsEnded.set(System.nanoTime());
                } catch (Throwable t) {
                    failure.set(t);
                }
            });
            assertThat(reader.lendRecentChunk(at, (start, data, length) -> {
                lending.countDown();
                try {
                    Thread.sleep(300);
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
                assertThat(Arrays.copyOf(data, length)).as("the lent bytes while other loads wait").isEqualTo(expected);
                loanEnded.set(System.nanoTime());
            })).isTrue();
            loads.join(TimeUnit.SECONDS.toMillis(20));
            assertThat(failure.get()).isNull();
            assertThat(loadsEnded.get()).as("the loads ended after the loan").isGreaterThan(loanEnded.get());
            assertThat(reader.randomSlotBuffersMade()).isEqualTo(LocalBlobReader.RANDOM_SLOTS);
        }
    }
}

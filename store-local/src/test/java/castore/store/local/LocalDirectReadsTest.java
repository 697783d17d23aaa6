package castore.store.local;

import static castore.service.BlobServiceContract.randomBytes;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.io.DirectReads;
import castore.model.B3Digest;
import castore.model.InvalidDataException;
import castore.service.ChunkMeta;
import castore.service.CorruptedDataException;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Sequential readers of large blobs in published packs read ahead with O_DIRECT
 * ({@link castore.io.DirectStream}): exact bytes, corrupted chunks refused, buffers given back. The store
 * lives under the test's temporary directory, which must be on a file system with O_DIRECT (the
 * first test checks that, so a {@code java.io.tmpdir} without it shows as a failure, not as a pass
 * through the fallback).
 */
class LocalDirectReadsTest {
    private static final int MiB = 1 << 20;

    @TempDir
    Path tmp;

    private Path dir() {
        return tmp.resolve("store");
    }

    private LocalStore open() throws IOException {
        return LocalStore.open(dir(), LocalStore.Options.defaults().withDirectReads(true));
    }

    /** Stores {@code data} and publishes it (closing the store commits), so its chunks are in a pack file. */
    private B3Digest publish(byte[] data) throws IOException {
        try (LocalStore local = open(); Store store = local.asStore()) {
            return LocalStoreTest.put(store, data);
        }
    }

    private static void readSequentially(LocalBlobReader reader, byte[] data, int from, int to, int size) throws IOException {
        ByteBuffer dst = ByteBuffer.allocate(size);
        for (int at = from; at < to; at += size) {
            dst.clear();
            int n = reader.read(at, dst);
            assertThat(n).isEqualTo(Math.min(size, data.length - at));
            assertThat(Arrays.equals(dst.array(), 0, n, data, at, at + n)).as("bytes at %d", at).isTrue();
        }
    }

    @Test
    void aSequentialReaderOfAPublishedBlobReadsAheadWithODirectAndGetsExactBytes() throws IOException {
        byte[] data = randomBytes(21, 24 * MiB + 1234);
        B3Digest d = publish(data);
        try (LocalStore local = open(); Store store = local.asStore()) {
            DirectReads reads = local.packStore().directReads();
            assertThat(reads).as("direct reads are on").isNotNull();
            int chunkCount = store.blobs().chunks(d).orElseThrow().size();
            try (var reader = (LocalBlobReader) store.blobs().open(d).orElseThrow()) {
                readSequentially(reader, data, 0, data.length, 128 * 1024);
                assertThat(reader.hasDirectStreams()).isTrue();
                // The first chunks are read before the stream is recognised; the rest come from the disk.
                assertThat(reader.loadedChunks()).isLessThanOrEqualTo(2);
                assertThat(reads.direct.sum()).as("chunks read with O_DIRECT (tmpdir %s)", tmp)
                        .isGreaterThanOrEqualTo(chunkCount - 2);
                assertThat(reads.buffered.sum()).isZero();
                // The chunks lie one after another in the pack: most reads take several (spans of
                // up to 1 MiB; TVIX chunks average 256 KiB).
                assertThat(reads.spans.sum()).as("reads of several chunks").isPositive().isLessThan(chunkCount / 2);
                assertThat(reader.announcedChunks()).as("no page-cache hints beside direct reads").isZero();
                assertThat(reads.held()).isPositive();
            }
            assertThat(reads.held()).as("buffers given back at close").isZero();
        }
    }

    @Test
    void parallelStreamsAndRandomReadersOfOneReaderGetExactBytes() throws Exception {
        byte[] data = randomBytes(22, 32 * MiB);
        B3Digest d = publish(data);
        try (LocalStore local = open(); Store store = local.asStore();
                var reader = (LocalBlobReader) store.blobs().open(d).orElseThrow();
                var pool = Executors.newFixedThreadPool(6)) {
            int quarter = data.length / 4;
            List<Future<Void>> jobs = new ArrayList<>();
            for (int t = 0; t < 6; t++) {
                int thread = t;
                jobs.add(pool.submit(() -> {
                    var random = new SplittableRandom(thread);
                    int at = thread < 4 ? thread * quarter : 0;
                    for (int i = 0; i < 600; i++) {
                        if (thread >= 4) {
                            at = random.nextInt(data.length);
                        } else if (at >= (thread + 1) * quarter) {
                            break;
                        }
                        ByteBuffer dst = ByteBuffer.allocate(random.nextInt(1, 262_145));
                        int n = reader.read(at, dst);
                        assertThat(n).isEqualTo(Math.min(dst.capacity(), data.length - at));
                        assertThat(Arrays.equals(dst.array(), 0, n, data, at, at + n)).as("thread %d at %d+%d", thread, at, n).isTrue();
                        at += n;
                    }
                    return null;
                }));
            }
            for (var job : jobs) {
                job.get();
            }
            assertThat(reader.hasDirectStreams()).isTrue();
        }
    }

    @Test
    void aCorruptedChunkFailsEveryReadOfItAndOnlyThose() throws IOException {
        byte[] data = randomBytes(23, 16 * MiB);
        B3Digest d = publish(data);
        List<ChunkMeta> chunks;
        try (LocalStore local = open(); Store store = local.asStore()) {
            chunks = store.blobs().chunks(d).orElseThrow();
        }
        int bad = 20;
        ChunkMeta corrupted = chunks.get(bad);
        Location l = null;
        try (var s = Files.newDirectoryStream(dir().resolve("packs"), "*.idx")) {
            for (Path index : s) {
                l = l != null ? l : Pack.open(index).find(PackFormat.Key.of(corrupted.digest()), ObjectKind.CHUNK, corrupted.digest());
            }
        }
        assertThat(l).isNotNull();
        LocalStoreTest.flipByte(((Pack) l.source()).packPath(), l.offset() + 4097);
        int start = 0;
        for (int i = 0; i < bad; i++) {
            start += (int) chunks.get(i).size();
        }
        int badStart = start;
        int badEnd = badStart + (int) corrupted.size();
        try (LocalStore local = open(); Store store = local.asStore();
                var reader = (LocalBlobReader) store.blobs().open(d).orElseThrow()) {
            int size = 64 * 1024;
            int before = badStart / size * size;
            readSequentially(reader, data, 0, before, size);
            assertThat(reader.hasDirectStreams()).isTrue();
            for (int attempt = 0; attempt < 3; attempt++) {
                assertThatThrownBy(() -> reader.read(badStart + 10, ByteBuffer.allocate(100)))
                        .isInstanceOf(CorruptedDataException.class).hasMessageContaining(corrupted.digest().toString());
            }
            // Past it, the stream goes on with exact bytes.
            int after = (badEnd + size - 1) / size * size;
            readSequentially(reader, data, after, data.length, size);
            assertThat(local.packStore().directReads().spans.sum()).as("the chunks around it were read in spans").isPositive();
        }
    }

    @Test
    void aBlobOfOneChunkListedOverAndOverLoadsItOnceAndServesExactBytes() throws IOException {
        byte[] data = new byte[24 * MiB]; // zeros: the same 512 KiB chunk 48 times, stored once
        B3Digest d = publish(data);
        try (LocalStore local = open(); Store store = local.asStore()) {
            DirectReads reads = local.packStore().directReads();
            List<ChunkMeta> chunks = store.blobs().chunks(d).orElseThrow();
            assertThat(chunks.stream().map(ChunkMeta::digest).distinct().count()).isEqualTo(1);
            try (var reader = (LocalBlobReader) store.blobs().open(d).orElseThrow()) {
                readSequentially(reader, data, 0, data.length, 128 * 1024);
                // Read and hashed once, then copied from memory: no stream reads it 48 times.
                assertThat(reader.loadedChunks()).isEqualTo(1);
                assertThat(reader.hasDirectStreams()).isFalse();
                assertThat(reads.direct.sum()).isZero();
            }
        }
    }

    @Test
    void repeatedChunksAmongOthersAreReadOnceAndACorruptedOneFailsEveryPlaceItOccurs() throws IOException {
        // A disk image's shape: data, a long run of zeros, data, zeros, data.
        byte[] data = new byte[20 * MiB];
        byte[] head = randomBytes(25, 3 * MiB);
        System.arraycopy(head, 0, data, 0, head.length);
        byte[] middle = randomBytes(26, 2 * MiB);
        System.arraycopy(middle, 0, data, 9 * MiB, middle.length);
        byte[] tail = randomBytes(27, 2 * MiB);
        System.arraycopy(tail, 0, data, 18 * MiB, tail.length);
        B3Digest d = publish(data);
        List<ChunkMeta> chunks;
        try (LocalStore local = open(); Store store = local.asStore()) {
            chunks = store.blobs().chunks(d).orElseThrow();
            long distinct = chunks.stream().map(ChunkMeta::digest).distinct().count();
            assertThat(distinct).as("the zeros are one chunk, repeated").isLessThan(chunks.size() - 10);
            DirectReads reads = local.packStore().directReads();
            try (var reader = (LocalBlobReader) store.blobs().open(d).orElseThrow()) {
                readSequentially(reader, data, 0, data.length, 128 * 1024);
                // Every distinct chunk read from the disk once, whichever way, and none again where
                // it repeats (but for what read-ahead took before the first copy was in memory).
                assertThat(reader.loadedChunks() + reads.direct.sum() + reads.buffered.sum())
                        .isLessThanOrEqualTo(distinct + castore.io.DirectStream.AHEAD);
            }
        }
        // The zero chunk damaged on disk: each place it occurs is an error, never zeros taken on trust.
        B3Digest zeros = chunks.stream()
                .collect(java.util.stream.Collectors.groupingBy(ChunkMeta::digest, java.util.stream.Collectors.counting()))
                .entrySet().stream().max(java.util.Map.Entry.comparingByValue()).orElseThrow().getKey();
        assertThat(chunks.stream().filter(c -> c.digest().equals(zeros)).count()).as("chunks of zeros").isGreaterThan(10);
        Location l = null;
        try (var s = Files.newDirectoryStream(dir().resolve("packs"), "*.idx")) {
            for (Path index : s) {
                l = l != null ? l : Pack.open(index).find(PackFormat.Key.of(zeros), ObjectKind.CHUNK, zeros);
            }
        }
        assertThat(l).isNotNull();
        LocalStoreTest.flipByte(((Pack) l.source()).packPath(), l.offset() + 100);
        try (LocalStore local = open(); Store store = local.asStore();
                var reader = (LocalBlobReader) store.blobs().open(d).orElseThrow()) {
            long at = 0;
            for (ChunkMeta c : chunks) {
                long start = at;
                at += c.size();
                ByteBuffer dst = ByteBuffer.allocate(4096);
                if (c.digest().equals(zeros)) {
                    assertThatThrownBy(() -> reader.read(start + 10, dst))
                            .isInstanceOf(CorruptedDataException.class).hasMessageContaining(zeros.toString());
                } else {
                    int n = reader.read(start, dst);
                    assertThat(Arrays.equals(dst.array(), 0, n, data, (int) start, (int) start + n)).as("bytes at %d", start).isTrue();
                }
            }
        }
    }

    @Test
    void theFirstPlaceOfARepeatedChunkComesFromTheReadAheadLikeItsNeighbours() throws IOException {
        byte[] data = randomBytes(28, 16 * MiB);
        System.arraycopy(data, 2 * MiB, data, 10 * MiB, 2 * MiB); // 2 MiB that occur twice: chunks listed twice
        B3Digest d = publish(data);
        try (LocalStore local = open(); Store store = local.asStore()) {
            List<ChunkMeta> chunks = store.blobs().chunks(d).orElseThrow();
            long distinct = chunks.stream().map(ChunkMeta::digest).distinct().count();
            assertThat(distinct).as("chunks listed twice").isLessThan(chunks.size() - 3);
            DirectReads reads = local.packStore().directReads();
            try (var reader = (LocalBlobReader) store.blobs().open(d).orElseThrow()) {
                readSequentially(reader, data, 0, data.length, 128 * 1024);
                // Read on the reader's thread: only the chunks before the stream was recognised.
                assertThat(reader.loadedChunks()).isLessThanOrEqualTo(2);
                // Nothing read again wholesale. The second place of a repeated chunk is skipped once
                // the reader holds its copy, but the read-ahead runs up to two 4 MiB spans ahead
                // and may load it before the reader reaches the first place; and a reader that
                // finds its chunk neither held nor loading restarts the stream there, reading the
                // span in flight again. One CI run (of many) loaded 59 chunks for these 52 places,
                // 46 distinct: each place once, plus up to one span of 4 MiB (about 16 chunks at
                // the average 256 KiB) and what was in flight at the end.
                long loads = reader.loadedChunks() + reads.direct.sum() + reads.buffered.sum();
                assertThat(loads).as("loads: %d on the reader's thread, %d direct, %d buffered, for %d places, %d distinct",
                                reader.loadedChunks(), reads.direct.sum(), reads.buffered.sum(), chunks.size(), distinct)
                        .isLessThanOrEqualTo(chunks.size() + 16 + castore.io.DirectStream.AHEAD);
            }
        }
    }

    @Test
    void readsWithoutDirectStreamsWhenTurnedOffOrOverTheCap() throws IOException {
        byte[] data = randomBytes(24, 12 * MiB);
        B3Digest d = publish(data);
        try (Store store = Stores.open("local://" + dir() + "?direct-reads=false", StoreOptions.DEFAULT.withDirectReads(true))) {
            try (var reader = (LocalBlobReader) store.blobs().open(d).orElseThrow()) {
                readSequentially(reader, data, 0, data.length, 128 * 1024);
                assertThat(reader.hasDirectStreams()).isFalse();
                assertThat(reader.hasStreamSlots()).isTrue();
                assertThat(reader.announcedChunks()).isPositive();
            }
        }
        // Off unless the opener keeps the data in a page cache of its own (a mount says so), or the address asks.
        try (Store store = Stores.open("local://" + dir(), StoreOptions.DEFAULT);
                var reader = (LocalBlobReader) store.blobs().open(d).orElseThrow()) {
            readSequentially(reader, data, 0, data.length, 128 * 1024);
            assertThat(reader.hasDirectStreams()).isFalse();
        }
        for (String address : List.of("local://" + dir() + "?direct-reads=true", dir().toString())) {
            StoreOptions options = address.contains("?") ? StoreOptions.DEFAULT : StoreOptions.DEFAULT.withDirectReads(true);
            try (Store store = Stores.open(address, options);
                    var reader = (LocalBlobReader) store.blobs().open(d).orElseThrow()) {
                readSequentially(reader, data, 0, data.length, 128 * 1024);
                assertThat(reader.hasDirectStreams()).as(address).isTrue();
            }
        }
        assertThatThrownBy(() -> Stores.open("local://" + dir() + "?direct-reads=maybe", StoreOptions.DEFAULT))
                .isInstanceOf(InvalidDataException.class).hasMessageContaining("unknown parameter 'direct-reads=maybe'");

        try (LocalStore local = open(); Store store = local.asStore()) {
            DirectReads reads = local.packStore().directReads();
            assertThat(reads.reserve(DirectReads.MAX_BUFFERS)).isTrue();
            try (var reader = (LocalBlobReader) store.blobs().open(d).orElseThrow()) {
                readSequentially(reader, data, 0, data.length, 128 * 1024);
                assertThat(reader.hasDirectStreams()).as("no room under the cap").isFalse();
            } finally {
                reads.release(DirectReads.MAX_BUFFERS);
            }
            assertThat(reads.held()).isZero();
        }
    }

    @Test
    void aBlobInAPackStillBeingWrittenStreamsThroughItsWriter() throws IOException {
        byte[] data = randomBytes(25, 10 * MiB);
        try (LocalStore local = open(); Store store = local.asStore()) {
            B3Digest d = LocalStoreTest.put(store, data); // not committed: its pack is still open here
            DirectReads reads = local.packStore().directReads();
            try (var reader = (LocalBlobReader) store.blobs().open(d).orElseThrow()) {
                readSequentially(reader, data, 0, data.length, 256 * 1024);
                assertThat(reader.hasDirectStreams()).isTrue();
            }
            assertThat(reads.buffered.sum()).isPositive();
            assertThat(reads.direct.sum()).isZero();
        }
    }

    @Test
    void closingAReaderMidStreamWaitsForItsLoadsAndGivesTheBuffersBack() throws IOException {
        byte[] data = randomBytes(26, 16 * MiB);
        B3Digest d = publish(data);
        try (LocalStore local = open(); Store store = local.asStore()) {
            DirectReads reads = local.packStore().directReads();
            for (int round = 0; round < 5; round++) {
                var reader = (LocalBlobReader) store.blobs().open(d).orElseThrow();
                readSequentially(reader, data, 0, (round + 1) * 2 * MiB, 128 * 1024);
                assertThat(reader.hasDirectStreams()).isTrue();
                reader.close(); // loads ahead are under way now
                assertThat(reads.held()).isZero();
                reader.close();
            }
        }
    }
}

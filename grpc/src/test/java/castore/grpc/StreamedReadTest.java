package castore.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.grpc.proto.BlobChunk;
import castore.grpc.proto.BlobServiceGrpc;
import castore.grpc.proto.PutBlobResponse;
import castore.grpc.proto.ReadBlobRequest;
import castore.grpc.proto.StatBlobRequest;
import castore.grpc.proto.StatBlobResponse;
import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.service.BlobReader;
import castore.service.BlobService;
import castore.service.BlobWriter;
import castore.service.ChunkMeta;
import castore.service.CorruptedDataException;
import castore.service.Store;
import castore.service.Stores;
import castore.service.cache.CacheConfig;
import castore.service.cache.CachingBlobService;
import castore.service.cache.DiskCache;
import castore.service.cache.StoreCache;
import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A sequential read from a blob's start through the cache is one streamed Read of the blob
 * digest (docs/grpc.md, "Streamed reads"): against a real daemon, and against servers whose
 * streams lie, break, stall or are cut differently.
 */
@Timeout(60)
class StreamedReadTest {
    @TempDir
    Path dir;

    /**
     * A disk cache in {@code cache}; with {@code slots}, a memory tier so small that every blob
     * here counts as large: its stream's pump keeps chunks in slots whose arrays it reuses.
     */
    static CacheConfig config(Path cache, boolean slots) {
        return slots
                ? new CacheConfig(Optional.of(cache), 1L << 30, 128 << 10, CacheConfig.DEFAULT_PREFETCH_PARALLELISM,
                        CacheConfig.DEFAULT_READ_AHEAD)
                : CacheConfig.onDisk(cache, 1L << 30);
    }

    @Test
    void aSequentialReadFromTheStartIsOneReadOfTheBlob() throws Exception {
        var blobs = new ChunkingBlobService();
        Store backing = new Store(blobs, new castore.service.memory.MemoryDirectoryService(), new castore.service.memory.MemoryRootService());
        byte[] data = TestData.random(71, 6 << 20);
        try (var server = TestServer.start(TestServer.Transport.TCP, dir, backing, false);
                Store cached = StoreCache.wrap(server.client(), CacheConfig.onDisk(dir.resolve("cache"), 1L << 30))) {
            B3Digest digest = TestData.put(server.client().blobs(), data);
            int chunks = blobs.chunks(digest).orElseThrow().size();
            assertThat(chunks).isGreaterThan(8);
            var caching = (CachingBlobService) cached.blobs();
            blobs.blobOpens.set(0);
            blobs.chunkOpens.set(0);

            try (var reader = caching.open(digest).orElseThrow(); var in = reader.inputStream(0)) {
                assertThat(in.readAllBytes()).isEqualTo(data);
            }
            assertThat(caching.streams()).isEqualTo(1);
            assertThat(blobs.blobOpens).hasValue(1);
            assertThat(blobs.chunkOpens).hasValue(0);
            assertThat(caching.fetches()).isEqualTo(chunks);

            // Everything is cached (bound, on disk): a second read asks the daemon for nothing.
            assertReadAgainFromTheCacheAlone(caching, blobs, digest, data);
        }
    }

    /** After one streamed read of the blob: a second read is whole and right, and the daemon saw one Read in all. */
    private static void assertReadAgainFromTheCacheAlone(CachingBlobService caching, ChunkingBlobService blobs, B3Digest digest,
            byte[] data) throws IOException {
        try (var reader = caching.open(digest).orElseThrow(); var in = reader.inputStream(0)) {
            assertThat(in.readAllBytes()).isEqualTo(data);
        }
        assertThat(caching.streams()).isEqualTo(1);
        assertThat(blobs.blobOpens).hasValue(1);
        assertThat(blobs.chunkOpens).hasValue(0);
    }

    @Test
    void aLargeBlobStreamsThroughSlotsAndAReaderTheyHavePassedReadsItsChunkFromDisk() throws Exception {
        var blobs = new ChunkingBlobService();
        Store backing = new Store(blobs, new castore.service.memory.MemoryDirectoryService(), new castore.service.memory.MemoryRootService());
        byte[] data = TestData.random(79, 24 << 20);
        // A 1 MiB read-ahead: the pump's slots hold the last ~6 MiB of chunks it took.
        var config = new CacheConfig(Optional.of(dir.resolve("cache")), 1L << 30, 128 << 10, CacheConfig.DEFAULT_PREFETCH_PARALLELISM, 1 << 20);
        try (var server = TestServer.start(TestServer.Transport.TCP, dir, backing, false);
                Store cached = StoreCache.wrap(server.client(), config)) {
            B3Digest digest = TestData.put(server.client().blobs(), data);
            int chunks = blobs.chunks(digest).orElseThrow().size();
            var caching = (CachingBlobService) cached.blobs();
            blobs.blobOpens.set(0);
            blobs.chunkOpens.set(0);
            int step = 128 << 10;
            try (var reader = caching.open(digest).orElseThrow()) {
                for (int at = 0; at < 20 << 20; at += step) {
                    assertThat(readAt(reader, at, step)).as("at %d", at).isEqualTo(java.util.Arrays.copyOfRange(data, at, at + step));
                }
                long fromSlots = caching.pumpSlotCopies();
                assertThat(fromSlots).isGreaterThan((20 << 20) / step / 2);

                // The blob's start is long out of the slots (their arrays hold later chunks now): from disk, not fetched again.
                assertThat(readAt(reader, 0, step)).isEqualTo(java.util.Arrays.copyOf(data, step));
                assertThat(readAt(reader, 3 << 20, step)).isEqualTo(java.util.Arrays.copyOfRange(data, 3 << 20, (3 << 20) + step));
                assertThat(blobs.chunkOpens).hasValue(0);

                for (int at = 20 << 20; at < data.length; at += step) {
                    assertThat(readAt(reader, at, step)).as("at %d", at).isEqualTo(java.util.Arrays.copyOfRange(data, at, at + step));
                }
            }
            assertThat(caching.streams()).isEqualTo(1);
            assertThat(caching.fetches()).isEqualTo(chunks);
            assertThat(blobs.blobOpens).hasValue(1);
            assertThat(blobs.chunkOpens).hasValue(0);

            // All on disk and the list bound: a second read asks the daemon for nothing.
            assertReadAgainFromTheCacheAlone(caching, blobs, digest, data);
        }
    }

    @Test
    void sharedChunksComeInArraysGivenBackBeforeAndAreRight() throws Exception {
        var blobs = new ChunkingBlobService();
        Store backing = new Store(blobs, new castore.service.memory.MemoryDirectoryService(), new castore.service.memory.MemoryRootService());
        byte[] data = TestData.random(80, 24 << 20);
        try (var server = TestServer.start(TestServer.Transport.TCP, dir, backing, false)) {
            B3Digest digest = TestData.put(server.client().blobs(), data);
            List<ChunkMeta> list = blobs.chunks(digest).orElseThrow();
            var givenBack = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<byte[], Boolean>());
            int reused = 0;
            long at = 0;
            try (var stream = server.client().blobs().streamChunks(digest, list).orElseThrow()) {
                for (ChunkMeta chunk : list) {
                    byte[] array = stream.nextShared();
                    int size = (int) chunk.size();
                    assertThat(array.length).isGreaterThanOrEqualTo(size);
                    assertThat(java.util.Arrays.copyOf(array, size)).isEqualTo(java.util.Arrays.copyOfRange(data, (int) at, (int) at + size));
                    if (givenBack.remove(array)) {
                        reused++;
                    }
                    at += size;
                    array[0] ^= 1; // the caller's to use until given back: a later chunk must not see this
                    stream.recycle(array);
                    givenBack.add(array);
                }
            }
            assertThat(at).isEqualTo(data.length);
            assertThat(list.size()).isGreaterThan(60);
            // Up to 17 messages are received ahead into new arrays of their exact sizes (some too
            // small for a later message: dropped); then new ones of the largest chunk's size, and
            // from there on every message lands in an array given back.
            assertThat(reused).isGreaterThanOrEqualTo(list.size() - 40);
        }
    }

    private static byte[] readAt(BlobReader reader, long position, int length) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length);
        while (buffer.hasRemaining()) {
            int n = reader.read(position + buffer.position(), buffer);
            if (n < 0) {
                break;
            }
        }
        return java.util.Arrays.copyOf(buffer.array(), buffer.position());
    }

    @Test
    void aBlobWhoseChunksRepeatIsFetchedChunkByChunkEachDistinctChunkOnce() throws Exception {
        var blobs = new ChunkingBlobService();
        Store backing = new Store(blobs, new castore.service.memory.MemoryDirectoryService(), new castore.service.memory.MemoryRootService());
        // A disk image's shape: data, then 14 MiB of zeros (one 512 KiB chunk, 28 times), then data.
        byte[] data = new byte[16 << 20];
        System.arraycopy(TestData.random(74, 1 << 20), 0, data, 0, 1 << 20);
        System.arraycopy(TestData.random(75, 1 << 20), 0, data, 15 << 20, 1 << 20);
        try (var server = TestServer.start(TestServer.Transport.TCP, dir, backing, false);
                Store cached = StoreCache.wrap(server.client(), CacheConfig.onDisk(dir.resolve("cache"), 1L << 30))) {
            B3Digest digest = TestData.put(server.client().blobs(), data);
            List<ChunkMeta> list = blobs.chunks(digest).orElseThrow();
            Map<B3Digest, Long> distinct = new HashMap<>();
            list.forEach(c -> distinct.put(c.digest(), c.size()));
            assertThat(distinct.size()).as("distinct chunks").isLessThan(list.size() - 20);
            var caching = (CachingBlobService) cached.blobs();
            blobs.blobOpens.set(0);
            blobs.chunkOpens.set(0);

            try (var reader = caching.open(digest).orElseThrow(); var in = reader.inputStream(0)) {
                assertThat(in.readAllBytes()).isEqualTo(data);
            }
            // No stream of the blob: it would carry the zeros 28 times. Each distinct chunk once.
            assertThat(caching.streams()).isZero();
            assertThat(blobs.blobOpens).hasValue(0);
            assertThat(blobs.chunkOpens.get()).isEqualTo(distinct.size());
            assertThat(caching.fetchedBytes()).isEqualTo(distinct.values().stream().mapToLong(Long::longValue).sum());

            try (var reader = caching.open(digest).orElseThrow(); var in = reader.inputStream(0)) {
                assertThat(in.readAllBytes()).isEqualTo(data);
            }
            assertThat(blobs.chunkOpens.get()).isEqualTo(distinct.size());
        }
    }

    @ParameterizedTest(name = "slots {0}")
    @ValueSource(booleans = {false, true})
    void readersRacingTheStreamGetTheRightBytes(boolean slots) throws Exception {
        Store backing = new Store(new ChunkingBlobService(), new castore.service.memory.MemoryDirectoryService(),
                new castore.service.memory.MemoryRootService());
        byte[] data = TestData.random(72, 5 << 20);
        ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
        try (var server = TestServer.start(TestServer.Transport.UNIX, dir, backing, false);
                Store cached = StoreCache.wrap(server.client(), config(dir.resolve("cache"), slots))) {
            B3Digest digest = TestData.put(server.client().blobs(), data);
            List<Future<byte[]>> reads = new ArrayList<>();
            for (int i = 0; i < 6; i++) {
                int step = 1 << (12 + i); // different read sizes: readers overtake each other and the stream
                reads.add(pool.submit(() -> {
                    try (var reader = cached.blobs().open(digest).orElseThrow()) {
                        ByteBuffer all = ByteBuffer.allocate(data.length);
                        while (all.hasRemaining()) {
                            reader.read(all.position(), all.slice().limit(Math.min(step, all.remaining())));
                            all.position(all.position() + Math.min(step, all.remaining()));
                        }
                        return all.array();
                    }
                }));
            }
            for (Future<byte[]> read : reads) {
                assertThat(read.get()).isEqualTo(data);
            }
            if (slots) {
                assertThat(((CachingBlobService) cached.blobs()).pumpSlotCopies()).isPositive();
            }
        } finally {
            pool.shutdownNow();
        }
    }

    // ---- servers that lie, break, stall or cut the stream differently ----

    private final FakeBlobService blobs = new FakeBlobService();
    private final Map<ByteString, StatBlobResponse> stats = blobs.stats;
    private final Map<ByteString, List<ByteString>> reads = blobs.reads;

    /** A blob of {@code count} chunks of {@code size} bytes each, served chunk by chunk; returns its bytes. */
    private byte[] serve(B3Digest[] blob, long seed, int count, int size) {
        byte[] data = TestData.random(seed, count * size);
        var stat = StatBlobResponse.newBuilder();
        for (int i = 0; i < count; i++) {
            byte[] chunk = java.util.Arrays.copyOfRange(data, i * size, (i + 1) * size);
            B3Digest d = Blake3.digest(chunk);
            stat.addChunks(StatBlobResponse.ChunkMeta.newBuilder().setDigest(d.toByteString()).setSize(size));
            reads.put(d.toByteString(), List.of(ByteString.copyFrom(chunk)));
        }
        blob[0] = Blake3.digest(data);
        stats.put(blob[0].toByteString(), stat.build());
        return data;
    }

    private static List<ByteString> pieces(byte[] data, int size) {
        List<ByteString> out = new ArrayList<>();
        for (int at = 0; at < data.length; at += size) {
            out.add(ByteString.copyFrom(data, at, Math.min(size, data.length - at)));
        }
        return out;
    }

    /** A disk cache in {@code dir} over {@code inner}, which it leaves open; {@code slots} as in {@link #config}. */
    private record Cached(DiskCache disk, CachingBlobService blobs) implements AutoCloseable {
        static Cached on(Path dir, BlobService inner, boolean slots) throws IOException {
            var config = config(dir, slots);
            var disk = new DiskCache(dir, config.diskLimit());
            return new Cached(disk, new CachingBlobService(inner, disk, config));
        }

        @Override
        public void close() throws IOException {
            blobs.close();
            disk.close();
        }
    }

    /** Reads the blob from its start through a new disk cache over {@code client} (which stays open). */
    private byte[] readThroughCache(Store client, B3Digest blob, boolean slots) throws IOException {
        try (var cached = Cached.on(dir.resolve("cache-" + System.nanoTime()), client.blobs(), slots);
                var reader = cached.blobs().open(blob).orElseThrow(); var in = reader.inputStream(0)) {
            return in.readAllBytes();
        }
    }

    @ParameterizedTest(name = "slots {0}")
    @ValueSource(booleans = {false, true})
    void streamsCutIntoOtherPiecesAreReassembledAndChecked(boolean slots) throws Exception {
        B3Digest[] blob = new B3Digest[1];
        byte[] data = serve(blob, 73, 6, 10_000);
        try (var server = FakeServer.start(blobs); Store client = Stores.open(server.address(), TestServer.CLIENT_OPTIONS)) {
            reads.put(blob[0].toByteString(), pieces(data, 1000)); // a tvix server's message sizes are its own
            assertThat(readThroughCache(client, blob[0], slots)).isEqualTo(data);
            reads.put(blob[0].toByteString(), pieces(data, 25_000));
            assertThat(readThroughCache(client, blob[0], slots)).isEqualTo(data);
            assertThat(blobs.chunkReads).hasValue(0);
        }
    }

    @ParameterizedTest(name = "slots {0}")
    @ValueSource(booleans = {false, true})
    void aStreamOfWrongBytesFailsTheReadAndNothingWrongIsKept(boolean slots) throws Exception {
        B3Digest[] blob = new B3Digest[1];
        byte[] data = serve(blob, 74, 6, 10_000);
        byte[] wrong = data.clone();
        wrong[35_000] ^= 1; // in chunk 3
        try (var server = FakeServer.start(blobs); Store client = Stores.open(server.address(), TestServer.CLIENT_OPTIONS)) {
            reads.put(blob[0].toByteString(), pieces(wrong, 10_000));
            ByteString chunk3 = stats.get(blob[0].toByteString()).getChunks(3).getDigest();
            List<ByteString> honest3 = reads.put(chunk3, List.of(ByteString.copyFrom(wrong, 30_000, 10_000))); // lies there too
            try (var cached = Cached.on(dir.resolve("cache"), client.blobs(), slots); var reader = cached.blobs().open(blob[0]).orElseThrow()) {
                ByteBuffer start = ByteBuffer.allocate(30_000); // chunks 0-2 are right and may be used
                assertThat(reader.read(0, start)).isEqualTo(30_000);
                assertThat(start.array()).isEqualTo(java.util.Arrays.copyOf(data, 30_000));
                assertThatThrownBy(() -> reader.read(30_000, ByteBuffer.allocate(30_000))).isInstanceOf(CorruptedDataException.class)
                        .hasMessageContaining("does not match its digest");
            }
            // The server now sends the right bytes: a cache on the same directory (what the
            // first one kept, no fetch of it still in flight) reads the blob whole.
            reads.put(blob[0].toByteString(), pieces(data, 10_000));
            reads.put(chunk3, honest3);
            try (var cached = Cached.on(dir.resolve("cache"), client.blobs(), slots);
                    var reader = cached.blobs().open(blob[0]).orElseThrow(); var in = reader.inputStream(0)) {
                assertThat(in.readAllBytes()).isEqualTo(data);
                assertThat(cached.blobs().fetches()).isLessThanOrEqualTo(3); // chunks 0-2 came from disk
            }
        }
    }

    @ParameterizedTest(name = "slots {0}")
    @ValueSource(booleans = {false, true})
    void aStreamCutShortOrOfOtherChunksIsAnError(boolean slots) throws Exception {
        B3Digest[] blob = new B3Digest[1];
        byte[] data = serve(blob, 75, 6, 10_000);
        try (var server = FakeServer.start(blobs); Store client = Stores.open(server.address(), TestServer.CLIENT_OPTIONS)) {
            reads.put(blob[0].toByteString(), pieces(java.util.Arrays.copyOf(data, 45_000), 10_000));
            List<ChunkMeta> list = client.blobs().chunks(blob[0]).orElseThrow();
            try (var stream = client.blobs().streamChunks(blob[0], list).orElseThrow()) {
                for (int i = 0; i < 4; i++) {
                    assertThat(stream.next()).isEqualTo(java.util.Arrays.copyOfRange(data, i * 10_000, (i + 1) * 10_000));
                }
                assertThatThrownBy(stream::next).isInstanceOf(CorruptedDataException.class)
                        .hasMessageContaining("ended after 45000 bytes, before chunk 4 of 6");
            }
            // Through the cache: the chunks the stream failed are fetched one by one when read
            // again, so the read either fails or returns the blob, never anything else.
            try {
                assertThat(readThroughCache(client, blob[0], slots)).isEqualTo(data);
            } catch (CorruptedDataException e) {
                assertThat(e).hasMessageContaining("ended after 45000 bytes");
            }

            // Valid chunks, streamed as listed, that are not the blob: caught by the whole-blob check.
            B3Digest[] other = new B3Digest[1];
            byte[] otherData = serve(other, 76, 6, 10_000);
            stats.put(blob[0].toByteString(), stats.get(other[0].toByteString()));
            reads.put(blob[0].toByteString(), pieces(otherData, 10_000));
            assertThatThrownBy(() -> readThroughCache(client, blob[0], slots)).isInstanceOf(CorruptedDataException.class)
                    .hasMessageContaining("do not make up the blob");
        }
    }

    @Test
    void aServerThatDoesNotStreamTheBlobIsReadChunkByChunk() throws Exception {
        B3Digest[] blob = new B3Digest[1];
        byte[] data = serve(blob, 77, 6, 10_000);
        try (var server = FakeServer.start(blobs); Store client = Stores.open(server.address(), TestServer.CLIENT_OPTIONS)) {
            reads.remove(blob[0].toByteString()); // Read of the blob digest: NOT_FOUND
            assertThat(readThroughCache(client, blob[0], true)).isEqualTo(data);
            assertThat(blobs.chunkReads).hasValue(6);
            reads.put(blob[0].toByteString(), List.of()); // an empty answer
            assertThat(readThroughCache(client, blob[0], false)).isEqualTo(data);
            assertThat(blobs.chunkReads).hasValue(12);
        }
    }

    @Test
    void aStalledStreamFailsAfterTheTimeoutAndTheNextReadWorks() throws Exception {
        B3Digest[] blob = new B3Digest[1];
        byte[] data = serve(blob, 78, 6, 10_000);
        try (var server = FakeServer.start(blobs); Store client = Stores.open(server.address(), TestServer.SHORT_TIMEOUT);
                Store cached = StoreCache.wrap(Stores.open(server.address(), TestServer.SHORT_TIMEOUT), CacheConfig.onDisk(dir.resolve("cache"), 1L << 30))) {
            reads.put(blob[0].toByteString(), pieces(java.util.Arrays.copyOf(data, 20_000), 10_000));
            blobs.stalls.add(blob[0].toByteString());
            long started = System.nanoTime();
            try (var reader = cached.blobs().open(blob[0]).orElseThrow(); var in = reader.inputStream(0)) {
                assertThatThrownBy(in::readAllBytes).isInstanceOf(IOException.class).hasMessageContaining("sent nothing for 2000 ms");
            }
            assertThat(System.nanoTime() - started).isLessThan(30_000_000_000L); // bounded (the timeout is 2 s)
            blobs.stalls.clear();
            reads.put(blob[0].toByteString(), pieces(data, 10_000));
            try (var reader = cached.blobs().open(blob[0]).orElseThrow(); var in = reader.inputStream(0)) {
                assertThat(in.readAllBytes()).isEqualTo(data);
            }
        }
    }
}

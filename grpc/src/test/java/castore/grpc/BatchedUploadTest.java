package castore.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.grpc.proto.BlobServiceGrpc;
import castore.grpc.proto.ChunkedBlobServiceGrpc;
import castore.grpc.proto.HasChunksRequest;
import castore.grpc.proto.HasChunksResponse;
import castore.grpc.proto.PutBlobResponse;
import castore.grpc.proto.PutChunkedRequest;
import castore.grpc.proto.StatBlobRequest;
import castore.grpc.proto.StatBlobResponse;
import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.service.BlobService;
import castore.service.BlobWriter;
import castore.service.ForwardingBlobService;
import castore.service.Store;
import castore.service.Stores;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import castore.service.memory.MemoryRootService;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * BlobService.createDeferred over gRPC: small blobs are asked about (MissingBlobs) and sent
 * (PutBlobs) in batches, finish returns before they are stored, and flushWrites stores them
 * all or throws. An import of 54,000 files to a daemon took 65 s file by file and 7 s in batches
 * (docs/grpc.md, "Uploads in batches").
 */
class BatchedUploadTest {
    @TempDir
    Path dir;

    /** {@code count} blobs of 0 to 3000 bytes (the first one empty), by digest, in order. */
    private static Map<B3Digest, byte[]> smallBlobs(int count, long seed) {
        Map<B3Digest, byte[]> blobs = new LinkedHashMap<>();
        for (int i = 0; i < count; i++) {
            byte[] data = TestData.random(seed * 100_000 + i, i % 3001);
            blobs.put(Blake3.digest(data), data);
        }
        return blobs;
    }

    private static List<B3Digest> writeDeferred(BlobService blobs, Iterable<byte[]> contents) throws IOException {
        List<B3Digest> digests = new ArrayList<>();
        for (byte[] data : contents) {
            try (BlobWriter w = blobs.createDeferred()) {
                w.write(data, 0, data.length);
                digests.add(w.finish());
                assertThat(w.bytesStored()).isZero(); // counted by flushWrites
            }
        }
        return digests;
    }

    /**
     * A store behind the daemon with a round trip per request (S3: 20 ms here for each has and
     * each write): the daemon asks about a batch's blobs all at once (the store's own batch
     * lookup, here 32 at a time as a remote backend's) and stores up to 16 of them at once, so
     * a batch of 300 blobs is answered well within a 2 s timeout. Asked about and stored one by
     * one (until session 47), it took 6 s for each and an import to a daemon over S3 failed with
     * "did not answer within 5000 ms".
     */
    @Test
    void smallBlobsReachADaemonWhoseStoreTakesARoundTripPerRequest() throws Exception {
        var stored = new MemoryBlobService();
        BlobService slow = new ForwardingBlobService(stored) {
            private static void roundTrip() throws IOException {
                try {
                    Thread.sleep(20);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new java.io.InterruptedIOException();
                }
            }

            @Override
            public boolean has(B3Digest digest) throws IOException {
                roundTrip();
                return super.has(digest);
            }

            @Override
            public List<B3Digest> missing(List<B3Digest> digests) throws IOException {
                return BlobService.missingByHas(this, digests, 32);
            }

            @Override
            public List<B3Digest> missingChunks(List<B3Digest> digests) throws IOException {
                return BlobService.missingByHas(this, digests, 32);
            }

            @Override
            public BlobWriter create() throws IOException {
                return new castore.service.ForwardingBlobWriter(super.create()) {
                    @Override
                    public B3Digest finish() throws IOException {
                        roundTrip();
                        return inner.finish();
                    }
                };
            }
        };
        try (var server = TestServer.start(TestServer.Transport.TCP, dir,
                new Store(slow, new MemoryDirectoryService(), new MemoryRootService()), false);
                Store client = Stores.open(server.clientAddress(), new castore.service.StoreOptions(false, Duration.ofSeconds(2), Map.of()))) {
            Map<B3Digest, byte[]> blobs = smallBlobs(300, 7);
            List<B3Digest> digests = writeDeferred(client.blobs(), blobs.values());
            client.blobs().flushWrites();
            for (B3Digest digest : digests) {
                assertThat(stored.has(digest)).as("stored on the daemon: %s", digest).isTrue();
            }
            assertThat(client.blobs().missing(digests)).isEmpty();
        }
    }

    @Test
    void smallBlobsAreStoredByFlushAndOnlyMissingOnesTravel() throws Exception {
        var recording = new RecordingBlobService(new MemoryBlobService());
        try (var server = TestServer.start(TestServer.Transport.TCP, dir,
                new Store(recording, new MemoryDirectoryService(), new MemoryRootService()), false)) {
            BlobService client = server.client().blobs();
            Map<B3Digest, byte[]> blobs = smallBlobs(3000, 1);
            List<byte[]> contents = new ArrayList<>(blobs.values());
            contents.addAll(blobs.values().stream().limit(100).toList()); // repeated: sent once
            assertThat(writeDeferred(client, contents)).containsExactlyElementsOf(
                    contents.stream().map(Blake3::digest).toList());
            long total = blobs.values().stream().mapToLong(b -> b.length).sum();
            assertThat(client.flushWrites()).isEqualTo(total);
            assertThat(recording.bytesWritten.get()).isEqualTo(total);
            for (var e : blobs.entrySet()) {
                assertThat(TestData.readAll(server.backing.blobs(), e.getKey())).isEqualTo(e.getValue());
            }

            // Again, with a few new ones: only those travel.
            Map<B3Digest, byte[]> more = smallBlobs(10, 50_000);
            contents.addAll(more.values());
            writeDeferred(client, contents);
            long added = more.values().stream().mapToLong(b -> b.length).sum();
            assertThat(client.flushWrites()).isEqualTo(added);
            assertThat(recording.bytesWritten.get()).isEqualTo(total + added);
            assertThat(client.flushWrites()).isZero();
        }
    }

    /** finish does not wait for the server: with its store stalled, every writer still finishes. */
    @Test
    void finishReturnsBeforeTheServerHasStoredTheBlob() throws Exception {
        var open = new CountDownLatch(1);
        BlobService stalled = new ForwardingBlobService(new MemoryBlobService()) {
            @Override
            public BlobWriter create() throws IOException {
                try {
                    open.await();
                } catch (InterruptedException e) {
                    throw new java.io.InterruptedIOException();
                }
                return inner.create();
            }
        };
        try (var server = TestServer.start(TestServer.Transport.UNIX, dir,
                new Store(stalled, new MemoryDirectoryService(), new MemoryRootService()), false)) {
            BlobService client = server.client().blobs();
            Map<B3Digest, byte[]> blobs = smallBlobs(50, 2);
            org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(Duration.ofSeconds(20),
                    () -> writeDeferred(client, blobs.values()));
            assertThat(server.backing.blobs().has(blobs.keySet().iterator().next())).isFalse();
            open.countDown();
            assertThat(client.flushWrites()).isEqualTo(blobs.values().stream().mapToLong(b -> b.length).sum());
            for (B3Digest digest : blobs.keySet()) {
                assertThat(server.backing.blobs().has(digest)).isTrue();
            }
        }
    }

    /** A batch the server refuses fails flushWrites with the server's reason, and nothing is stored. */
    @Test
    void aRefusedBatchIsThrownByFlush() throws Exception {
        try (var server = TestServer.start(TestServer.Transport.TCP, dir, TestServer.memoryStore(), true)) {
            BlobService client = server.client().blobs();
            Map<B3Digest, byte[]> blobs = smallBlobs(20, 3);
            writeDeferred(client, blobs.values());
            assertThatThrownBy(client::flushWrites).isInstanceOf(IOException.class).hasMessageContaining("read-only");
            for (B3Digest digest : blobs.keySet()) {
                assertThat(server.backing.blobs().has(digest)).isFalse();
            }
            assertThat(client.flushWrites()).isZero(); // reported once
        }
    }

    /**
     * Batches failing while a writer waits for one of them to end (more than two batches'
     * worth): the writer or the flush gets the failure. When the failure was recorded under the
     * lock the waiting writer held, this hung for good.
     */
    @Test
    void batchesThatFailWhileAWriterWaitsForThemEndInAnError() throws Exception {
        try (var server = TestServer.start(TestServer.Transport.TCP, dir, TestServer.memoryStore(), true)) {
            BlobService client = server.client().blobs();
            Map<B3Digest, byte[]> blobs = smallBlobs(4 * 1024, 6);
            IOException thrown = org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
                try {
                    writeDeferred(client, blobs.values());
                } catch (IOException e) {
                    return e;
                }
                return null;
            });
            if (thrown != null) { // a writer that came after the failure
                assertThat(thrown).hasMessageContaining("read-only");
            }
            // Whether a writer saw it or not, flush says so: it must not succeed with blobs missing.
            org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(Duration.ofSeconds(60),
                    () -> assertThatThrownBy(client::flushWrites).isInstanceOf(IOException.class).hasMessageContaining("read-only"));
            assertThat(client.flushWrites()).isZero(); // the next import starts clean
        }
    }

    /**
     * A castore daemon from before MissingBlobs and PutBlobs (ChunkedBlobService without them)
     * answers UNIMPLEMENTED: the blobs then go one by one, as before, and are all stored.
     */
    @Test
    void aDaemonWithoutTheBatchCallsGetsTheBlobsOneByOne() throws Exception {
        var stored = new MemoryBlobService();
        try (var old = FakeServer.start(new OldBlobService(stored), new OldChunkedBlobService(stored));
                Store client = Stores.open(old.address(), TestServer.CLIENT_OPTIONS)) {
            Map<B3Digest, byte[]> blobs = smallBlobs(30, 4);
            writeDeferred(client.blobs(), blobs.values());
            assertThat(client.blobs().flushWrites()).isEqualTo(blobs.values().stream().mapToLong(b -> b.length).sum());
            for (var e : blobs.entrySet()) {
                assertThat(TestData.readAll(stored, e.getKey())).isEqualTo(e.getValue());
            }
        }
    }

    /**
     * BlobService.missing (castore copy): from a castore daemon in MissingBlobs calls of at most
     * 16384 digests, each digest once and in order, whatever the server holds.
     */
    @Test
    void missingBlobsAreAskedAboutInBatches() throws Exception {
        try (var server = TestServer.start(TestServer.Transport.TCP, dir, TestServer.memoryStore(), false)) {
            Map<B3Digest, byte[]> blobs = smallBlobs(20_000, 7);
            List<B3Digest> asked = new ArrayList<>(blobs.keySet());
            List<B3Digest> expected = new ArrayList<>();
            int i = 0;
            for (var e : blobs.entrySet()) {
                if (i++ % 3 == 0) {
                    TestData.put(server.backing.blobs(), e.getValue());
                } else {
                    expected.add(e.getKey());
                }
            }
            asked.addAll(asked.subList(0, 50)); // asked twice, answered once
            assertThat(server.client().blobs().missing(asked)).containsExactlyElementsOf(expected);
            assertThat(server.client().blobs().missing(List.of())).isEmpty();
            assertThat(server.client().directories().acceptsStoredChildren()).isTrue();
        }
    }

    /**
     * A castore daemon from before MissingBlobs, and a tvix server (no ChunkedBlobService at
     * all), are asked with Stats; a tvix server takes only whole closures.
     */
    @Test
    void serversWithoutMissingBlobsAreAskedWithStats() throws Exception {
        var stored = new MemoryBlobService();
        Map<B3Digest, byte[]> blobs = smallBlobs(200, 8);
        List<B3Digest> expected = new ArrayList<>();
        int i = 0;
        for (var e : blobs.entrySet()) {
            if (i++ % 2 == 0) {
                TestData.put(stored, e.getValue());
            } else {
                expected.add(e.getKey());
            }
        }
        List<B3Digest> asked = new ArrayList<>(blobs.keySet());
        try (var old = FakeServer.start(new OldBlobService(stored), new OldChunkedBlobService(stored));
                Store client = Stores.open(old.address(), TestServer.CLIENT_OPTIONS)) {
            assertThat(client.blobs().missing(asked)).containsExactlyElementsOf(expected);
            assertThat(client.directories().acceptsStoredChildren()).isTrue();
        }
        try (var tvix = FakeServer.start(new OldBlobService(stored));
                Store client = Stores.open(tvix.address(), TestServer.CLIENT_OPTIONS)) {
            assertThat(client.blobs().missing(asked)).containsExactlyElementsOf(expected);
            assertThat(client.directories().acceptsStoredChildren()).isFalse();
        }
    }

    /** tvix's Stat over a memory store, as an older castore daemon answers it. */
    private static final class OldBlobService extends BlobServiceGrpc.BlobServiceImplBase {
        private final MemoryBlobService stored;

        OldBlobService(MemoryBlobService stored) {
            this.stored = stored;
        }

        @Override
        public void stat(StatBlobRequest request, StreamObserver<StatBlobResponse> responses) {
            if (stored.has(B3Digest.of(request.getDigest()))) {
                responses.onNext(StatBlobResponse.getDefaultInstance());
                responses.onCompleted();
            } else {
                responses.onError(Status.NOT_FOUND.asRuntimeException());
            }
        }
    }

    /** HasChunks and PutChunked (data parts only), the ChunkedBlobService of sessions 1-34. */
    private static final class OldChunkedBlobService extends ChunkedBlobServiceGrpc.ChunkedBlobServiceImplBase {
        private final MemoryBlobService stored;

        OldChunkedBlobService(MemoryBlobService stored) {
            this.stored = stored;
        }

        @Override
        public void hasChunks(HasChunksRequest request, StreamObserver<HasChunksResponse> responses) {
            var response = HasChunksResponse.newBuilder();
            request.getDigestsList().stream().filter(d -> !stored.has(B3Digest.of(d))).forEach(response::addMissing);
            responses.onNext(response.build());
            responses.onCompleted();
        }

        @Override
        public StreamObserver<PutChunkedRequest> putChunked(StreamObserver<PutBlobResponse> responses) {
            var data = new ByteArrayOutputStream();
            return new StreamObserver<>() {
                @Override
                public void onNext(PutChunkedRequest part) {
                    if (part.hasData()) {
                        data.writeBytes(part.getData().toByteArray());
                    }
                }

                @Override
                public void onError(Throwable t) {
                }

                @Override
                public void onCompleted() {
                    try {
                        B3Digest digest = TestData.put(stored, data.toByteArray());
                        responses.onNext(PutBlobResponse.newBuilder().setDigest(digest.toByteString()).build());
                        responses.onCompleted();
                    } catch (IOException e) {
                        responses.onError(Status.INTERNAL.withDescription(e.getMessage()).asRuntimeException());
                    }
                }
            };
        }
    }
}

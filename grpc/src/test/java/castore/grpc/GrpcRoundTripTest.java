package castore.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.grpc.proto.BlobChunk;
import castore.grpc.proto.BlobServiceGrpc;
import castore.grpc.proto.ReadBlobRequest;
import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.FileNode;
import castore.model.Name;
import castore.model.SymlinkNode;
import castore.service.ChunkMeta;
import castore.service.ClosurePutter;
import castore.service.Store;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Blobs, directories and roots through a real daemon, over loopback TCP and a Unix socket. */
class GrpcRoundTripTest {
    @TempDir
    Path dir;

    /** A server-side store whose blobs are stored as chunks (ChunkingBlobService), in memory. */
    private static Store chunkingStore() {
        return new Store(new ChunkingBlobService(), new castore.service.memory.MemoryDirectoryService(),
                new castore.service.memory.MemoryRootService());
    }

    @org.junit.jupiter.api.Test
    void callsDoNotInheritTheCallersGrpcContext() throws Exception {
        // As in a daemon serving a remote store: the thread that asks runs in the context of a
        // server call, which ends (is cancelled) while fetches it started are shared by others.
        try (var server = TestServer.start(TestServer.Transport.TCP, dir)) {
            byte[] data = TestData.random(21, 300_000);
            B3Digest digest = TestData.put(server.client().blobs(), data);
            io.grpc.Context.CancellableContext ended = io.grpc.Context.current().withCancellation();
            ended.cancel(null);
            byte[] read = ended.call(() -> TestData.readAll(server.client().blobs(), digest));
            assertThat(read).isEqualTo(data);
            assertThat(ended.call(() -> server.client().directories().get(Directory.empty().digest()))).isEmpty();
        }
    }

    @ParameterizedTest
    @EnumSource(TestServer.Transport.class)
    void blobsRoundTrip(TestServer.Transport transport) throws Exception {
        try (var server = TestServer.start(transport, dir)) {
            Store client = server.client();
            for (int size : new int[] {0, 1, 4096, 1 << 20, 3 * 1024 * 1024 + 17}) {
                byte[] data = TestData.random(size, size);
                B3Digest digest = TestData.put(client.blobs(), data);
                assertThat(digest).isEqualTo(Blake3.digest(data));
                assertThat(server.backing.blobs().has(digest)).as("stored on the server").isTrue();
                assertThat(client.blobs().has(digest)).isTrue();
                assertThat(TestData.readAll(client.blobs(), digest)).isEqualTo(data);
                List<ChunkMeta> chunks = client.blobs().chunks(digest).orElseThrow();
                assertThat(chunks.stream().mapToLong(ChunkMeta::size).sum()).isEqualTo(size);
            }
            B3Digest absent = Blake3.digest(new byte[] {42});
            assertThat(client.blobs().has(absent)).isFalse();
            assertThat(client.blobs().open(absent)).isEmpty();
            assertThat(client.blobs().chunks(absent)).isEmpty();
        }
    }

    /**
     * tvix's Read of chunked blobs, spoken directly: one message per chunk, each the chunk's
     * bytes, with two streams open at once and read in turn by a slow reader, so messages wait in
     * the transport (the daemon reads messages into a few arrays that all streams share).
     */
    @ParameterizedTest
    @EnumSource(TestServer.Transport.class)
    void readsSendEachChunkIntactToASlowReaderOfTwoStreams(TestServer.Transport transport) throws Exception {
        Store backing = chunkingStore();
        try (var server = TestServer.start(transport, dir, backing, false)) {
            byte[][] data = {TestData.random(9, 6 * 1024 * 1024 + 77), TestData.random(10, 5 * 1024 * 1024 + 5)};
            List<List<ChunkMeta>> chunks = new ArrayList<>();
            List<Iterator<BlobChunk>> streams = new ArrayList<>();
            var stub = BlobServiceGrpc.newBlockingStub(server.raw()).withDeadlineAfter(60, TimeUnit.SECONDS);
            for (byte[] blob : data) {
                B3Digest digest = TestData.put(server.client().blobs(), blob);
                chunks.add(backing.blobs().chunks(digest).orElseThrow());
                assertThat(chunks.getLast()).hasSizeGreaterThan(4);
                streams.add(stub.read(ReadBlobRequest.newBuilder().setDigest(digest.toByteString()).build()));
            }
            int[] offsets = new int[2];
            int[] indexes = new int[2];
            while (streams.get(0).hasNext() || streams.get(1).hasNext()) {
                for (int s = 0; s < 2; s++) {
                    if (!streams.get(s).hasNext()) {
                        continue;
                    }
                    byte[] message = streams.get(s).next().getData().toByteArray();
                    Thread.sleep(10); // the daemon fills both flow-control windows meanwhile
                    int index = indexes[s]++;
                    assertThat(index).as("stream %d: more messages than chunks", s).isLessThan(chunks.get(s).size());
                    assertThat((long) message.length).as("stream %d, message %d", s, index).isEqualTo(chunks.get(s).get(index).size());
                    assertThat(Blake3.digest(message)).as("stream %d, message %d", s, index).isEqualTo(chunks.get(s).get(index).digest());
                    assertThat(Arrays.equals(message, 0, message.length, data[s], offsets[s], offsets[s] + message.length)).isTrue();
                    offsets[s] += message.length;
                }
            }
            for (int s = 0; s < 2; s++) {
                assertThat(indexes[s]).isEqualTo(chunks.get(s).size());
                assertThat(offsets[s]).isEqualTo(data[s].length);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(TestServer.Transport.class)
    void multiChunkBlobReadAtRandomOffsetsFromManyThreads(TestServer.Transport transport) throws Exception {
        // A chunking backend on the server, so reads go chunk by chunk.
        Store backing = chunkingStore();
        try (var server = TestServer.start(transport, dir, backing, false)) {
            byte[] data = TestData.random(7, 5 * 1024 * 1024 + 333);
            B3Digest digest = TestData.put(server.client().blobs(), data);
            assertThat(server.client().blobs().chunks(digest).orElseThrow()).hasSizeGreaterThan(10);
            try (var reader = server.client().blobs().open(digest).orElseThrow();
                 var pool = Executors.newFixedThreadPool(8)) {
                assertThat(reader.size()).isEqualTo(data.length);
                List<Future<?>> reads = new ArrayList<>();
                for (int t = 0; t < 8; t++) {
                    long seed = t;
                    reads.add(pool.submit(() -> {
                        SplittableRandom random = new SplittableRandom(seed);
                        for (int i = 0; i < 50; i++) {
                            int offset = random.nextInt(data.length);
                            int length = random.nextInt(1, 700_000);
                            ByteBuffer dst = ByteBuffer.allocate(length);
                            int n = reader.read(offset, dst);
                            int expected = Math.min(length, data.length - offset);
                            assertThat(n).isEqualTo(expected);
                            assertThat(java.util.Arrays.equals(dst.array(), 0, n, data, offset, offset + n)).isTrue();
                        }
                        return null;
                    }));
                }
                for (Future<?> f : reads) {
                    f.get();
                }
                assertThat(reader.read(data.length, ByteBuffer.allocate(10))).isEqualTo(-1);
            }
            assertThat(TestData.readAll(server.client().blobs(), digest)).isEqualTo(data);
        }
    }

    @ParameterizedTest
    @EnumSource(TestServer.Transport.class)
    void directoriesAndRoots(TestServer.Transport transport) throws Exception {
        try (var server = TestServer.start(transport, dir)) {
            Store client = server.client();
            B3Digest blob = TestData.put(client.blobs(), "hello".getBytes());
            Directory leaf = Directory.builder().add("file", new FileNode(blob, 5, false)).build();
            Directory shared = Directory.builder().add("link", SymlinkNode.of("../x")).build();
            Directory middle = Directory.builder().add("leaf", leaf.toNode()).add("s1", shared.toNode()).build();
            Directory root = Directory.builder()
                    .add("a", middle.toNode()).add("b", shared.toNode()).add("exe", new FileNode(blob, 5, true)).build();

            ClosurePutter putter = client.directories().putClosure();
            for (Directory d : List.of(leaf, shared, middle, root)) {
                putter.put(d);
            }
            assertThat(putter.finish()).isEqualTo(root.digest());
            assertThat(client.directories().get(middle.digest())).contains(middle);
            assertThat(client.directories().has(leaf.digest())).isTrue();
            assertThat(client.directories().get(Directory.empty().digest())).isEmpty();

            // Depth-first in name order, root first, each Directory once (shared appears under
            // middle, then under root: it comes where the walk first meets it).
            try (var closure = client.directories().getRecursive(root.digest())) {
                assertThat(closure.toList()).containsExactly(root, middle, leaf, shared);
            }

            // Single puts whose children are stored already.
            Directory another = Directory.builder().add("again", middle.toNode()).build();
            assertThat(client.directories().put(another)).isEqualTo(another.digest());

            client.roots().put(Name.of("tree"), root.toNode());
            client.roots().put(Name.of("file"), new FileNode(blob, 5, false));
            client.roots().put(Name.of("link"), SymlinkNode.of("/nowhere"));
            assertThat(client.roots().get(Name.of("tree"))).contains(root.toNode());
            assertThat(client.roots().get(Name.of("nope"))).isEmpty();
            try (var roots = client.roots().list()) {
                assertThat(roots.map(n -> n.name().toString()).toList()).containsExactly("file", "link", "tree");
            }
            client.roots().put(Name.of("tree"), another.toNode());
            assertThat(client.roots().get(Name.of("tree"))).contains(another.toNode());
            assertThat(client.roots().remove(Name.of("tree"))).isTrue();
            assertThat(client.roots().remove(Name.of("tree"))).isFalse();
            assertThat(server.backing.roots().get(Name.of("tree"))).isEmpty();
        }
    }

    /**
     * A flat directory of 300,000 files (22 MB encoded, over the 16 MiB limit of sessions 1-34)
     * goes up in a closure and comes back by Get and recursive Get; one over the 64 MiB limit is
     * refused by the client, naming its size and the limit, before anything is sent.
     */
    @Test
    void aDirectoryOfHundredsOfThousandsOfEntriesRoundTripsAndOneOverTheLimitIsRefusedClearly() throws Exception {
        try (var server = TestServer.start(TestServer.Transport.TCP, dir)) {
            Store client = server.client();
            B3Digest blob = TestData.put(client.blobs(), "x".getBytes());
            Directory.Builder flat = Directory.builder();
            for (int i = 0; i < 300_000; i++) {
                flat.add(String.format("file-with-a-longish-name-%07d.dat", i), new FileNode(blob, 1, false));
            }
            Directory big = flat.build();
            assertThat(big.encode().length).isBetween(16 << 20, castore.grpc.MessageLimit.BYTES);
            Directory parent = Directory.builder().add("flat", big.toNode()).build();
            try (ClosurePutter putter = client.directories().putClosure()) {
                putter.put(big);
                putter.put(parent);
                assertThat(putter.finish()).isEqualTo(parent.digest());
            }
            assertThat(client.directories().get(big.digest())).contains(big);
            try (var closure = client.directories().getRecursive(parent.digest())) {
                assertThat(closure.toList()).containsExactly(parent, big);
            }

            Directory.Builder huge = Directory.builder();
            String longName = "n".repeat(200);
            for (int i = 0; i < 300_000; i++) {
                huge.add(longName + i, new FileNode(blob, 1, false));
            }
            Directory tooBig = huge.build();
            assertThat(tooBig.encode().length).isGreaterThan(castore.grpc.MessageLimit.BYTES);
            try (ClosurePutter putter = client.directories().putClosure()) {
                assertThatThrownBy(() -> putter.put(tooBig)).isInstanceOf(castore.model.InvalidDataException.class)
                        .hasMessage("a directory of 300000 entries (" + tooBig.digest() + ") is " + tooBig.encode().length
                                + " bytes encoded, over the 64 MiB a gRPC message may carry: keep it in a local or S3 store");
            }
            assertThat(server.backing.directories().has(tooBig.digest())).isFalse();
        }
    }
}

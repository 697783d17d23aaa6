package castore.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.grpc.proto.BlobChunk;
import castore.grpc.proto.BlobServiceGrpc;
import castore.grpc.proto.DirectoryServiceGrpc;
import castore.grpc.proto.GetDirectoryRequest;
import castore.grpc.proto.GetRootRequest;
import castore.grpc.proto.ListRootsRequest;
import castore.grpc.proto.PutBlobResponse;
import castore.grpc.proto.ReadBlobRequest;
import castore.grpc.proto.RootServiceGrpc;
import castore.grpc.proto.StatBlobRequest;
import castore.grpc.proto.StatBlobResponse;
import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.Name;
import castore.model.SymlinkNode;
import castore.service.CorruptedDataException;
import castore.service.NotFoundException;
import castore.service.Store;
import castore.service.Stores;
import com.google.protobuf.ByteString;
import com.google.protobuf.UnknownFieldSet;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** A server that lies or breaks: the client reports errors and never returns wrong bytes. */
class LyingServerTest {
    private final FakeBlobService blobs = new FakeBlobService();
    private final Map<ByteString, StatBlobResponse> stats = blobs.stats;
    private final Map<ByteString, List<ByteString>> reads = blobs.reads;
    private final Map<ByteString, List<castore.proto.Directory>> directories = new HashMap<>();
    private final List<castore.proto.Node> roots = new java.util.ArrayList<>();
    private FakeServer server;
    private Store client;

    @BeforeEach
    void start() throws Exception {
        server = FakeServer.start(blobs, new Directories(), new Roots());
        client = Stores.open(server.address(), TestServer.CLIENT_OPTIONS);
    }

    @AfterEach
    void stop() throws Exception {
        client.close();
        server.close();
    }

    private static StatBlobResponse chunks(Object... digestAndSize) {
        var b = StatBlobResponse.newBuilder();
        for (int i = 0; i < digestAndSize.length; i += 2) {
            b.addChunks(StatBlobResponse.ChunkMeta.newBuilder()
                    .setDigest(((B3Digest) digestAndSize[i]).toByteString()).setSize((Integer) digestAndSize[i + 1]));
        }
        return b.build();
    }

    private static byte[] flipped(byte[] data) {
        byte[] copy = data.clone();
        copy[copy.length / 2] ^= 1;
        return copy;
    }

    @Test
    void chunkWithWrongBytesIsAnError() throws Exception {
        byte[] data = TestData.random(1, 5000);
        B3Digest digest = Blake3.digest(data);
        stats.put(digest.toByteString(), chunks(digest, data.length));
        reads.put(digest.toByteString(), List.of(ByteString.copyFrom(flipped(data))));
        try (var reader = client.blobs().open(digest).orElseThrow()) {
            assertThatThrownBy(() -> reader.read(0, ByteBuffer.allocate(10)))
                    .isInstanceOf(CorruptedDataException.class).hasMessageContaining("does not match its digest");
        }
    }

    @Test
    void chunkOfWrongLengthIsAnError() throws Exception {
        byte[] data = TestData.random(2, 5000);
        B3Digest digest = Blake3.digest(data);
        stats.put(digest.toByteString(), chunks(digest, data.length));
        reads.put(digest.toByteString(), List.of(ByteString.copyFrom(data), ByteString.copyFromUtf8("more")));
        try (var reader = client.blobs().open(digest).orElseThrow()) {
            assertThatThrownBy(() -> reader.read(0, ByteBuffer.allocate(10)))
                    .isInstanceOf(CorruptedDataException.class).hasMessageContaining("longer than its size");
        }
        reads.put(digest.toByteString(), List.of(ByteString.copyFrom(data, 0, 4000)));
        try (var reader = client.blobs().open(digest).orElseThrow()) {
            assertThatThrownBy(() -> reader.read(0, ByteBuffer.allocate(10)))
                    .isInstanceOf(CorruptedDataException.class).hasMessageContaining("has 4000 bytes, not 5000");
        }
    }

    @Test
    void readChunkHashesWhatItGets() throws Exception {
        byte[] data = TestData.random(21, 5000);
        B3Digest digest = Blake3.digest(data);
        reads.put(digest.toByteString(), List.of(ByteString.copyFrom(flipped(data))));
        assertThatThrownBy(() -> client.blobs().readChunk(new castore.service.ChunkMeta(digest, data.length)))
                .isInstanceOf(CorruptedDataException.class).hasMessageContaining("does not match its digest");
        reads.put(digest.toByteString(), List.of(ByteString.copyFrom(data)));
        assertThat(client.blobs().readChunk(new castore.service.ChunkMeta(digest, data.length))).hasValueSatisfying(
                bytes -> assertThat(bytes).isEqualTo(data));
    }

    @Test
    void aCacheOverALyingServerFailsInsteadOfServingOrKeepingWrongBytes(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        byte[] a = TestData.random(22, 3000);
        byte[] b = TestData.random(23, 3000);
        B3Digest blob = Blake3.digest(TestData.random(24, 6000)); // the chunks do not make this blob
        stats.put(blob.toByteString(), chunks(Blake3.digest(a), a.length, Blake3.digest(b), b.length));
        reads.put(Blake3.digest(a).toByteString(), List.of(ByteString.copyFrom(a)));
        reads.put(Blake3.digest(b).toByteString(), List.of(ByteString.copyFrom(flipped(b))));
        try (Store cached = castore.service.cache.StoreCache.wrap(client, castore.service.cache.CacheConfig.onDisk(dir, 1L << 30))) {
            try (var reader = cached.blobs().open(blob).orElseThrow(); var in = reader.inputStream(0)) {
                assertThatThrownBy(in::readAllBytes)
                        .isInstanceOf(CorruptedDataException.class).hasMessageContaining("does not match its digest");
            }
            reads.put(Blake3.digest(b).toByteString(), List.of(ByteString.copyFrom(b))); // now every chunk is valid
            try (var reader = cached.blobs().open(blob).orElseThrow(); var in = reader.inputStream(0)) {
                assertThatThrownBy(in::readAllBytes)
                        .isInstanceOf(CorruptedDataException.class).hasMessageContaining("do not make up the blob");
            }
        }
    }

    @Test
    void validChunksThatAreNotTheBlobFailTheSequentialRead() throws Exception {
        byte[] a = TestData.random(3, 3000);
        byte[] b = TestData.random(4, 3000);
        B3Digest blob = Blake3.digest(TestData.random(5, 6000)); // the chunks do not make this blob
        stats.put(blob.toByteString(), chunks(Blake3.digest(a), a.length, Blake3.digest(b), b.length));
        reads.put(Blake3.digest(a).toByteString(), List.of(ByteString.copyFrom(a)));
        reads.put(Blake3.digest(b).toByteString(), List.of(ByteString.copyFrom(b)));
        try (var reader = client.blobs().open(blob).orElseThrow(); var in = reader.inputStream(0)) {
            assertThatThrownBy(in::readAllBytes)
                    .isInstanceOf(CorruptedDataException.class).hasMessageContaining("do not make up the blob");
        }
    }

    @Test
    void validChunksThatRepeatButAreNotTheBlobFailTheSequentialRead() throws Exception {
        // A, B, A: the third place is served from the first one's copy, and is checked all the same.
        byte[] a = TestData.random(13, 3000);
        byte[] b = TestData.random(14, 3000);
        B3Digest blob = Blake3.digest(TestData.random(15, 9000));
        stats.put(blob.toByteString(), chunks(Blake3.digest(a), a.length, Blake3.digest(b), b.length, Blake3.digest(a), a.length));
        reads.put(Blake3.digest(a).toByteString(), List.of(ByteString.copyFrom(a)));
        reads.put(Blake3.digest(b).toByteString(), List.of(ByteString.copyFrom(b)));
        try (var reader = client.blobs().open(blob).orElseThrow(); var in = reader.inputStream(0)) {
            assertThatThrownBy(in::readAllBytes)
                    .isInstanceOf(CorruptedDataException.class).hasMessageContaining("do not make up the blob");
        }
        // The honest blob A, B, A reads whole.
        byte[] aba = new byte[9000];
        System.arraycopy(a, 0, aba, 0, 3000);
        System.arraycopy(b, 0, aba, 3000, 3000);
        System.arraycopy(a, 0, aba, 6000, 3000);
        B3Digest honest = Blake3.digest(aba);
        stats.put(honest.toByteString(), chunks(Blake3.digest(a), a.length, Blake3.digest(b), b.length, Blake3.digest(a), a.length));
        try (var reader = client.blobs().open(honest).orElseThrow(); var in = reader.inputStream(0)) {
            assertThat(in.readAllBytes()).isEqualTo(aba);
        }
    }

    @Test
    void aLoneChunkMustBeTheBlob() throws Exception {
        byte[] data = TestData.random(6, 100);
        B3Digest blob = Blake3.digest(TestData.random(7, 100));
        stats.put(blob.toByteString(), chunks(Blake3.digest(data), data.length));
        assertThatThrownBy(() -> client.blobs().open(blob))
                .isInstanceOf(CorruptedDataException.class).hasMessageContaining("single chunk must be the blob");
    }

    @Test
    void wholeBlobWithoutChunkListIsVerified() throws Exception {
        byte[] data = TestData.random(8, 100_000);
        B3Digest digest = Blake3.digest(data);
        stats.put(digest.toByteString(), StatBlobResponse.getDefaultInstance());
        reads.put(digest.toByteString(), List.of(ByteString.copyFrom(flipped(data))));
        assertThatThrownBy(() -> client.blobs().open(digest))
                .isInstanceOf(CorruptedDataException.class).hasMessageContaining("does not match its digest");
        reads.put(digest.toByteString(), List.of(ByteString.copyFrom(data, 0, 50_000), ByteString.copyFrom(data, 50_000, 50_000)));
        assertThat(TestData.readAll(client.blobs(), digest)).isEqualTo(data);
    }

    @Test
    void uploadAnsweredWithAnotherDigestIsAnError() throws Exception {
        blobs.putAnswer = Blake3.digest(new byte[] {1}).toByteString();
        byte[] data = TestData.random(9, 2000);
        // First Stat says "absent", so the blob is sent with tvix's Put (no ChunkedBlobService here).
        assertThatThrownBy(() -> TestData.put(client.blobs(), data))
                .isInstanceOf(CorruptedDataException.class).hasMessageContaining("server stored");
    }

    private static final Directory LEAF = Directory.builder().add("l", SymlinkNode.of("t")).build();
    private static final Directory ROOT = Directory.builder().add("a", LEAF.toNode()).add("b", LEAF.toNode()).build();

    @Test
    void wrongOrInvalidDirectoryIsAnError() {
        directories.put(ROOT.digest().toByteString(), List.of(LEAF.toProto()));
        assertThatThrownBy(() -> client.directories().get(ROOT.digest()))
                .isInstanceOf(CorruptedDataException.class).hasMessageContaining("sent Directory " + LEAF.digest());
        var withUnknown = ROOT.toProto().toBuilder()
                .setUnknownFields(UnknownFieldSet.newBuilder().addField(7, UnknownFieldSet.Field.newBuilder().addVarint(1).build()).build()).build();
        directories.put(ROOT.digest().toByteString(), List.of(withUnknown));
        assertThatThrownBy(() -> client.directories().get(ROOT.digest()))
                .isInstanceOf(CorruptedDataException.class).hasMessageContaining("unknown fields");
        directories.put(ROOT.digest().toByteString(), List.of(ROOT.toProto(), ROOT.toProto()));
        assertThatThrownBy(() -> client.directories().get(ROOT.digest()))
                .isInstanceOf(CorruptedDataException.class).hasMessageContaining("more than one");
    }

    private void assertRecursiveFails(List<castore.proto.Directory> answer, Class<?> type, String message) {
        directories.put(ROOT.digest().toByteString(), answer);
        assertThatThrownBy(() -> {
            try (var s = client.directories().getRecursive(ROOT.digest())) {
                s.toList();
            }
        }).isInstanceOf(UncheckedIOException.class).cause().isInstanceOf(type).hasMessageContaining(message);
    }

    @Test
    void recursiveGetIsCheckedDirectoryByDirectory() throws Exception {
        Directory unrelated = Directory.builder().add("x", SymlinkNode.of("y")).build();
        assertRecursiveFails(List.of(LEAF.toProto()), CorruptedDataException.class, "no Directory sent before refers to");
        assertRecursiveFails(List.of(ROOT.toProto(), unrelated.toProto()), CorruptedDataException.class, "no Directory sent before refers to");
        assertRecursiveFails(List.of(ROOT.toProto()), NotFoundException.class, "lacks " + LEAF.digest());
        assertRecursiveFails(List.of(ROOT.toProto(), LEAF.toProto(), LEAF.toProto()), CorruptedDataException.class, "twice");
        Directory lyingSize = Directory.builder().add("a", new DirectoryNode(LEAF.digest(), 5)).build();
        directories.put(lyingSize.digest().toByteString(), List.of(lyingSize.toProto(), LEAF.toProto()));
        assertThatThrownBy(() -> {
            try (var s = client.directories().getRecursive(lyingSize.digest())) {
                s.toList();
            }
        }).isInstanceOf(UncheckedIOException.class).cause().hasMessageContaining("its parent says 5");
        directories.put(ROOT.digest().toByteString(), List.of(ROOT.toProto(), LEAF.toProto()));
        try (var s = client.directories().getRecursive(ROOT.digest())) {
            assertThat(s.toList()).containsExactly(ROOT, LEAF);
        }
    }

    @Test
    void rootsAreChecked() {
        roots.add(SymlinkNode.of("t").toNodeProto(Name.of("b")));
        roots.add(SymlinkNode.of("t").toNodeProto(Name.of("a")));
        assertThatThrownBy(() -> {
            try (var s = client.roots().list()) {
                s.toList();
            }
        }).isInstanceOf(UncheckedIOException.class).cause().hasMessageContaining("listed root 'a' after 'b'");
        assertThatThrownBy(() -> client.roots().get(Name.of("a")))
                .isInstanceOf(CorruptedDataException.class).hasMessageContaining("answered root 'b' for 'a'");
    }

    private final class Directories extends DirectoryServiceGrpc.DirectoryServiceImplBase {
        @Override
        public void get(GetDirectoryRequest request, StreamObserver<castore.proto.Directory> responses) {
            directories.getOrDefault(request.getDigest(), List.of()).forEach(responses::onNext);
            responses.onCompleted();
        }
    }

    private final class Roots extends RootServiceGrpc.RootServiceImplBase {
        @Override
        public void get(GetRootRequest request, StreamObserver<castore.proto.Node> responses) {
            responses.onNext(roots.getFirst());
            responses.onCompleted();
        }

        @Override
        public void list(ListRootsRequest request, StreamObserver<castore.proto.Node> responses) {
            roots.forEach(responses::onNext);
            responses.onCompleted();
        }
    }
}

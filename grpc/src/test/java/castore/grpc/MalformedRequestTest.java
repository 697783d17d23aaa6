package castore.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.grpc.proto.BlobChunk;
import castore.grpc.proto.BlobServiceGrpc;
import castore.grpc.proto.ChunkedBlobServiceGrpc;
import castore.grpc.proto.DirectoryServiceGrpc;
import castore.grpc.proto.GetDirectoryRequest;
import castore.grpc.proto.GetRootRequest;
import castore.grpc.proto.HasChunksRequest;
import castore.grpc.proto.PutChunkedRequest;
import castore.grpc.proto.PutRootRequest;
import castore.grpc.proto.ReadBlobRequest;
import castore.grpc.proto.RootServiceGrpc;
import castore.grpc.proto.StatBlobRequest;
import castore.grpc.proto.StatBlobResponse;
import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.SymlinkNode;
import com.google.protobuf.ByteString;
import com.google.protobuf.UnknownFieldSet;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.StreamObserver;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Requests a foreign or broken client could send, spoken directly on the wire: each gets the
 * right status, nothing of a rejected request is stored, and the daemon keeps serving.
 */
class MalformedRequestTest {
    @TempDir
    Path dir;
    private TestServer server;
    private BlobServiceGrpc.BlobServiceBlockingStub blobs;
    private DirectoryServiceGrpc.DirectoryServiceStub directories;

    @BeforeEach
    void start() throws Exception {
        server = TestServer.start(TestServer.Transport.TCP, dir);
        blobs = BlobServiceGrpc.newBlockingStub(server.raw()).withDeadlineAfter(10, TimeUnit.SECONDS);
        directories = DirectoryServiceGrpc.newStub(server.raw()).withDeadlineAfter(10, TimeUnit.SECONDS);
    }

    @AfterEach
    void stop() throws Exception {
        // After every malformed request, the daemon still serves a well-formed one.
        byte[] data = "still serving".getBytes();
        assertThat(TestData.readAll(server.client().blobs(), TestData.put(server.client().blobs(), data))).isEqualTo(data);
        server.close();
    }

    private static void assertStatus(Runnable call, Status.Code code, String message) {
        assertThatThrownBy(call::run).isInstanceOfSatisfying(StatusRuntimeException.class, e -> {
            assertThat(e.getStatus().getCode()).isEqualTo(code);
            assertThat(e.getStatus().getDescription()).contains(message);
        });
    }

    @Test
    void badDigestLengths() {
        ByteString shortDigest = ByteString.copyFrom(new byte[31]);
        assertStatus(() -> blobs.stat(StatBlobRequest.newBuilder().setDigest(shortDigest).build()),
                Status.Code.INVALID_ARGUMENT, "digest must be 32 bytes, got 31");
        assertStatus(() -> blobs.read(ReadBlobRequest.newBuilder().setDigest(ByteString.EMPTY).build()).hasNext(),
                Status.Code.INVALID_ARGUMENT, "digest must be 32 bytes, got 0");
        var getDirs = DirectoryServiceGrpc.newBlockingStub(server.raw()).withDeadlineAfter(10, TimeUnit.SECONDS);
        assertStatus(() -> getDirs.get(GetDirectoryRequest.newBuilder().setDigest(ByteString.copyFrom(new byte[33])).build()).hasNext(),
                Status.Code.INVALID_ARGUMENT, "digest must be 32 bytes, got 33");
        assertStatus(() -> getDirs.get(GetDirectoryRequest.getDefaultInstance()).hasNext(),
                Status.Code.INVALID_ARGUMENT, "digest not set");
        var chunked = ChunkedBlobServiceGrpc.newBlockingStub(server.raw()).withDeadlineAfter(10, TimeUnit.SECONDS);
        assertStatus(() -> chunked.hasChunks(HasChunksRequest.newBuilder()
                        .addDigests(Blake3.digest(new byte[0]).toByteString()).addDigests(shortDigest).build()),
                Status.Code.INVALID_ARGUMENT, "digests[1] must be 32 bytes");
        var roots = RootServiceGrpc.newBlockingStub(server.raw()).withDeadlineAfter(10, TimeUnit.SECONDS);
        assertStatus(() -> roots.get(GetRootRequest.newBuilder().setName(ByteString.copyFromUtf8("a/b")).build()),
                Status.Code.INVALID_ARGUMENT, "contains '/'");
        assertStatus(() -> roots.put(PutRootRequest.newBuilder().setRoot(castore.proto.Node.newBuilder()
                        .setFile(castore.proto.FileNode.newBuilder().setName(ByteString.copyFromUtf8("f")).setDigest(shortDigest))).build()),
                Status.Code.INVALID_ARGUMENT, "invalid digest length 31");
    }

    @Test
    void missingObjectsAreNotFound() {
        ByteString absent = Blake3.digest(new byte[] {9}).toByteString();
        assertStatus(() -> blobs.stat(StatBlobRequest.newBuilder().setDigest(absent).build()), Status.Code.NOT_FOUND, "not found");
        assertStatus(() -> blobs.read(ReadBlobRequest.newBuilder().setDigest(absent).build()).hasNext(), Status.Code.NOT_FOUND, "not found");
        var getDirs = DirectoryServiceGrpc.newBlockingStub(server.raw()).withDeadlineAfter(10, TimeUnit.SECONDS);
        for (boolean recursive : new boolean[] {false, true}) {
            assertStatus(() -> getDirs.get(GetDirectoryRequest.newBuilder().setDigest(absent).setRecursive(recursive).build()).hasNext(),
                    Status.Code.NOT_FOUND, "not found");
        }
        // A name is echoed escaped, as every message does (it used to go out raw, control characters and all).
        var roots = RootServiceGrpc.newBlockingStub(server.raw()).withDeadlineAfter(10, TimeUnit.SECONDS);
        assertStatus(() -> roots.get(GetRootRequest.newBuilder().setName(ByteString.copyFrom(new byte[] {'n', '\n', (byte) 0xff})).build()),
                Status.Code.NOT_FOUND, "no root named 'n\\n\\xff'");
    }

    @Test
    void statSendsChunksOnlyWhenAsked() throws Exception {
        B3Digest digest = TestData.put(server.backing.blobs(), TestData.random(1, 1000));
        StatBlobResponse plain = blobs.stat(StatBlobRequest.newBuilder().setDigest(digest.toByteString()).build());
        assertThat(plain.getChunksCount()).isZero();
        StatBlobResponse withChunks = blobs.stat(StatBlobRequest.newBuilder().setDigest(digest.toByteString()).setSendChunks(true).build());
        assertThat(withChunks.getChunksList()).singleElement().satisfies(c -> {
            assertThat(c.getDigest()).isEqualTo(digest.toByteString());
            assertThat(c.getSize()).isEqualTo(1000);
        });
    }

    /** Sends Directories as one Put stream; returns the status it ended with (OK with the response). */
    private Status putClosure(List<castore.proto.Directory> closure) throws Exception {
        var done = new CompletableFuture<Status>();
        StreamObserver<castore.proto.Directory> requests = directories.put(ending(done));
        closure.forEach(requests::onNext);
        requests.onCompleted();
        return done.get(10, TimeUnit.SECONDS);
    }

    private void assertRejected(List<castore.proto.Directory> closure, Status.Code code, String message) throws Exception {
        Status status = putClosure(closure);
        assertThat(status.getCode()).isEqualTo(code);
        assertThat(status.getDescription()).contains(message);
        var stored = (castore.service.memory.MemoryDirectoryService) server.backing.directories();
        assertThat(stored.count()).as("nothing of a rejected closure is stored").isZero();
    }

    private static final Directory LEAF = Directory.builder().add("f", new FileNode(Blake3.digest(new byte[0]), 0, false)).build();
    private static final Directory PARENT = Directory.builder().add("leaf", LEAF.toNode()).add("l", SymlinkNode.of("t")).build();
    private static final Directory ROOT = Directory.builder().add("p", PARENT.toNode()).build();

    @Test
    void closuresOutOfOrderDanglingOrDisconnectedAreRejected() throws Exception {
        assertRejected(List.of(ROOT.toProto(), PARENT.toProto(), LEAF.toProto()), Status.Code.INVALID_ARGUMENT,
                "neither sent before it nor is stored");
        assertRejected(List.of(LEAF.toProto(), ROOT.toProto()), Status.Code.INVALID_ARGUMENT, "neither sent before it nor is stored");
        Directory other = Directory.builder().add("x", SymlinkNode.of("y")).build();
        assertRejected(List.of(other.toProto(), LEAF.toProto(), PARENT.toProto(), ROOT.toProto()), Status.Code.INVALID_ARGUMENT,
                "not reachable from the root");
        Directory wrongSize = Directory.builder().add("leaf", new DirectoryNode(LEAF.digest(), 7)).build();
        assertRejected(List.of(LEAF.toProto(), wrongSize.toProto()), Status.Code.INVALID_ARGUMENT, "has size 7, but it has size 1");
        assertRejected(List.of(), Status.Code.INVALID_ARGUMENT, "empty Directory closure");
        assertThat(putClosure(List.of(LEAF.toProto(), PARENT.toProto(), ROOT.toProto()))).isEqualTo(Status.OK);
    }

    @Test
    void invalidDirectoriesAreRejected() throws Exception {
        var unsorted = castore.proto.Directory.newBuilder()
                .addSymlinks(castore.proto.SymlinkNode.newBuilder().setName(ByteString.copyFromUtf8("b")).setTarget(ByteString.copyFromUtf8("t")))
                .addSymlinks(castore.proto.SymlinkNode.newBuilder().setName(ByteString.copyFromUtf8("a")).setTarget(ByteString.copyFromUtf8("t")))
                .build();
        assertRejected(List.of(unsorted), Status.Code.INVALID_ARGUMENT, "not sorted");
        var dotName = castore.proto.Directory.newBuilder()
                .addSymlinks(castore.proto.SymlinkNode.newBuilder().setName(ByteString.copyFromUtf8("..")).setTarget(ByteString.copyFromUtf8("t")))
                .build();
        assertRejected(List.of(dotName), Status.Code.INVALID_ARGUMENT, "reserved");
        var unknownField = LEAF.toProto().toBuilder()
                .setUnknownFields(UnknownFieldSet.newBuilder().addField(9, UnknownFieldSet.Field.newBuilder().addVarint(1).build()).build())
                .build();
        assertRejected(List.of(unknownField), Status.Code.INVALID_ARGUMENT, "unknown fields");
        var badDigest = castore.proto.Directory.newBuilder()
                .addFiles(castore.proto.FileNode.newBuilder().setName(ByteString.copyFromUtf8("f")).setDigest(ByteString.copyFrom(new byte[5])))
                .build();
        assertRejected(List.of(badDigest), Status.Code.INVALID_ARGUMENT, "invalid digest length 5");
    }

    @Test
    void oversizeMessagesAreRefused() throws Exception {
        var done = new CompletableFuture<Status>();
        StreamObserver<BlobChunk> put = BlobServiceGrpc.newStub(server.raw()).put(ending(done));
        put.onNext(BlobChunk.newBuilder().setData(ByteString.copyFrom(new byte[castore.grpc.MessageLimit.BYTES + (1 << 20)])).build());
        put.onCompleted();
        assertThat(done.get(10, TimeUnit.SECONDS).getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
        assertThat(((castore.service.memory.MemoryBlobService) server.backing.blobs()).has(Blake3.digest(new byte[castore.grpc.MessageLimit.BYTES + (1 << 20)]))).isFalse();
    }

    @Test
    void putChunkedChecksItsParts() throws Exception {
        byte[] data = TestData.random(3, 1000);
        B3Digest stored = TestData.put(server.backing.blobs(), data);
        B3Digest wrong = Blake3.digest(new byte[] {1});
        assertThat(putChunked(List.of(
                PutChunkedRequest.newBuilder().setData(ByteString.copyFrom(data)).build(),
                PutChunkedRequest.newBuilder().setBlobDigest(wrong.toByteString()).build())))
                .satisfies(s -> assertThat(s.getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT))
                .satisfies(s -> assertThat(s.getDescription()).contains("not " + wrong));
        assertThat(putChunked(List.of(PutChunkedRequest.newBuilder().setData(ByteString.copyFrom(data)).build())).getDescription())
                .contains("without blob_digest");
        assertThat(putChunked(List.of(PutChunkedRequest.newBuilder().setChunk(StatBlobResponse.ChunkMeta.newBuilder()
                        .setDigest(wrong.toByteString()).setSize(1)).build())).getCode())
                .isEqualTo(Status.Code.NOT_FOUND);
        assertThat(putChunked(List.of(PutChunkedRequest.newBuilder().setChunk(StatBlobResponse.ChunkMeta.newBuilder()
                        .setDigest(stored.toByteString()).setSize(999)).build())).getDescription())
                .contains("has size 1000, not 999");
        assertThat(putChunked(List.of(PutChunkedRequest.getDefaultInstance())).getDescription()).contains("no part set");
        // A reference to a stored chunk plus new data makes a new blob.
        byte[] tail = TestData.random(4, 10);
        byte[] whole = new byte[1010];
        System.arraycopy(data, 0, whole, 0, 1000);
        System.arraycopy(tail, 0, whole, 1000, 10);
        assertThat(putChunked(List.of(
                PutChunkedRequest.newBuilder().setChunk(StatBlobResponse.ChunkMeta.newBuilder().setDigest(stored.toByteString()).setSize(1000)).build(),
                PutChunkedRequest.newBuilder().setData(ByteString.copyFrom(tail)).build(),
                PutChunkedRequest.newBuilder().setBlobDigest(Blake3.digest(whole).toByteString()).build())))
                .isEqualTo(Status.OK);
        assertThat(server.backing.blobs().has(Blake3.digest(whole))).isTrue();
    }

    @Test
    void putBlobsStoresEachWholeBlobAndStopsAtAWrongDigest() throws Exception {
        byte[] a = TestData.random(20, 3000);
        byte[] b = TestData.random(21, 2000);
        byte[] c = TestData.random(22, 1000);
        var done = new CompletableFuture<Status>();
        StreamObserver<castore.grpc.proto.PutBlobsRequest> put = ChunkedBlobServiceGrpc.newStub(server.raw()).putBlobs(ending(done));
        put.onNext(castore.grpc.proto.PutBlobsRequest.newBuilder().setData(ByteString.copyFrom(a)).setDigest(Blake3.digest(a).toByteString()).build());
        put.onNext(castore.grpc.proto.PutBlobsRequest.newBuilder().setData(ByteString.copyFrom(b)).setDigest(Blake3.digest(c).toByteString()).build());
        put.onNext(castore.grpc.proto.PutBlobsRequest.newBuilder().setData(ByteString.copyFrom(c)).setDigest(Blake3.digest(c).toByteString()).build());
        put.onCompleted();
        Status status = done.get(10, TimeUnit.SECONDS);
        assertThat(status.getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
        assertThat(status.getDescription()).isEqualTo("PutBlobs: the data sent for blob " + Blake3.digest(c) + " is blob " + Blake3.digest(b));
        assertThat(server.backing.blobs().has(Blake3.digest(a))).isTrue();
        assertThat(server.backing.blobs().has(Blake3.digest(c))).isFalse(); // after the refused one: not stored

        var missing = ChunkedBlobServiceGrpc.newBlockingStub(server.raw()).missingBlobs(HasChunksRequest.newBuilder()
                .addDigests(Blake3.digest(a).toByteString()).addDigests(Blake3.digest(c).toByteString()).build());
        assertThat(missing.getMissingList()).containsExactly(Blake3.digest(c).toByteString());
        assertStatus(() -> ChunkedBlobServiceGrpc.newBlockingStub(server.raw()).missingBlobs(HasChunksRequest.newBuilder()
                .addDigests(ByteString.copyFrom(new byte[5])).build()), Status.Code.INVALID_ARGUMENT, "digests[0]");
    }

    /** A ReadBlobs that asks for more than 32 MiB in all (or a size near 2^64) is refused before anything is read. */
    @Test
    void readBlobsAskingForTooMuchIsRefused() {
        var meta = castore.grpc.proto.StatBlobResponse.ChunkMeta.newBuilder().setDigest(Blake3.digest(new byte[] {1}).toByteString());
        for (long[] sizes : List.of(new long[] {16 << 20, 16 << 20, 1}, new long[] {1, -1})) {
            var request = castore.grpc.proto.ReadBlobsRequest.newBuilder();
            for (long size : sizes) {
                request.addBlobs(meta.setSize(size));
            }
            assertStatus(() -> ChunkedBlobServiceGrpc.newBlockingStub(server.raw()).readBlobs(request.build()).hasNext(),
                    Status.Code.INVALID_ARGUMENT, "more than 32 MiB asked for in one call");
        }
    }

    private Status putChunked(List<PutChunkedRequest> parts) throws Exception {
        var done = new CompletableFuture<Status>();
        StreamObserver<PutChunkedRequest> put = ChunkedBlobServiceGrpc.newStub(server.raw()).putChunked(ending(done));
        parts.forEach(put::onNext);
        put.onCompleted();
        return done.get(10, TimeUnit.SECONDS);
    }

    /** A response observer that completes {@code done} with the call's final status. */
    static <T> StreamObserver<T> ending(CompletableFuture<Status> done) {
        return new StreamObserver<>() {
            @Override
            public void onNext(T value) {
            }

            @Override
            public void onError(Throwable t) {
                done.complete(Status.fromThrowable(t));
            }

            @Override
            public void onCompleted() {
                done.complete(Status.OK);
            }
        };
    }
}

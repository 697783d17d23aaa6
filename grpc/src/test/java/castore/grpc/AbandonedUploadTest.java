package castore.grpc;

import static castore.grpc.RecordingBlobService.await;
import static org.assertj.core.api.Assertions.assertThat;

import castore.grpc.proto.BlobChunk;
import castore.grpc.proto.BlobServiceGrpc;
import castore.grpc.proto.DirectoryServiceGrpc;
import castore.grpc.proto.PutBlobResponse;
import castore.grpc.proto.PutDirectoryResponse;
import castore.hash.Blake3;
import castore.model.Directory;
import castore.model.SymlinkNode;
import castore.service.BlobWriter;
import castore.service.Store;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import castore.service.memory.MemoryRootService;
import com.google.protobuf.ByteString;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.StreamObserver;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A client that goes away mid-upload leaves nothing half-stored. */
class AbandonedUploadTest {
    @TempDir
    Path dir;

    private final RecordingBlobService blobs = new RecordingBlobService(new MemoryBlobService());
    private final MemoryDirectoryService directories = new MemoryDirectoryService();

    private TestServer start() throws Exception {
        return TestServer.start(TestServer.Transport.TCP, dir, new Store(blobs, directories, new MemoryRootService()), false);
    }

    /** A raw Put stream the test can cancel, as a killed client's connection would be. */
    private static <Q, R> ClientCallStreamObserver<Q> cancellable(CompletableFuture<Status> done,
            java.util.function.Function<StreamObserver<R>, StreamObserver<Q>> call) {
        var stream = new CompletableFuture<ClientCallStreamObserver<Q>>();
        StreamObserver<R> ending = MalformedRequestTest.ending(done);
        call.apply(new ClientResponseObserver<Q, R>() {
            @Override
            public void beforeStart(ClientCallStreamObserver<Q> requests) {
                stream.complete(requests);
            }

            @Override
            public void onNext(R value) {
                ending.onNext(value);
            }

            @Override
            public void onError(Throwable t) {
                ending.onError(t);
            }

            @Override
            public void onCompleted() {
                ending.onCompleted();
            }
        });
        return stream.join();
    }

    @Test
    void cancelledBlobPutStoresNothing() throws Exception {
        try (var server = start()) {
            var done = new CompletableFuture<Status>();
            ClientCallStreamObserver<BlobChunk> put = cancellable(done,
                    (StreamObserver<PutBlobResponse> r) -> BlobServiceGrpc.newStub(server.raw()).put(r));
            byte[] data = TestData.random(31, 4 << 20);
            for (int i = 0; i < 3; i++) {
                put.onNext(BlobChunk.newBuilder().setData(ByteString.copyFrom(data, i << 20, 1 << 20)).build());
            }
            await("the server received data", () -> blobs.bytesWritten.get() >= 1 << 20);
            put.cancel("client killed", null);
            await("the server discarded the upload", () -> blobs.discarded.get() == 1);
            assertThat(blobs.finished.get()).isZero();
            assertThat(blobs.has(Blake3.digest(data))).isFalse();
            assertThat(blobs.has(Blake3.digest(java.util.Arrays.copyOf(data, 3 << 20)))).isFalse();
        }
    }

    @Test
    void abandonedClientWriterStoresNothing() throws Exception {
        try (var server = start()) {
            byte[] data = TestData.random(32, 12 << 20);
            try (BlobWriter w = server.client().blobs().create()) {
                w.write(data, 0, data.length); // enough chunks to open the upload stream
                await("the server received data", () -> blobs.bytesWritten.get() > 0);
            } // closed without finish
            await("the server discarded the upload", () -> blobs.discarded.get() == 1);
            assertThat(blobs.finished.get()).isZero();
            assertThat(blobs.has(Blake3.digest(data))).isFalse();
        }
    }

    @Test
    void cancelledClosurePutStoresNothing() throws Exception {
        try (var server = start()) {
            Directory leaf = Directory.builder().add("l", SymlinkNode.of("t")).build();
            Directory middle = Directory.builder().add("leaf", leaf.toNode()).build();
            Directory root = Directory.builder().add("m", middle.toNode()).build();
            var done = new CompletableFuture<Status>();
            ClientCallStreamObserver<castore.proto.Directory> put = cancellable(done,
                    (StreamObserver<PutDirectoryResponse> r) -> DirectoryServiceGrpc.newStub(server.raw()).put(r));
            put.onNext(leaf.toProto());
            put.onNext(middle.toProto());
            put.cancel("client killed", null);
            assertThat(done.get(10, TimeUnit.SECONDS).getCode()).isEqualTo(Status.Code.CANCELLED);

            // A complete closure afterwards is stored whole, and only it.
            var putter = server.client().directories().putClosure();
            Directory other = Directory.builder().add("x", SymlinkNode.of("y")).build();
            putter.put(other);
            assertThat(putter.finish()).isEqualTo(other.digest());
            assertThat(directories.count()).isEqualTo(1);
            assertThat(directories.has(root.digest()) || directories.has(middle.digest()) || directories.has(leaf.digest())).isFalse();
        }
    }
}

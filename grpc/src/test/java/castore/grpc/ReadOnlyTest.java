package castore.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.grpc.proto.BlobChunk;
import castore.grpc.proto.BlobServiceGrpc;
import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.Name;
import castore.model.SymlinkNode;
import castore.service.Store;
import com.google.protobuf.ByteString;
import io.grpc.Status;
import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** --read-only: every write is refused with PERMISSION_DENIED, reads work. */
class ReadOnlyTest {
    @TempDir
    Path dir;

    @Test
    void writesAreRefusedReadsWork() throws Exception {
        Store backing = TestServer.memoryStore();
        byte[] data = TestData.random(51, 3000);
        B3Digest blob = TestData.put(backing.blobs(), data);
        Directory d = Directory.builder().add("s", SymlinkNode.of("t")).build();
        backing.directories().put(d);
        backing.roots().put(Name.of("r"), d.toNode());
        try (var server = TestServer.start(TestServer.Transport.UNIX, dir, backing, true)) {
            Store client = server.client();
            assertThat(TestData.readAll(client.blobs(), blob)).isEqualTo(data);
            assertThat(client.directories().get(d.digest())).contains(d);
            assertThat(client.roots().get(Name.of("r"))).contains(d.toNode());

            byte[] other = TestData.random(52, 3000);
            assertThatThrownBy(() -> TestData.put(client.blobs(), other))
                    .isInstanceOf(IOException.class).hasMessageContaining("read-only daemon");
            Directory d2 = Directory.builder().add("x", SymlinkNode.of("y")).build();
            assertThatThrownBy(() -> client.directories().put(d2))
                    .isInstanceOf(IOException.class).hasMessageContaining("read-only daemon");
            assertThatThrownBy(() -> client.roots().put(Name.of("s"), d.toNode()))
                    .isInstanceOf(IOException.class).hasMessageContaining("read-only daemon");
            assertThatThrownBy(() -> client.roots().remove(Name.of("r")))
                    .isInstanceOf(IOException.class).hasMessageContaining("read-only daemon");

            var done = new CompletableFuture<Status>();
            var put = BlobServiceGrpc.newStub(server.raw()).put(MalformedRequestTest.ending(done));
            put.onNext(BlobChunk.newBuilder().setData(ByteString.copyFrom(other)).build());
            put.onCompleted();
            assertThat(done.get(10, TimeUnit.SECONDS).getCode()).isEqualTo(Status.Code.PERMISSION_DENIED);

            assertThat(backing.blobs().has(Blake3.digest(other))).isFalse();
            assertThat(backing.directories().has(d2.digest())).isFalse();
            assertThat(backing.roots().get(Name.of("r"))).contains(d.toNode());
            assertThat(backing.roots().get(Name.of("s"))).isEmpty();
        }
    }
}

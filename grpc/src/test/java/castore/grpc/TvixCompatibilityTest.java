package castore.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.grpc.server.TestServices;
import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.Name;
import castore.model.SymlinkNode;
import castore.service.ForwardingBlobService;
import castore.service.Store;
import castore.service.Stores;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import castore.service.BlobService;
import castore.service.ChunkMeta;
import java.io.IOException;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * Against a server with only tvix's two services (no RootService, no ChunkedBlobService) and,
 * like some tvix backends, no chunk lists in Stat: the client falls back to plain Put and to
 * whole-blob reads.
 */
class TvixCompatibilityTest {

    /** A backend that, like some of tvix's, knows no chunks: Stat then answers with an empty list. */
    private static BlobService withoutChunkLists(BlobService blobs) {
        return new ForwardingBlobService(blobs) {
            @Override
            public Optional<List<ChunkMeta>> chunks(B3Digest digest) throws IOException {
                return blobs.has(digest) ? Optional.of(List.of()) : Optional.empty();
            }
        };
    }

    @Test
    void uploadsWithPutAndReadsWholeBlobs() throws Exception {
        var backingBlobs = new MemoryBlobService();
        var backingDirectories = new MemoryDirectoryService();
        try (var server = FakeServer.start(TestServices.blobs(withoutChunkLists(backingBlobs)), TestServices.directories(backingDirectories));
             Store client = Stores.open(server.address(), TestServer.CLIENT_OPTIONS)) {
            byte[] data = TestData.random(21, 3 * 1024 * 1024 + 5);
            B3Digest digest = TestData.put(client.blobs(), data);
            assertThat(digest).isEqualTo(Blake3.digest(data));
            assertThat(backingBlobs.has(digest)).isTrue();
            assertThat(TestData.readAll(client.blobs(), digest)).isEqualTo(data);
            assertThat(client.blobs().chunks(digest).orElseThrow()).singleElement()
                    .satisfies(c -> assertThat(c.size()).isEqualTo(data.length));
            assertThat(client.blobs().hasChunk(digest)).isTrue();

            Directory d = Directory.builder().add("s", SymlinkNode.of("t")).build();
            assertThat(client.directories().put(d)).isEqualTo(d.digest());
            assertThat(client.directories().get(d.digest())).contains(d);

            assertThatThrownBy(() -> client.roots().get(Name.of("x")))
                    .isInstanceOf(IOException.class).hasMessageContaining("UNIMPLEMENTED");
        }
    }
}

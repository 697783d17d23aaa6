package castore.grpc;

import static org.assertj.core.api.Assertions.assertThat;

import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.service.BlobWriter;
import castore.service.Store;
import castore.service.memory.MemoryDirectoryService;
import castore.service.memory.MemoryRootService;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Uploads send only the chunks the server lacks. */
class ChunkedUploadTest {
    @TempDir
    Path dir;

    private static long upload(Store client, byte[] data) throws Exception {
        try (BlobWriter w = client.blobs().create()) {
            w.write(data, 0, data.length);
            assertThat(w.finish()).isEqualTo(Blake3.digest(data));
            return w.bytesStored();
        }
    }

    @Test
    void onlyMissingChunksAreSent() throws Exception {
        var chunking = new ChunkingBlobService();
        try (var server = TestServer.start(TestServer.Transport.TCP, dir,
                new Store(chunking, new MemoryDirectoryService(), new MemoryRootService()), false)) {
            Store client = server.client();
            byte[] original = TestData.random(11, 6 * 1024 * 1024);
            assertThat(upload(client, original)).isEqualTo(original.length);
            long stored = chunking.newChunkBytes.get();

            // The same content again: one Stat, nothing sent.
            assertThat(upload(client, original)).isZero();

            // A few bytes changed in the middle: only the chunks around them travel.
            byte[] edited = original.clone();
            for (int i = 0; i < 100; i++) {
                edited[3 * 1024 * 1024 + i] ^= 0x5a;
            }
            long sent = upload(client, edited);
            assertThat(sent).isPositive().isLessThanOrEqualTo(2L * 512 * 1024);
            assertThat(chunking.newChunkBytes.get() - stored).isEqualTo(sent);
            assertThat(TestData.readAll(client.blobs(), Blake3.digest(edited))).isEqualTo(edited);

            // A blob made only of chunks the server has (here: the first chunks of the original)
            // is built from references alone.
            var firstChunks = chunking.blobs.get(Blake3.digest(original)).subList(0, 3);
            int prefix = (int) firstChunks.stream().mapToLong(castore.service.ChunkMeta::size).sum();
            byte[] head = java.util.Arrays.copyOf(original, prefix);
            assertThat(upload(client, head)).isZero();
            B3Digest headDigest = Blake3.digest(head);
            assertThat(chunking.has(headDigest)).isTrue();
            assertThat(TestData.readAll(client.blobs(), headDigest)).isEqualTo(head);
        }
    }

    @Test
    void chunksOfZerosAreNamedRight() throws Exception {
        var chunking = new ChunkingBlobService();
        try (var server = TestServer.start(TestServer.Transport.TCP, dir,
                new Store(chunking, new MemoryDirectoryService(), new MemoryRootService()), false)) {
            Store client = server.client();
            byte[] data = new byte[(8 << 20) + 3]; // zeros (a hole), data, zeros to an odd end
            System.arraycopy(TestData.random(12, 1 << 20), 0, data, 3 << 20, 1 << 20);
            upload(client, data);
            for (var chunk : chunking.blobs.get(Blake3.digest(data))) {
                assertThat(chunking.hasChunk(chunk.digest())).isTrue();
            }
            // Again: every chunk goes as a reference by the digest the client gave it, and the
            // server builds the blob from those, so a wrong name would make another blob.
            assertThat(upload(client, data)).isZero();
            assertThat(TestData.readAll(client.blobs(), Blake3.digest(data))).isEqualTo(data);
        }
    }

    @Test
    void smallBlobsAreCheckedBeforeSending() throws Exception {
        try (var server = TestServer.start(TestServer.Transport.UNIX, dir)) {
            byte[] small = "small".getBytes();
            assertThat(upload(server.client(), small)).isEqualTo(small.length);
            assertThat(upload(server.client(), small)).isZero();
            assertThat(upload(server.client(), new byte[0])).isZero();
            assertThat(server.backing.blobs().has(Blake3.digest(new byte[0]))).isTrue();
        }
    }
}

package castore.grpc;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.grpc.proto.BlobServiceGrpc;
import castore.grpc.proto.ReadBlobRequest;
import castore.model.B3Digest;
import castore.service.BlobReader;
import castore.service.ChunkMeta;
import castore.service.ForwardingBlobService;
import castore.service.StoreBusyException;
import castore.service.Store;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import castore.service.memory.MemoryRootService;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A Read that fails after its blob was opened closes what it opened. */
class ServerReadResourcesTest {
    @TempDir
    Path dir;

    /** Counts readers opened and closed; its chunk lists fail as a busy store's do. */
    private static final class BusyListsBlobService extends ForwardingBlobService {
        final AtomicInteger opened = new AtomicInteger();
        final AtomicInteger closed = new AtomicInteger();
        volatile boolean busy;

        BusyListsBlobService() {
            super(new MemoryBlobService());
        }

        @Override
        public Optional<BlobReader> open(B3Digest digest) throws IOException {
            return inner.open(digest).map(reader -> {
                opened.incrementAndGet();
                return new BlobReader() {
                    @Override
                    public long size() {
                        return reader.size();
                    }

                    @Override
                    public int read(long position, ByteBuffer dst) throws IOException {
                        return reader.read(position, dst);
                    }

                    @Override
                    public void close() throws IOException {
                        closed.incrementAndGet();
                        reader.close();
                    }
                };
            });
        }

        @Override
        public Optional<List<ChunkMeta>> chunks(B3Digest digest) throws IOException {
            if (busy) {
                throw new StoreBusyException("busy");
            }
            return inner.chunks(digest);
        }
    }

    @Test
    void aReadWhoseChunkListFailsClosesTheBlobItOpened() throws Exception {
        BusyListsBlobService blobs = new BusyListsBlobService();
        Store backing = new Store(blobs, new MemoryDirectoryService(), new MemoryRootService());
        try (TestServer server = TestServer.start(TestServer.Transport.TCP, dir, backing, false)) {
            B3Digest digest = TestData.put(blobs, TestData.random(1, 5000));
            blobs.busy = true;
            var stub = BlobServiceGrpc.newBlockingStub(server.raw()).withDeadlineAfter(10, TimeUnit.SECONDS);
            assertThatThrownBy(() -> stub.read(ReadBlobRequest.newBuilder().setDigest(digest.toByteString()).build()).hasNext())
                    .isInstanceOfSatisfying(StatusRuntimeException.class,
                            e -> assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE));
            assertThat(blobs.opened).hasValue(1);
            assertThat(blobs.closed).as("the reader opened before the failure").hasValue(1);
        }
    }
}

package castore.grpc.server;

import castore.grpc.proto.BlobChunk;
import castore.grpc.proto.BlobServiceGrpc;
import castore.grpc.proto.PutBlobResponse;
import castore.grpc.proto.ReadBlobRequest;
import castore.grpc.proto.StatBlobRequest;
import castore.grpc.proto.StatBlobResponse;
import castore.model.B3Digest;
import castore.service.BlobReader;
import castore.service.BlobService;
import castore.service.BlobWriter;
import castore.service.ChunkMeta;
import castore.service.CorruptedDataException;
import com.google.protobuf.UnsafeByteOperations;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Optional;

/** tvix's BlobService over any {@link BlobService}. */
final class BlobServiceImpl extends BlobServiceGrpc.BlobServiceImplBase {
    /**
     * Largest data message we send: a chunk goes in one message (tvix's chunks are at most
     * 512 KiB), longer runs are split. Well below gRPC's 4 MiB default limit of tvix clients.
     */
    static final int MAX_DATA_MESSAGE = 1 << 20;

    private final BlobService blobs;
    private final boolean readOnly;

    BlobServiceImpl(BlobService blobs, boolean readOnly) {
        this.blobs = blobs;
        this.readOnly = readOnly;
    }

    @Override
    public void stat(StatBlobRequest request, StreamObserver<StatBlobResponse> responses) {
        try {
            B3Digest digest = Statuses.digest(request.getDigest(), "digest");
            List<ChunkMeta> chunks = chunksOf(digest)
                    .orElseThrow(() -> Statuses.notFound("blob " + digest + " not found"));
            var response = StatBlobResponse.newBuilder();
            if (request.getSendChunks()) {
                for (ChunkMeta c : chunks) {
                    if (c.size() == 0) {
                        continue; // the empty blob has no chunks
                    }
                    response.addChunks(StatBlobResponse.ChunkMeta.newBuilder()
                            .setDigest(c.digest().toByteString()).setSize(c.size()));
                }
            }
            responses.onNext(response.build());
            responses.onCompleted();
        } catch (Throwable t) {
            responses.onError(Statuses.of(t));
        }
    }

    /** A blob's chunk list, or a chunk's own single-entry list (tvix lets Stat name chunks too). */
    private Optional<List<ChunkMeta>> chunksOf(B3Digest digest) throws IOException {
        Optional<List<ChunkMeta>> chunks = blobs.chunks(digest);
        if (chunks.isPresent()) {
            return chunks;
        }
        Optional<BlobReader> chunk = blobs.openChunk(digest);
        if (chunk.isEmpty()) {
            return Optional.empty();
        }
        try (BlobReader r = chunk.get()) {
            return Optional.of(List.of(new ChunkMeta(digest, r.size())));
        }
    }

    @Override
    public void read(ReadBlobRequest request, StreamObserver<BlobChunk> responses) {
        BlobReader reader = null;
        List<ChunkMeta> chunks;
        try {
            B3Digest digest = Statuses.digest(request.getDigest(), "digest");
            Optional<BlobReader> blob = blobs.open(digest);
            reader = blob.orElse(null);
            chunks = blob.isPresent() ? blobs.chunks(digest).orElse(List.of()) : List.of();
            if (blob.isEmpty()) {
                reader = blobs.openChunk(digest).orElseThrow(() -> Statuses.notFound("blob " + digest + " not found"));
            }
        } catch (Throwable t) {
            if (reader != null) {
                closeQuietly(reader); // opened, then the chunk list failed (a busy store, an I/O error)
            }
            responses.onError(Statuses.of(t));
            return;
        }
        StreamPump.run(responses, new ChunkedSource(reader, chunks));
    }

    private static void closeQuietly(BlobReader reader) {
        try {
            reader.close();
        } catch (IOException | RuntimeException ignored) {
            // the call fails with the first error
        }
    }

    /** The blob's bytes, one message per stored chunk (split if a chunk is large). */
    private static final class ChunkedSource implements StreamPump.Source<BlobChunk> {
        private final BlobReader reader;
        private final long[] boundaries;
        private int nextBoundary;
        private long position;
        /** The array the message being sent was read into, until sent() gives it back. */
        private byte[] lent;

        ChunkedSource(BlobReader reader, List<ChunkMeta> chunks) {
            this.reader = reader;
            this.boundaries = new long[chunks.size()];
            long end = 0;
            for (int i = 0; i < chunks.size(); i++) {
                end += chunks.get(i).size();
                boundaries[i] = end;
            }
        }

        @Override
        public BlobChunk next() throws IOException {
            long size = reader.size();
            if (position >= size) {
                return null;
            }
            while (nextBoundary < boundaries.length && boundaries[nextBoundary] <= position) {
                nextBoundary++;
            }
            long end = nextBoundary < boundaries.length ? Math.min(boundaries[nextBoundary], size) : size;
            int length = (int) Math.min(end - position, MAX_DATA_MESSAGE);
            byte[] data = MessageArrays.borrow(length);
            readFully(reader, position, ByteBuffer.wrap(data, 0, length));
            position += length;
            lent = data;
            return BlobChunk.newBuilder().setData(UnsafeByteOperations.unsafeWrap(data, 0, length)).build();
        }

        @Override
        public void sent() {
            MessageArrays.giveBack(lent);
            lent = null;
        }

        @Override
        public void close() {
            try {
                reader.close();
            } catch (IOException ignored) {
                // nothing more to send either way
            }
        }
    }

    /** Fills {@code dst} (from its position to its limit) with the blob's bytes from {@code position} on. */
    private static void readFully(BlobReader reader, long position, ByteBuffer dst) throws IOException {
        int start = dst.position();
        while (dst.hasRemaining()) {
            int n = reader.read(position + dst.position() - start, dst);
            if (n <= 0) {
                throw new CorruptedDataException("blob ends at " + (position + dst.position() - start) + ", before its size " + reader.size());
            }
        }
    }

    @Override
    public StreamObserver<BlobChunk> put(StreamObserver<PutBlobResponse> responses) {
        if (readOnly) {
            responses.onError(Statuses.readOnly("BlobService.Put"));
            return Uploads.ignoring();
        }
        return new Uploads.Receiver<>(responses, blobs) {
            @Override
            void accept(BlobChunk message, BlobWriter writer) throws IOException {
                for (ByteBuffer piece : message.getData().asReadOnlyByteBufferList()) {
                    writer.write(piece);
                }
            }

            @Override
            PutBlobResponse finish(BlobWriter writer) throws IOException {
                return PutBlobResponse.newBuilder().setDigest(writer.finish().toByteString()).build();
            }
        };
    }
}

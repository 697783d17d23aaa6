package castore.grpc.server;

import castore.grpc.MessageLimit;
import castore.grpc.proto.ChunkedBlobServiceGrpc;
import castore.grpc.proto.HasChunksRequest;
import castore.grpc.proto.HasChunksResponse;
import castore.grpc.proto.PutBlobResponse;
import castore.grpc.proto.PutBlobsRequest;
import castore.grpc.proto.PutBlobsResponse;
import castore.grpc.proto.PutChunkedRequest;
import castore.grpc.proto.ReadBlobsRequest;
import castore.grpc.proto.ReadBlobsResponse;
import castore.model.B3Digest;
import castore.service.BlobReader;
import castore.service.BlobService;
import castore.service.BlobWriter;
import castore.service.ChunkMeta;
import castore.service.CorruptedDataException;
import castore.service.NotFoundException;
import com.google.protobuf.UnsafeByteOperations;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Optional;

/** castore.v1.ChunkedBlobService: uploads that send only the chunks the server lacks. */
final class ChunkedBlobServiceImpl extends ChunkedBlobServiceGrpc.ChunkedBlobServiceImplBase {
    static final int MAX_DIGESTS_PER_REQUEST = MessageLimit.DIGESTS_PER_REQUEST;
    /** A referenced chunk is copied into the new blob in pieces of this size. */
    private static final int COPY_PIECE = 1 << 20;

    private final BlobService blobs;
    private final boolean readOnly;

    ChunkedBlobServiceImpl(BlobService blobs, boolean readOnly) {
        this.blobs = blobs;
        this.readOnly = readOnly;
    }

    @Override
    public void hasChunks(HasChunksRequest request, StreamObserver<HasChunksResponse> responses) {
        answerMissing("HasChunks", request, responses, blobs::hasChunk);
    }

    @Override
    public void missingBlobs(HasChunksRequest request, StreamObserver<HasChunksResponse> responses) {
        answerMissing("MissingBlobs", request, responses, blobs::has);
    }

    private interface Check {
        boolean has(B3Digest digest) throws IOException;
    }

    /** The digests of {@code request} that {@code check} does not find, in request order. */
    private static void answerMissing(String call, HasChunksRequest request, StreamObserver<HasChunksResponse> responses, Check check) {
        try {
            if (request.getDigestsCount() > MAX_DIGESTS_PER_REQUEST) {
                throw Statuses.invalid("at most " + MAX_DIGESTS_PER_REQUEST + " digests per " + call + ", got " + request.getDigestsCount());
            }
            var response = HasChunksResponse.newBuilder();
            for (int i = 0; i < request.getDigestsCount(); i++) {
                B3Digest digest = Statuses.digest(request.getDigests(i), "digests[" + i + "]");
                if (!check.has(digest)) {
                    response.addMissing(request.getDigests(i));
                }
            }
            responses.onNext(response.build());
            responses.onCompleted();
        } catch (Throwable t) {
            responses.onError(Statuses.of(t));
        }
    }

    @Override
    public StreamObserver<PutChunkedRequest> putChunked(StreamObserver<PutBlobResponse> responses) {
        if (readOnly) {
            responses.onError(Statuses.readOnly("ChunkedBlobService.PutChunked"));
            return Uploads.ignoring();
        }
        return new Uploads.Receiver<>(responses, blobs) {
            private B3Digest claimed;

            @Override
            void accept(PutChunkedRequest part, BlobWriter writer) throws IOException {
                if (claimed != null) {
                    throw Statuses.invalid("PutChunked: blob_digest must be the last message");
                }
                switch (part.getPartCase()) {
                    case DATA -> {
                        for (ByteBuffer piece : part.getData().asReadOnlyByteBufferList()) {
                            writer.write(piece);
                        }
                    }
                    case CHUNK -> copyChunk(part.getChunk(), writer);
                    case BLOB_DIGEST -> claimed = Statuses.digest(part.getBlobDigest(), "blob_digest");
                    case PART_NOT_SET -> throw Statuses.invalid("PutChunked: message with no part set");
                }
            }

            @Override
            PutBlobResponse finish(BlobWriter writer) throws IOException {
                if (claimed == null) {
                    throw Statuses.invalid("PutChunked: stream ended without blob_digest");
                }
                // The writer hashes what it stores: a lying client can only store a valid blob
                // under its true digest, and is told.
                B3Digest actual = writer.finish();
                if (!actual.equals(claimed)) {
                    throw Statuses.invalid("PutChunked: the parts sent make blob " + actual + ", not " + claimed);
                }
                return PutBlobResponse.newBuilder().setDigest(actual.toByteString()).build();
            }
        };
    }

    /** Blobs one ReadBlobs may ask for. */
    static final int MAX_READ_BLOBS = 1024;
    private static final long MAX_READ_BLOBS_BYTES = MessageLimit.READ_BLOBS_BYTES;

    /**
     * Many small blobs in one call, one message each, in request order; a blob absent, or of
     * another size than asked, is left out (the client then reads it the usual way).
     */
    @Override
    public void readBlobs(ReadBlobsRequest request, StreamObserver<ReadBlobsResponse> responses) {
        try {
            if (request.getBlobsCount() > MAX_READ_BLOBS) {
                throw Statuses.invalid("at most " + MAX_READ_BLOBS + " blobs per ReadBlobs, got " + request.getBlobsCount());
            }
            long total = 0;
            for (var asked : request.getBlobsList()) {
                total += Math.min(asked.getSize(), MAX_READ_BLOBS_BYTES + 1); // no overflow from sizes near 2^64
                if (asked.getSize() < 0 || total > MAX_READ_BLOBS_BYTES) {
                    throw Statuses.invalid("ReadBlobs: more than " + (MAX_READ_BLOBS_BYTES >> 20) + " MiB asked for in one call");
                }
            }
            for (int i = 0; i < request.getBlobsCount(); i++) {
                var asked = request.getBlobs(i);
                B3Digest digest = Statuses.digest(asked.getDigest(), "blobs[" + i + "].digest");
                if (asked.getSize() > MAX_PUT_BLOBS_BLOB) {
                    throw Statuses.invalid("ReadBlobs: blob " + digest + " of " + Long.toUnsignedString(asked.getSize())
                            + " bytes, more than the " + (MAX_PUT_BLOBS_BLOB >> 20) + " MiB a ReadBlobs message may carry");
                }
                Optional<byte[]> data;
                try {
                    data = blobs.readChunk(new ChunkMeta(digest, asked.getSize()));
                } catch (CorruptedDataException | NotFoundException e) {
                    // Another size, or damaged: left out, and the client's own read of it
                    // gets the error (DATA_LOSS for damage) without failing the others.
                    continue;
                }
                if (data.isPresent()) {
                    responses.onNext(ReadBlobsResponse.newBuilder().setDigest(asked.getDigest())
                            .setData(UnsafeByteOperations.unsafeWrap(data.get())).build());
                }
            }
            responses.onCompleted();
        } catch (Throwable t) {
            responses.onError(Statuses.of(t));
        }
    }

    /** Largest blob a PutBlobs message may carry: they are an import's small files. */
    static final int MAX_PUT_BLOBS_BLOB = 16 << 20;

    /**
     * Many small blobs in one call: each message is stored on its own as it arrives (a writer,
     * hashed, finished), so a call cut short leaves whole blobs or none of each, never a part.
     * The first message whose digest is not the data's fails the call; the blobs before it stay.
     */
    @Override
    public StreamObserver<PutBlobsRequest> putBlobs(StreamObserver<PutBlobsResponse> responses) {
        if (readOnly) {
            responses.onError(Statuses.readOnly("ChunkedBlobService.PutBlobs"));
            return Uploads.ignoring();
        }
        return new StreamObserver<>() {
            private long stored;
            private boolean failed;

            @Override
            public void onNext(PutBlobsRequest message) {
                if (failed) {
                    return;
                }
                try {
                    B3Digest claimed = Statuses.digest(message.getDigest(), "blobs[" + stored + "].digest");
                    if (message.getData().size() > MAX_PUT_BLOBS_BLOB) {
                        throw Statuses.invalid("PutBlobs: blob " + claimed + " has " + message.getData().size()
                                + " bytes, more than the " + (MAX_PUT_BLOBS_BLOB >> 20) + " MiB a PutBlobs message may carry");
                    }
                    B3Digest actual;
                    try (BlobWriter writer = blobs.create()) {
                        for (ByteBuffer piece : message.getData().asReadOnlyByteBufferList()) {
                            writer.write(piece);
                        }
                        actual = writer.finish();
                    }
                    if (!actual.equals(claimed)) {
                        throw Statuses.invalid("PutBlobs: the data sent for blob " + claimed + " is blob " + actual);
                    }
                    stored++;
                } catch (Throwable t) {
                    failed = true;
                    responses.onError(Statuses.of(t));
                }
            }

            @Override
            public void onError(Throwable t) {
                failed = true; // the client went away: what was stored is whole
            }

            @Override
            public void onCompleted() {
                if (!failed) {
                    responses.onNext(PutBlobsResponse.newBuilder().setStored(stored).build());
                    responses.onCompleted();
                }
            }
        };
    }

    private void copyChunk(castore.grpc.proto.StatBlobResponse.ChunkMeta ref, BlobWriter writer) throws IOException {
        B3Digest digest = Statuses.digest(ref.getDigest(), "chunk.digest");
        try (BlobReader reader = blobs.openChunk(digest)
                .orElseThrow(() -> Statuses.notFound("PutChunked: chunk " + digest + " is not stored"))) {
            if (reader.size() != ref.getSize()) {
                throw Statuses.invalid("PutChunked: chunk " + digest + " has size " + reader.size() + ", not " + Long.toUnsignedString(ref.getSize()));
            }
            byte[] buffer = new byte[(int) Math.min(COPY_PIECE, reader.size())];
            long position = 0;
            while (position < reader.size()) {
                int n = reader.read(position, ByteBuffer.wrap(buffer));
                if (n <= 0) {
                    throw new CorruptedDataException("chunk " + digest + " ends at " + position + ", before its size " + reader.size());
                }
                writer.write(buffer, 0, n);
                position += n;
            }
        }
    }
}

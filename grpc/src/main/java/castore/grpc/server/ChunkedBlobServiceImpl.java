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
import castore.hash.Blake3;
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
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;

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
        answerMissing("HasChunks", request, responses, blobs::missingChunks);
    }

    @Override
    public void missingBlobs(HasChunksRequest request, StreamObserver<HasChunksResponse> responses) {
        answerMissing("MissingBlobs", request, responses, blobs::missing);
    }

    private interface Check {
        List<B3Digest> missing(List<B3Digest> digests) throws IOException;
    }

    /**
     * The digests of {@code request} that {@code check} does not find, in request order. All of
     * them go to the store at once: a store behind a round trip per digest (S3) asks in parallel
     * or lists, and a MissingBlobs of 418 blobs to a daemon over S3Proxy, asked one by one, missed
     * the client's 5 s deadline (session 47).
     */
    private static void answerMissing(String call, HasChunksRequest request, StreamObserver<HasChunksResponse> responses, Check check) {
        try {
            if (request.getDigestsCount() > MAX_DIGESTS_PER_REQUEST) {
                throw Statuses.invalid("at most " + MAX_DIGESTS_PER_REQUEST + " digests per " + call + ", got " + request.getDigestsCount());
            }
            List<B3Digest> digests = new ArrayList<>(request.getDigestsCount());
            for (int i = 0; i < request.getDigestsCount(); i++) {
                digests.add(Statuses.digest(request.getDigests(i), "digests[" + i + "]"));
            }
            Set<B3Digest> missing = new HashSet<>(check.missing(digests));
            var response = HasChunksResponse.newBuilder();
            for (int i = 0; i < digests.size(); i++) {
                if (missing.contains(digests.get(i))) {
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

    /** Blobs of one PutBlobs call being stored at once, and the bytes they may hold. */
    static final int PUT_BLOBS_IN_FLIGHT = 16;
    static final long PUT_BLOBS_BYTES_IN_FLIGHT = 16 << 20;

    /**
     * Many small blobs in one call: each message is stored on its own (a writer, hashed,
     * finished), so a call cut short leaves whole blobs or none of each, never a part. Up to
     * {@value #PUT_BLOBS_IN_FLIGHT} are stored at once, on virtual threads, and the call is
     * answered once all are: a store with a round trip per write (S3) otherwise took them one
     * by one, and a batch of small files to a daemon over S3 with 10 ms a request missed the
     * client's timeout (session 47). A message waits for room before the next is taken, so
     * flow control holds the client back. The first blob whose digest is not the data's fails
     * the call before it is stored, and no blob after it is stored; one that cannot be stored
     * fails the call too (blobs already being stored may then still be). Blobs stored stay.
     */
    @Override
    public StreamObserver<PutBlobsRequest> putBlobs(StreamObserver<PutBlobsResponse> responses) {
        if (readOnly) {
            responses.onError(Statuses.readOnly("ChunkedBlobService.PutBlobs"));
            return Uploads.ignoring();
        }
        return new StreamObserver<>() {
            private final StoresInFlight inFlight = new StoresInFlight(PUT_BLOBS_IN_FLIGHT, PUT_BLOBS_BYTES_IN_FLIGHT);
            private final AtomicReference<Throwable> failure = new AtomicReference<>();
            private long received;
            /** Whether the call has ended: answered with an error, or abandoned by the client. */
            private boolean ended;

            @Override
            public void onNext(PutBlobsRequest message) {
                if (ended || failedNow()) {
                    return;
                }
                try {
                    B3Digest claimed = Statuses.digest(message.getDigest(), "blobs[" + received + "].digest");
                    received++;
                    int size = message.getData().size();
                    if (size > MAX_PUT_BLOBS_BLOB) {
                        throw Statuses.invalid("PutBlobs: blob " + claimed + " has " + size
                                + " bytes, more than the " + (MAX_PUT_BLOBS_BLOB >> 20) + " MiB a PutBlobs message may carry");
                    }
                    // A copy: the message's buffers are gRPC's, and this blob is stored after onNext returns.
                    byte[] data = message.getData().toByteArray();
                    // Checked before it is stored, so that no blob after a wrong one is stored (the
                    // store hashes it again as it writes: the price of that rule for small blobs).
                    B3Digest actual = Blake3.digest(data);
                    if (!actual.equals(claimed)) {
                        throw Statuses.invalid("PutBlobs: the data sent for blob " + claimed + " is blob " + actual);
                    }
                    inFlight.enter(size);
                    Thread.ofVirtual().name("castore-put-blobs").start(() -> {
                        try {
                            store(data);
                        } catch (Throwable t) {
                            failure.compareAndSet(null, t);
                        } finally {
                            inFlight.leave(size);
                        }
                    });
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                    failedNow();
                }
            }

            /** Answers the call with the first failure, once; true if it has failed. */
            private boolean failedNow() {
                Throwable t = failure.get();
                if (t != null && !ended) {
                    ended = true;
                    responses.onError(Statuses.of(t));
                }
                return t != null;
            }

            @Override
            public void onError(Throwable t) {
                ended = true; // the client went away: the blobs being stored are stored whole
            }

            @Override
            public void onCompleted() {
                try {
                    inFlight.awaitNone();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    failure.compareAndSet(null, e);
                }
                if (!failedNow() && !ended) {
                    ended = true;
                    // No failure: every blob received is stored.
                    responses.onNext(PutBlobsResponse.newBuilder().setStored(received).build());
                    responses.onCompleted();
                }
            }
        };
    }

    /** Stores one PutBlobs blob, whose digest was checked as it arrived. */
    private void store(byte[] data) throws IOException {
        try (BlobWriter writer = blobs.create()) {
            writer.write(data, 0, data.length);
            writer.finish();
        }
    }

    /**
     * At most {@code count} stores at once holding at most {@code bytes} (a larger one goes
     * alone): what one call's stores may hold of the daemon's memory.
     */
    static final class StoresInFlight {
        private final int maxCount;
        private final long maxBytes;
        private int count;
        private long bytes;

        StoresInFlight(int maxCount, long maxBytes) {
            this.maxCount = maxCount;
            this.maxBytes = maxBytes;
        }

        synchronized void enter(long size) throws InterruptedException {
            while (count >= maxCount || (count > 0 && bytes + size > maxBytes)) {
                wait();
            }
            count++;
            bytes += size;
        }

        synchronized void leave(long size) {
            count--;
            bytes -= size;
            notifyAll();
        }

        synchronized void awaitNone() throws InterruptedException {
            while (count > 0) {
                wait();
            }
        }
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

package castore.grpc.client;

import castore.grpc.proto.ChunkedBlobServiceGrpc;
import castore.grpc.proto.HasChunksRequest;
import castore.grpc.proto.PutBlobsRequest;
import castore.grpc.proto.PutBlobsResponse;
import castore.model.B3Digest;
import castore.model.InvalidDataException;
import castore.service.CorruptedDataException;
import com.google.protobuf.UnsafeByteOperations;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCalls;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The deferred uploads of small blobs (at most one chunk) to a castore daemon: gathered into
 * batches of up to {@value #MAX_BLOBS} blobs or {@value #MAX_BYTES} bytes, each asked about in
 * one MissingBlobs call and the missing ones sent in one PutBlobs stream, on a virtual thread
 * while the writers go on. Uploading file by file cost a Stat, a HasChunks and a PutChunked
 * per new file, and an import of 54,000 files to a daemon on loopback took 65 s where the local
 * store takes 1.5 s (docs/grpc.md, "Uploads in batches"). At most {@value #MAX_IN_FLIGHT}
 * batches are in flight; a writer that fills another waits for one to end, which bounds the
 * memory held to about ({@value #MAX_IN_FLIGHT} + 1) x {@value #MAX_BYTES} bytes.
 */
final class SmallBlobUploads {
    static final int MAX_BLOBS = 1024;
    static final long MAX_BYTES = 8 << 20;
    static final int MAX_IN_FLIGHT = 2;

    private record Blob(B3Digest digest, byte[] data) {
    }

    private final Connection connection;
    private final RemoteBlobService blobs;
    private final Semaphore inFlight = new Semaphore(MAX_IN_FLIGHT);
    private final AtomicLong bytesStored = new AtomicLong();
    private Map<B3Digest, byte[]> batch = new LinkedHashMap<>();
    private long batchBytes;
    /**
     * The first failure of a batch, thrown by every add until the next flush, which throws it
     * and forgets it (a new import starts clean). Not guarded by this object's
     * lock: an add waiting in {@link #send} for a batch to end holds that lock, and the failing
     * batch must still be able to record its failure and end.
     */
    private final AtomicReference<IOException> failure = new AtomicReference<>();
    /** Whether the server lacks MissingBlobs/PutBlobs (an older castore daemon): blobs then go one by one. */
    private volatile boolean oneByOne;

    SmallBlobUploads(Connection connection, RemoteBlobService blobs) {
        this.connection = connection;
        this.blobs = blobs;
    }

    /** Takes a finished small blob; it is stored by the time {@link #flush} returns. */
    synchronized void add(B3Digest digest, byte[] data) throws IOException {
        IOException failed = failure.get(); // kept for flush, which must not succeed after it
        if (failed != null) {
            throw failed;
        }
        if (batch.putIfAbsent(digest, data) == null) { // the same content twice in a batch goes once
            batchBytes += data.length;
        }
        if (batch.size() >= MAX_BLOBS || batchBytes >= MAX_BYTES) {
            send();
        }
    }

    /** Sends what is gathered, waits for every batch to end, and returns the bytes they stored. */
    long flush() throws IOException {
        synchronized (this) {
            if (!batch.isEmpty()) {
                send();
            }
        }
        try {
            inFlight.acquire(MAX_IN_FLIGHT);
            inFlight.release(MAX_IN_FLIGHT);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted waiting for uploads to " + connection.address);
        }
        IOException failed = failure.getAndSet(null); // the blobs of that batch are not all stored
        if (failed != null) {
            throw failed;
        }
        return bytesStored.getAndSet(0);
    }

    /** Hands the batch to a virtual thread, once fewer than MAX_IN_FLIGHT are running (the caller holds the lock). */
    private void send() throws IOException {
        List<Blob> sending = new ArrayList<>(batch.size());
        batch.forEach((digest, data) -> sending.add(new Blob(digest, data)));
        batch = new LinkedHashMap<>();
        batchBytes = 0;
        try {
            inFlight.acquire();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted waiting for uploads to " + connection.address);
        }
        Thread.ofVirtual().name("castore-upload").start(() -> {
            try {
                bytesStored.addAndGet(upload(sending));
            } catch (IOException | RuntimeException e) {
                failure.compareAndSet(null, e instanceof IOException io ? io : new IOException(e.getMessage(), e));
            } finally {
                inFlight.release();
            }
        });
    }

    /** Asks which blobs the server lacks and sends those; returns their bytes. */
    private long upload(List<Blob> sending) throws IOException {
        if (!oneByOne) {
            try {
                return uploadBatch(sending);
            } catch (StatusRuntimeException e) {
                if (e.getStatus().getCode() != Status.Code.UNIMPLEMENTED) {
                    throw Failures.of(e, connection, "upload " + sending.size() + " blobs");
                }
                oneByOne = true; // a daemon from before PutBlobs
            }
        }
        long stored = 0;
        for (Blob blob : sending) {
            try (ChunkedUpload upload = new ChunkedUpload(connection, blobs, null)) {
                upload.write(blob.data(), 0, blob.data().length);
                upload.finish();
                stored += upload.bytesStored();
            }
        }
        return stored;
    }

    private long uploadBatch(List<Blob> sending) throws IOException {
        var ask = HasChunksRequest.newBuilder();
        sending.forEach(b -> ask.addDigests(b.digest().toByteString()));
        var answer = ClientCalls.blockingUnaryCall(connection.channel, ChunkedBlobServiceGrpc.getMissingBlobsMethod(),
                connection.unaryOptions(), ask.build());
        Set<B3Digest> missing = new HashSet<>();
        try {
            for (var m : answer.getMissingList()) {
                missing.add(B3Digest.of(m));
            }
        } catch (InvalidDataException e) {
            throw new CorruptedDataException("MissingBlobs answer from " + connection.address + ": " + e.getMessage());
        }
        if (missing.isEmpty()) {
            return 0;
        }
        OutboundStream<PutBlobsRequest, PutBlobsResponse> stream =
                OutboundStream.open(connection, ChunkedBlobServiceGrpc.getPutBlobsMethod(), "upload blobs");
        long bytes = 0;
        int count = 0;
        try {
            for (Blob blob : sending) {
                if (missing.contains(blob.digest())) {
                    stream.send(PutBlobsRequest.newBuilder().setDigest(blob.digest().toByteString())
                            .setData(UnsafeByteOperations.unsafeWrap(blob.data())).build());
                    bytes += blob.data().length;
                    count++;
                }
            }
        } catch (IOException | RuntimeException e) {
            stream.cancel();
            throw e;
        }
        PutBlobsResponse response = stream.finish(connection.timeout.plus(Duration.ofNanos(bytes * 20)));
        if (response.getStored() != count) {
            throw new CorruptedDataException("upload to " + connection.address + ": " + count + " blobs sent, the server stored "
                    + Long.toUnsignedString(response.getStored()));
        }
        return bytes;
    }
}

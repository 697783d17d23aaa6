package castore.grpc.client;

import castore.grpc.proto.PutBlobResponse;
import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.service.BlobWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;

/**
 * What both upload strategies share: the blob is hashed here as it is written, a blob the server
 * already has is never sent (Stat at finish, before any stream was needed), the server's digest
 * must equal ours, and closing without finish cancels the stream so the server stores nothing.
 */
abstract sealed class RemoteUpload implements BlobWriter permits ChunkedUpload, StreamedUpload {
    final Connection connection;
    final RemoteBlobService blobs;
    final Blake3.Hasher whole = Blake3.newHasher();
    long size;
    private B3Digest result;
    private boolean closed;
    /** Where a deferred writer hands a blob of at most one chunk (null: stored before finish returns). */
    private final SmallBlobUploads small;

    RemoteUpload(Connection connection, RemoteBlobService blobs, SmallBlobUploads small) {
        this.connection = connection;
        this.blobs = blobs;
        this.small = small;
    }

    /** The whole blob, if it is at most one chunk and nothing of it was sent yet; else null. */
    abstract byte[] wholeIfSmall();

    /** Takes more bytes (and hashes them into {@link #whole}). */
    abstract void append(ByteBuffer data) throws IOException;

    /** Whether a stream has been opened (then the blob is known to be absent). */
    abstract boolean streaming();

    /** Sends the rest, ends the stream and returns the server's answer. */
    abstract PutBlobResponse upload(B3Digest digest) throws IOException;

    /** Cancels the stream, if any. */
    abstract void abandon();

    @Override
    public final void write(ByteBuffer data) throws IOException {
        if (result != null || closed) {
            throw new IOException("blob writer already finished or closed");
        }
        append(data);
    }

    /** No more data: the digest of everything written. */
    abstract B3Digest digest() throws IOException;

    @Override
    public final B3Digest finish() throws IOException {
        if (result != null) {
            return result;
        }
        if (closed) {
            throw new IOException("blob writer closed");
        }
        B3Digest digest = digest();
        byte[] whole = small == null ? null : wholeIfSmall();
        if (whole != null) { // asked about and sent with others (BlobService.createDeferred)
            small.add(digest, whole);
            result = digest;
            return digest;
        }
        if (!streaming() && blobs.has(digest)) {
            result = digest;
            return digest;
        }
        RemoteBlobService.checkStored(connection, upload(digest), digest);
        result = digest;
        return digest;
    }

    /** How long to wait for the answer to a finished upload: the server hashes (and re-reads) it all. */
    Duration answerWait() {
        return connection.timeout.plus(Duration.ofNanos(size * 20)); // 50 MB/s beyond the timeout
    }

    @Override
    public final long size() {
        return size;
    }

    @Override
    public final void close() {
        if (!closed && result == null) {
            abandon();
        }
        closed = true;
    }
}

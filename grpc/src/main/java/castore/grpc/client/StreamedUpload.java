package castore.grpc.client;

import castore.grpc.proto.BlobChunk;
import castore.grpc.proto.BlobServiceGrpc;
import castore.grpc.proto.PutBlobResponse;
import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.service.BlobWriter;
import com.google.protobuf.ByteString;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;

/**
 * Uploads a blob with tvix's plain BlobService.Put, for servers without castore's
 * ChunkedBlobService. A blob that fits in the first message is held back until finish, so
 * an already stored small blob (the common case when re-importing) costs one Stat.
 */
final class StreamedUpload implements BlobWriter {
    static final int MESSAGE = 1 << 20;

    private final Connection connection;
    private final RemoteBlobService blobs;
    private final Blake3.Hasher whole = Blake3.newHasher();
    private final byte[] pending = new byte[MESSAGE];
    private int pendingLength;
    private OutboundStream<BlobChunk, PutBlobResponse> stream;
    private long size;
    private B3Digest result;
    private boolean closed;

    StreamedUpload(Connection connection, RemoteBlobService blobs) {
        this.connection = connection;
        this.blobs = blobs;
    }

    @Override
    public void write(ByteBuffer data) throws IOException {
        if (result != null || closed) {
            throw new IOException("blob writer already finished or closed");
        }
        while (data.hasRemaining()) {
            int n = Math.min(data.remaining(), pending.length - pendingLength);
            data.get(pending, pendingLength, n);
            whole.update(pending, pendingLength, n);
            pendingLength += n;
            size += n;
            if (pendingLength == pending.length) {
                sendPending();
            }
        }
    }

    private void sendPending() throws IOException {
        if (stream == null) {
            stream = OutboundStream.open(connection, BlobServiceGrpc.getPutMethod(), "upload blob");
        }
        if (pendingLength > 0) {
            stream.send(BlobChunk.newBuilder().setData(ByteString.copyFrom(pending, 0, pendingLength)).build());
            pendingLength = 0;
        }
    }

    @Override
    public B3Digest finish() throws IOException {
        if (result != null) {
            return result;
        }
        if (closed) {
            throw new IOException("blob writer closed");
        }
        B3Digest digest = whole.digest();
        if (stream == null && blobs.has(digest)) {
            result = digest;
            return digest;
        }
        sendPending();
        // The server hashes and stores everything: allow 20 ns per byte (50 MB/s) beyond the timeout.
        PutBlobResponse response = stream.finish(connection.timeout.plus(Duration.ofNanos(size * 20)));
        RemoteBlobService.checkStored(connection, response, digest);
        result = digest;
        return digest;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public long bytesStored() {
        return result != null && stream != null ? size : 0;
    }

    @Override
    public void close() {
        if (!closed && result == null && stream != null) {
            stream.cancel();
        }
        closed = true;
    }
}

package castore.grpc.client;

import castore.grpc.proto.BlobChunk;
import castore.grpc.proto.BlobServiceGrpc;
import castore.grpc.proto.PutBlobResponse;
import castore.model.B3Digest;
import com.google.protobuf.ByteString;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Uploads a blob with tvix's plain BlobService.Put, for servers without castore's
 * ChunkedBlobService. A blob that fits in the first message is held back until finish, so
 * an already stored small blob (the common case when re-importing) costs one Stat.
 */
final class StreamedUpload extends RemoteUpload {
    static final int MESSAGE = 1 << 20;

    /** Grows to {@link #MESSAGE} as bytes come: a writer per small file allocated 1 MiB each. */
    private byte[] pending = new byte[0];
    private int pendingLength;
    private OutboundStream<BlobChunk, PutBlobResponse> stream;

    StreamedUpload(Connection connection, RemoteBlobService blobs) {
        super(connection, blobs, null);
    }

    @Override
    byte[] wholeIfSmall() {
        return null; // tvix servers have no batch calls
    }

    @Override
    void append(ByteBuffer data) throws IOException {
        while (data.hasRemaining()) {
            if (pendingLength == pending.length) {
                pending = java.util.Arrays.copyOf(pending, (int) Math.min(MESSAGE, Math.max(4096L, Math.max(2L * pending.length,
                        (long) pendingLength + data.remaining()))));
            }
            int n = Math.min(data.remaining(), pending.length - pendingLength);
            data.get(pending, pendingLength, n);
            whole.update(pending, pendingLength, n);
            pendingLength += n;
            size += n;
            if (pendingLength == MESSAGE) {
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
    B3Digest digest() {
        return whole.digest();
    }

    @Override
    boolean streaming() {
        return stream != null;
    }

    @Override
    PutBlobResponse upload(B3Digest digest) throws IOException {
        sendPending();
        return stream.finish(answerWait());
    }

    @Override
    public long bytesStored() {
        return stream != null ? size : 0;
    }

    @Override
    void abandon() {
        if (stream != null) {
            stream.cancel();
        }
    }
}

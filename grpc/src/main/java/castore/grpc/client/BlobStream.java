package castore.grpc.client;

import castore.grpc.proto.ReadBlobRequest;
import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.service.ChunkMeta;
import castore.service.ChunkStream;
import castore.service.CorruptedDataException;
import castore.service.NotFoundException;
import io.grpc.ClientCall;
import io.grpc.Metadata;
import io.grpc.Status;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A blob's chunks from one Read of the blob digest (tvix's Read streams a blob's bytes in order).
 * The answer's messages are cut by the chunk list from Stat, whatever their sizes (our server
 * sends one message per chunk, which is then used as is), and each chunk is hashed against its
 * digest before it is returned: a server that sends other bytes, too few or too many yields an
 * error, never wrong bytes. A server that answers the blob digest with nothing (or NOT_FOUND,
 * UNIMPLEMENTED) although Stat listed its chunks gives {@link NotFoundException} at the first
 * chunk: the caller then reads chunk by chunk. Flow-controlled: at most {@link #MESSAGES_AHEAD} messages are asked
 * for beyond those consumed. Guarded by an idle timeout like every stream: if the server sends
 * nothing for the store timeout while the consumer waits, the call is cancelled.
 */
final class BlobStream implements ChunkStream {
    /** Messages requested ahead of the consumer (our server's are chunk-sized: ~4 MiB). */
    static final int MESSAGES_AHEAD = 16;

    private final Connection connection;
    private final B3Digest blob;
    private final List<ChunkMeta> chunks;
    private final ClientCall<ReadBlobRequest, ReadMethod.Received> call;
    /** Messages ({@link ReadMethod.Received}) as they arrive, then the call's closing Status. */
    private final BlockingQueue<Object> arrived = new LinkedBlockingQueue<>();
    /** What messages are received into: arrays given back by {@link #recycle} and by this stream once it has taken a message apart. */
    private final ArrayPool arrays;
    private int index;
    private long received;
    /** The message being taken apart (null: none), its length and how much of it is taken. */
    private byte[] message;
    private int messageLength;
    private int offset;
    /** Whether the consumer takes shared arrays ({@link #nextShared}): only then are arrays given back to the pool. */
    private boolean shared;
    private boolean ended;

    BlobStream(Connection connection, B3Digest blob, List<ChunkMeta> chunks) {
        this.connection = connection;
        this.blob = blob;
        this.chunks = chunks;
        this.arrays = new ArrayPool(arraySize(chunks));
        // The callbacks run on the transport's thread and only queue what arrives.
        this.call = connection.channel.newCall(ReadMethod.into(arrays::take), connection.streamOptions().withExecutor(Runnable::run));
        call.start(new ClientCall.Listener<>() {
            @Override
            public void onMessage(ReadMethod.Received data) {
                arrived.add(data);
            }

            @Override
            public void onClose(Status status, Metadata trailers) {
                arrived.add(status);
            }
        }, new Metadata());
        call.sendMessage(ReadBlobRequest.newBuilder().setDigest(blob.toByteString()).build());
        call.halfClose();
        call.request(MESSAGES_AHEAD);
    }

    /**
     * The size of the arrays made once the consumer gives arrays back: the largest chunk, but no
     * more than twice the average one (a list with a few huge chunks among small ones would
     * otherwise make every array huge; a message larger than this gets an array of its own size).
     */
    static int arraySize(List<ChunkMeta> chunks) {
        long total = 0;
        long largest = 0;
        for (ChunkMeta chunk : chunks) {
            total += chunk.size();
            largest = Math.max(largest, chunk.size());
        }
        long average = chunks.isEmpty() ? 0 : (total + chunks.size() - 1) / chunks.size();
        return (int) Math.min(largest, 2 * average);
    }

    @Override
    public byte[] next() throws IOException {
        int size = (int) current().size();
        byte[] data = take(size, true, true);
        if (data.length != size) { // a whole message in a longer array given back before
            byte[] exact = java.util.Arrays.copyOf(data, size);
            arrays.give(data);
            data = exact;
        }
        return verified(data, size);
    }

    /**
     * The next chunk, verified, as the first bytes of an array that may be longer: one of the
     * arrays the messages arrive in, which the caller gives back with {@link #recycle} once
     * nobody reads it any more (until then nothing writes to it).
     */
    @Override
    public byte[] nextShared() throws IOException {
        shared = true;
        int size = (int) current().size();
        return verified(take(size, true, false), size);
    }

    @Override
    public void recycle(byte[] array) {
        arrays.give(array);
    }

    private byte[] verified(byte[] data, int size) throws IOException {
        ChunkMeta meta = current();
        if (!Blake3.digest(data, 0, size).equals(meta.digest())) {
            throw fail(new CorruptedDataException("chunk " + meta.digest() + " (" + index + ") of blob " + blob + " from "
                    + connection.address + " does not match its digest"));
        }
        index++;
        return data;
    }

    @Override
    public void skip() throws IOException {
        take((int) current().size(), false, false);
        index++;
    }

    private ChunkMeta current() {
        if (index >= chunks.size()) {
            throw new IllegalStateException("blob " + blob + ": all " + chunks.size() + " chunks taken");
        }
        return chunks.get(index);
    }

    /**
     * The next {@code size} bytes of the stream, as the first bytes of the array returned (null
     * unless {@code keep}): a message that is exactly the chunk is returned as is (its array may be
     * longer); else they are copied into a new array, {@code exact} or from the pool.
     */
    private byte[] take(int size, boolean keep, boolean exact) throws IOException {
        if (message == null) {
            nextMessage();
        }
        if (offset == 0 && messageLength == size) {
            byte[] whole = message;
            message = null;
            if (!keep && shared) {
                arrays.give(whole);
            }
            return keep ? whole : null;
        }
        byte[] data = keep ? (exact ? new byte[size] : arrays.take(size)) : null;
        int filled = 0;
        while (filled < size) {
            if (message == null) {
                nextMessage();
            }
            int n = Math.min(size - filled, messageLength - offset);
            if (keep) {
                System.arraycopy(message, offset, data, filled, n);
            }
            filled += n;
            offset += n;
            if (offset == messageLength) {
                if (shared) {
                    arrays.give(message);
                }
                message = null;
                offset = 0;
            }
        }
        return data;
    }

    /** Makes the next non-empty message the current one. */
    private void nextMessage() throws IOException {
        if (ended) {
            throw new IOException("read blob " + blob + " from " + connection.address + ": stream already failed");
        }
        while (true) {
            Object next;
            try {
                next = arrived.poll(connection.timeout.toNanos(), TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw fail(new InterruptedIOException("interrupted reading blob " + blob));
            }
            if (next == null) {
                throw fail(new IOException("read blob " + blob + ": " + connection.unanswered("sent nothing for")));
            }
            if (next instanceof Status status) {
                ended = true;
                Status.Code code = status.getCode();
                if (received == 0 && (code == Status.Code.OK || code == Status.Code.NOT_FOUND || code == Status.Code.UNIMPLEMENTED)) {
                    // Stat listed the chunks, but the blob itself is not served whole: read it chunk by chunk.
                    throw new NotFoundException("read blob " + blob + ": " + connection.address + " does not stream it (" + code + ")");
                }
                if (status.isOk()) {
                    throw new CorruptedDataException("blob " + blob + " from " + connection.address + " ended after " + received
                            + " bytes, before chunk " + index + " of " + chunks.size());
                }
                throw Failures.of(status.asRuntimeException(), connection, "read blob " + blob);
            }
            var data = (ReadMethod.Received) next;
            call.request(1);
            received += data.length();
            if (data.length() > 0) {
                message = data.array();
                messageLength = data.length();
                offset = 0;
                return;
            }
        }
    }

    private IOException fail(IOException e) {
        close();
        return e;
    }

    @Override
    public void close() {
        arrays.clear(); // what the consumer gives back after this is kept for nothing
        if (!ended) {
            ended = true;
            call.cancel("no longer needed", null);
        }
    }
}

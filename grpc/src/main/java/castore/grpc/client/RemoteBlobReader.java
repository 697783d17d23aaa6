package castore.grpc.client;

import castore.grpc.proto.ReadBlobRequest;
import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.service.ChunkMeta;
import castore.service.ChunkedBlobReader;
import castore.service.CorruptedDataException;
import io.grpc.ClientCall;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Reads a remote blob chunk by chunk: a read fetches only the chunks it touches (tvix's Read by
 * chunk digest), each hashed before a byte of it is returned. Sequential access prefetches the
 * next chunks. When chunks are consumed in order, the whole blob is hashed as well, so a server
 * that lists the wrong (but individually valid) chunks makes the last read fail instead of
 * completing the wrong file. Positional and thread-safe. (Blobs without a usable chunk list are
 * read by {@link SpooledBlobReader}.)
 */
final class RemoteBlobReader extends ChunkedBlobReader {
    /** Chunks larger than this are not held in memory (our server's chunks are at most 512 KiB). */
    static final long MAX_MEMORY_CHUNK = 16 << 20;
    /** Chunks fetched ahead of a sequential reader. */
    static final int PREFETCH = 6;
    private static final int CACHED = PREFETCH + 4;

    private final Connection connection;
    private final B3Digest blob;
    private final Map<Integer, Fetch> cache = new ConcurrentHashMap<>();
    private final AtomicInteger lastChunk = new AtomicInteger(-1);
    private final Object verifyLock = new Object();
    private Blake3.Hasher wholeBlob;
    private int verifiedChunks;
    private volatile boolean lying;
    private volatile boolean closed;

    /** Whether chunk-by-chunk reading suits this list: non-empty, every chunk small enough to hold. */
    static boolean suits(List<ChunkMeta> chunks) {
        return !chunks.isEmpty() && chunks.stream().allMatch(c -> c.size() <= MAX_MEMORY_CHUNK);
    }

    RemoteBlobReader(Connection connection, B3Digest blob, List<ChunkMeta> chunks) {
        super(chunks);
        this.connection = connection;
        this.blob = blob;
        // A lone chunk is the blob itself: its own check covers the whole blob.
        this.wholeBlob = chunks.size() > 1 ? Blake3.newHasher() : null;
    }

    @Override
    public int read(long position, ByteBuffer dst) throws IOException {
        if (closed) {
            throw new IOException("blob reader closed");
        }
        return super.read(position, dst);
    }

    /** The verified bytes of chunk {@code index}, fetched (or awaited) now. */
    @Override
    protected byte[] chunk(int index) throws IOException {
        if (lying) {
            throw lie();
        }
        int previous = lastChunk.getAndSet(index);
        Fetch fetch = cache.computeIfAbsent(index, this::fetch);
        if (index == previous + 1 || index == previous) {
            for (int ahead = index + 1; ahead <= index + PREFETCH && ahead < chunks().size(); ahead++) {
                cache.computeIfAbsent(ahead, this::fetch);
            }
        }
        byte[] data;
        try {
            data = fetch.verified(fetch.result.get(fetch.deadline.toMillis() + 1000, TimeUnit.MILLISECONDS));
        } catch (CorruptedDataException e) {
            cache.remove(index, fetch);
            throw e;
        } catch (ExecutionException | TimeoutException e) {
            cache.remove(index, fetch); // the next read tries again
            fetch.cancel();
            if (e instanceof TimeoutException) {
                throw new IOException("read chunk of blob " + blob + ": no answer from " + connection.address);
            }
            throw Failures.of(e.getCause(), connection, "read chunk " + chunks().get(index).digest() + " of blob " + blob);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted reading blob " + blob);
        }
        verifyInOrder(index, data);
        evict(index);
        return data;
    }

    /**
     * A chunk served again from its copy at another place of the blob is consumed there too:
     * without this, the check stopped at the first repeat and a list of valid chunks that
     * repeat (A, B, A) but do not make up the blob was read to its end without an error.
     */
    @Override
    protected void servingRepeat(int index, byte[] data) throws IOException {
        if (lying) {
            throw lie();
        }
        verifyInOrder(index, data);
    }

    /** Feeds chunks consumed in order to the whole-blob hash; at the last one, it must match. */
    private void verifyInOrder(int index, byte[] data) throws IOException {
        if (wholeBlob == null) {
            return;
        }
        synchronized (verifyLock) {
            if (wholeBlob != null && index == verifiedChunks) {
                wholeBlob.update(data);
                verifiedChunks++;
                if (verifiedChunks == chunks().size()) {
                    lying = !wholeBlob.digest().equals(blob);
                    wholeBlob = null;
                }
            }
        }
        if (lying) {
            throw lie();
        }
    }

    private CorruptedDataException lie() {
        return new CorruptedDataException("blob " + blob + " from " + connection.address
                + ": its chunks are valid but do not make up the blob (wrong chunk list)");
    }

    /** Keeps the cache to a few chunks: the ones behind the reader go first. */
    private void evict(int current) {
        if (cache.size() <= CACHED) {
            return;
        }
        cache.keySet().stream()
                .sorted((a, b) -> Integer.compare(distance(b, current), distance(a, current)))
                .limit(Math.max(0, cache.size() - CACHED))
                .forEach(cache::remove); // not cancelled: another thread may be waiting for it
    }

    /** Chunks behind the reader are farther than chunks ahead of it. */
    private static int distance(int index, int current) {
        return index < current ? (current - index) + PREFETCH + 1 : index - current;
    }

    private Fetch fetch(int index) {
        ChunkMeta meta = chunks().get(index);
        // Enough time for the call plus 1 µs per byte (1 MB/s) of the chunk.
        Duration deadline = connection.timeout.plusNanos(meta.size() * 1000);
        // The answer is handled on the transport's thread (no hand-over to an executor per
        // message): the callbacks only collect bytes; the reader hashes them on its own thread.
        ClientCall<ReadBlobRequest, byte[]> call = connection.channel.newCall(ReadMethod.READ,
                connection.options(deadline).withExecutor(Runnable::run));
        Fetch fetch = new Fetch(call, meta, deadline);
        ClientCalls.asyncServerStreamingCall(call, ReadBlobRequest.newBuilder().setDigest(meta.digest().toByteString()).build(), fetch);
        return fetch;
    }

    /**
     * One chunk in flight: collects the messages (usually one, used as is) and checks their
     * length; {@link #verified} checks the digest, once, on the reader's thread.
     */
    private final class Fetch implements StreamObserver<byte[]> {
        final CompletableFuture<byte[]> result = new CompletableFuture<>();
        final Duration deadline;
        private final ClientCall<ReadBlobRequest, byte[]> call;
        private final ChunkMeta meta;
        private byte[] data;
        private int filled;
        private volatile boolean digestChecked;

        Fetch(ClientCall<ReadBlobRequest, byte[]> call, ChunkMeta meta, Duration deadline) {
            this.call = call;
            this.meta = meta;
            this.deadline = deadline;
        }

        @Override
        public void onNext(byte[] message) {
            if (message.length > meta.size() - filled) {
                result.completeExceptionally(new CorruptedDataException("chunk " + meta.digest() + " of blob " + blob + " from "
                        + connection.address + " is longer than its size " + meta.size()));
                call.cancel("chunk too long", null);
                return;
            }
            if (filled == 0 && message.length == meta.size()) {
                data = message;
            } else {
                if (data == null) {
                    data = new byte[(int) meta.size()];
                }
                System.arraycopy(message, 0, data, filled, message.length);
            }
            filled += message.length;
        }

        @Override
        public void onError(Throwable t) {
            result.completeExceptionally(t);
        }

        @Override
        public void onCompleted() {
            if (result.isDone()) {
                return;
            }
            if (filled != meta.size()) {
                result.completeExceptionally(new CorruptedDataException("chunk " + meta.digest() + " of blob " + blob + " from "
                        + connection.address + " has " + filled + " bytes, not " + meta.size()));
            } else {
                result.complete(data);
            }
        }

        /** {@code received} (this fetch's bytes) once they hash to the chunk digest; hashed by the first caller only. */
        byte[] verified(byte[] received) throws CorruptedDataException {
            if (!digestChecked) {
                synchronized (this) {
                    if (!digestChecked) {
                        if (!Blake3.digest(received).equals(meta.digest())) {
                            throw new CorruptedDataException("chunk " + meta.digest() + " of blob " + blob + " from "
                                    + connection.address + " does not match its digest");
                        }
                        digestChecked = true;
                    }
                }
            }
            return received;
        }

        void cancel() {
            if (!result.isDone()) {
                call.cancel("no longer needed", null);
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        cache.values().forEach(Fetch::cancel);
        cache.clear();
    }
}

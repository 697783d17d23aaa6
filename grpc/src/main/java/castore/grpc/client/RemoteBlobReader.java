package castore.grpc.client;

import castore.grpc.proto.ReadBlobRequest;
import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.service.BlobReader;
import castore.service.ChunkMeta;
import castore.service.CorruptedDataException;
import io.grpc.ClientCall;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Arrays;
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
 * completing the wrong file. Positional and thread-safe.
 *
 * <p>If the server gives no chunk list (tvix servers may not) or a chunk too large to hold in
 * memory, the whole blob is downloaded once into an unlinked temporary file, verified, and read
 * from there.
 */
final class RemoteBlobReader implements BlobReader {
    /** Chunks larger than this are not held in memory (our server's chunks are at most 512 KiB). */
    static final long MAX_MEMORY_CHUNK = 16 << 20;
    /** Chunks fetched ahead of a sequential reader. */
    static final int PREFETCH = 6;
    private static final int CACHED = PREFETCH + 4;

    private final Connection connection;
    private final B3Digest blob;
    private final ChunkMeta[] chunks;
    private final long[] starts;
    private final long size;
    private final Map<Integer, Fetch> cache = new ConcurrentHashMap<>();
    private final AtomicInteger lastChunk = new AtomicInteger(-1);
    private final Object verifyLock = new Object();
    private Blake3.Hasher wholeBlob;
    private int verifiedChunks;
    private volatile boolean lying;
    private final Object spoolLock = new Object();
    private volatile FileChannel spool;
    private volatile boolean closed;

    RemoteBlobReader(Connection connection, B3Digest blob, List<ChunkMeta> chunkList) throws IOException {
        this.connection = connection;
        this.blob = blob;
        this.chunks = chunkList.toArray(ChunkMeta[]::new);
        this.starts = new long[chunks.length];
        long offset = 0;
        boolean small = true;
        for (int i = 0; i < chunks.length; i++) {
            starts[i] = offset;
            offset += chunks[i].size();
            small &= chunks[i].size() <= MAX_MEMORY_CHUNK;
        }
        if (chunks.length == 0 || !small) {
            this.size = download(chunks.length == 0 ? -1 : offset);
        } else {
            this.size = offset;
            // A lone chunk is the blob itself: its own check covers the whole blob.
            this.wholeBlob = chunks.length > 1 ? Blake3.newHasher() : null;
        }
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public int read(long position, ByteBuffer dst) throws IOException {
        if (closed) {
            throw new IOException("blob reader closed");
        }
        if (position < 0) {
            throw new IllegalArgumentException("negative position " + position);
        }
        if (position >= size) {
            return -1;
        }
        FileChannel whole = spool;
        if (whole != null) {
            return readSpool(whole, position, dst);
        }
        int total = 0;
        while (dst.hasRemaining() && position < size) {
            int index = chunkAt(position);
            byte[] data = chunk(index);
            int offset = (int) (position - starts[index]);
            int n = Math.min(dst.remaining(), data.length - offset);
            dst.put(data, offset, n);
            position += n;
            total += n;
        }
        return total;
    }

    private int readSpool(FileChannel whole, long position, ByteBuffer dst) throws IOException {
        int limit = dst.limit();
        dst.limit((int) Math.min(limit, dst.position() + (size - position)));
        try {
            int total = 0;
            while (dst.hasRemaining()) {
                int n = whole.read(dst, position + total);
                if (n < 0) {
                    throw new IOException("temporary copy of blob " + blob + " truncated");
                }
                total += n;
            }
            return total;
        } finally {
            dst.limit(limit);
        }
    }

    private int chunkAt(long position) {
        int i = Arrays.binarySearch(starts, position);
        return i >= 0 ? i : -i - 2;
    }

    /** The verified bytes of chunk {@code index}, fetched (or awaited) now. */
    private byte[] chunk(int index) throws IOException {
        if (lying) {
            throw lie();
        }
        int previous = lastChunk.getAndSet(index);
        Fetch fetch = cache.computeIfAbsent(index, this::fetch);
        if (index == previous + 1 || index == previous) {
            for (int ahead = index + 1; ahead <= index + PREFETCH && ahead < chunks.length; ahead++) {
                cache.computeIfAbsent(ahead, this::fetch);
            }
        }
        byte[] data;
        try {
            data = fetch.result.get(fetch.deadline.toMillis() + 1000, TimeUnit.MILLISECONDS);
        } catch (ExecutionException | TimeoutException e) {
            cache.remove(index, fetch); // the next read tries again
            fetch.cancel();
            if (e instanceof TimeoutException) {
                throw new IOException("read chunk of blob " + blob + ": no answer from " + connection.address);
            }
            throw Failures.of(e.getCause(), connection, "read chunk " + chunks[index].digest() + " of blob " + blob);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted reading blob " + blob);
        }
        verifyInOrder(index, data);
        evict(index);
        return data;
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
                if (verifiedChunks == chunks.length) {
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
        ChunkMeta meta = chunks[index];
        // Enough time for the call plus 1 µs per byte (1 MB/s) of the chunk.
        Duration deadline = connection.timeout.plusNanos(meta.size() * 1000);
        ClientCall<ReadBlobRequest, byte[]> call = connection.channel.newCall(ReadMethod.READ, connection.options(deadline));
        Fetch fetch = new Fetch(call, meta, deadline);
        ClientCalls.asyncServerStreamingCall(call, ReadBlobRequest.newBuilder().setDigest(meta.digest().toByteString()).build(), fetch);
        return fetch;
    }

    /**
     * One chunk in flight: collects the messages (usually one, used as is), then checks length
     * and digest.
     */
    private final class Fetch implements StreamObserver<byte[]> {
        final CompletableFuture<byte[]> result = new CompletableFuture<>();
        final Duration deadline;
        private final ClientCall<ReadBlobRequest, byte[]> call;
        private final ChunkMeta meta;
        private byte[] data;
        private int filled;

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
            } else if (!Blake3.digest(data).equals(meta.digest())) {
                result.completeExceptionally(new CorruptedDataException("chunk " + meta.digest() + " of blob " + blob + " from "
                        + connection.address + " does not match its digest"));
            } else {
                result.complete(data);
            }
        }

        void cancel() {
            if (!result.isDone()) {
                call.cancel("no longer needed", null);
            }
        }
    }

    /**
     * Downloads the whole blob into an unlinked temporary file, hashing it; returns its size.
     * {@code expectedSize} is -1 when the server gave no chunk list.
     */
    private long download(long expectedSize) throws IOException {
        synchronized (spoolLock) {
            Path path = Files.createTempFile("castore-blob-", ".tmp");
            FileChannel file = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
            Files.delete(path);
            Blake3.Hasher hasher = Blake3.newHasher();
            long total = 0;
            var request = ReadBlobRequest.newBuilder().setDigest(blob.toByteString()).build();
            try (var stream = InboundStream.open(connection, ReadMethod.READ, request, "read blob " + blob)) {
                while (stream.hasNext()) {
                    ByteBuffer data = ByteBuffer.wrap(stream.next());
                    total += data.remaining();
                    if (expectedSize >= 0 && total > expectedSize) {
                        throw new CorruptedDataException("blob " + blob + " from " + connection.address + " is longer than its size " + expectedSize);
                    }
                    hasher.update(data.duplicate());
                    while (data.hasRemaining()) {
                        file.write(data);
                    }
                }
                if (expectedSize >= 0 && total != expectedSize) {
                    throw new CorruptedDataException("blob " + blob + " from " + connection.address + " has " + total + " bytes, not " + expectedSize);
                }
                if (!hasher.digest().equals(blob)) {
                    throw new CorruptedDataException("blob " + blob + " from " + connection.address + " does not match its digest");
                }
                spool = file;
                return total;
            } catch (java.io.UncheckedIOException e) {
                file.close();
                throw e.getCause();
            } catch (IOException | RuntimeException e) {
                file.close();
                throw e;
            }
        }
    }

    @Override
    public void close() throws IOException {
        closed = true;
        cache.values().forEach(Fetch::cancel);
        cache.clear();
        FileChannel whole = spool;
        if (whole != null) {
            whole.close();
        }
    }
}

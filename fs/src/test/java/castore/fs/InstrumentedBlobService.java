package castore.fs;

import castore.model.B3Digest;
import castore.service.BlobReader;
import castore.service.BlobService;
import castore.service.CorruptedDataException;
import castore.service.ForwardingBlobService;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Wraps a blob service for tests: each read returns at most up to the next multiple of
 * {@code chunkSize} (as a chunked store may), reads and opens are counted, and blobs marked
 * corrupted fail like a store that detects a digest mismatch.
 */
final class InstrumentedBlobService extends ForwardingBlobService {
    private final int chunkSize;
    final AtomicInteger opens = new AtomicInteger();
    final AtomicInteger reads = new AtomicInteger();
    /** The highest position any read started at. */
    final AtomicLong furthestRead = new AtomicLong(-1);
    final Set<B3Digest> corrupted = ConcurrentHashMap.newKeySet();
    final Map<B3Digest, AtomicInteger> opensByDigest = new ConcurrentHashMap<>();
    /** Runs on the reading thread before each read: a test holds a reader there, or fails it. */
    volatile ReadHook beforeRead = (digest, position) -> {
    };

    interface ReadHook {
        void run(B3Digest digest, long position) throws IOException;
    }

    InstrumentedBlobService(BlobService inner, int chunkSize) {
        super(inner);
        this.chunkSize = chunkSize;
    }

    /** The blobs {@link #willRead} was told of, in order. */
    final List<B3Digest> hinted = new java.util.concurrent.CopyOnWriteArrayList<>();

    /** How many blobs each {@link #willRead(List)} told of, in order. */
    final List<Integer> hintBatches = new java.util.concurrent.CopyOnWriteArrayList<>();

    @Override
    public void willRead(B3Digest blob, long size) {
        hinted.add(blob);
    }

    @Override
    public void willRead(List<castore.service.ChunkMeta> blobs) {
        hintBatches.add(blobs.size());
        blobs.forEach(blob -> willRead(blob.digest(), blob.size()));
    }

    int opens(B3Digest digest) {
        AtomicInteger n = opensByDigest.get(digest);
        return n == null ? 0 : n.get();
    }

    @Override
    public Optional<BlobReader> open(B3Digest digest) throws IOException {
        Optional<BlobReader> opened = inner.open(digest);
        if (opened.isEmpty()) {
            return opened;
        }
        opens.incrementAndGet();
        opensByDigest.computeIfAbsent(digest, d -> new AtomicInteger()).incrementAndGet();
        BlobReader reader = opened.get();
        return Optional.of(new BlobReader() {
            @Override
            public long size() {
                return reader.size();
            }

            @Override
            public int read(long position, ByteBuffer dst) throws IOException {
                beforeRead.run(digest, position);
                reads.incrementAndGet();
                furthestRead.accumulateAndGet(position, Math::max);
                if (corrupted.contains(digest)) {
                    throw new CorruptedDataException("chunk of " + digest + " does not match its digest");
                }
                long chunkEnd = (position / chunkSize + 1) * chunkSize;
                int n = (int) Math.min(dst.remaining(), chunkEnd - position);
                int got = reader.read(position, dst.slice(dst.position(), n));
                if (got > 0) {
                    dst.position(dst.position() + got);
                }
                return got;
            }
        });
    }
}

package castore.store.local;

import castore.model.B3Digest;
import castore.service.ChunkedBlobReader;
import java.io.IOException;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * Positional reads of one blob ({@link ChunkedBlobReader} finds the chunk of an offset by binary
 * search). Chunks are read from their packs and verified; the last few verified chunks are kept
 * (lock-free) so a sequential reader asking for 4 KiB at a time hashes each chunk once, and
 * concurrent readers at a few different places do not evict each other at once.
 *
 * <p>When chunks are missed in order (a sequential reader), the next {@link #AHEAD} chunks are
 * announced to the kernel (POSIX_FADV_WILLNEED) so the disk reads them while this one is
 * verified and served: the kernel's own readahead window (128 KiB by default) is smaller than
 * one chunk, so without the hint every cold chunk waits for the disk. Up to {@link #STREAMS}
 * sequential readers of one blob (parallel readers of one file share its reader) are followed
 * apart, and the cache holds a few chunks for each.
 */
final class LocalBlobReader extends ChunkedBlobReader {
    /** Sequential readers of one blob followed apart. */
    static final int STREAMS = 4;
    private static final int CACHED_CHUNKS = 4 * STREAMS;
    /** Chunks announced ahead of a sequential reader: about 2 MiB at the average chunk size. */
    static final int AHEAD = 8;

    private final PackStore packs;
    private final B3Digest digest;
    private final AtomicReferenceArray<VerifiedChunk> cache = new AtomicReferenceArray<>(CACHED_CHUNKS);
    private final AtomicInteger nextSlot = new AtomicInteger();
    /**
     * Striped by reader and chunk index, shared by all readers (a reader of a small file should
     * not allocate locks): loads of one chunk wait for each other, loads of others rarely do.
     */
    private static final Object[] LOAD_LOCKS = new Object[64];

    static {
        Arrays.setAll(LOAD_LOCKS, i -> new Object());
    }

    private final int lockSeed = System.identityHashCode(this) * 0x9E3779B9;
    /** Per stream, guarded by {@code streams}: the last chunk it read from the packs and the last one announced ahead. */
    private final int[] lastMiss = new int[STREAMS];
    private final int[] announcedUpTo = new int[STREAMS];
    private final Object streams = new Object();
    private int nextStream;
    /** Chunks announced and chunks loaded so far (for tests). */
    private final AtomicInteger announced = new AtomicInteger();
    private final AtomicInteger loads = new AtomicInteger();

    private record VerifiedChunk(int index, byte[] data) {
    }

    /** Where chunk 0 is, when the opener already found it (a blob of one chunk); else null. */
    private final Location firstChunk;

    LocalBlobReader(PackStore packs, B3Digest digest, ChunkList chunks, Location firstChunk) {
        super(chunks.toMetas());
        this.packs = packs;
        this.digest = digest;
        this.firstChunk = firstChunk;
        Arrays.fill(lastMiss, -2);
    }

    /** The WILLNEED hints below keep the disk ahead; read-ahead on other threads measured slower (docs/performance.md). */
    @Override
    public boolean readsAhead() {
        return true;
    }

    @Override
    protected byte[] chunk(int index) throws IOException {
        byte[] cached = cached(index);
        if (cached != null) {
            return cached;
        }
        // One load per chunk: the kernel sends a stream's next reads together, and they often
        // fall in the same chunk (two 128 KiB reads per 256 KiB chunk); without this, each
        // thread serving one of them read and hashed the chunk again.
        synchronized (LOAD_LOCKS[(lockSeed + index) & (LOAD_LOCKS.length - 1)]) {
            cached = cached(index);
            if (cached != null) {
                return cached;
            }
            announceAhead(index);
            var meta = chunks().get(index);
            byte[] data = index == 0 && firstChunk != null
                    ? LocalBlobService.readChunk(packs, firstChunk, meta.digest(), (int) meta.size(), digest)
                    : LocalBlobService.readChunk(packs, meta.digest(), (int) meta.size(), digest);
            loads.incrementAndGet();
            cache.set(Math.floorMod(nextSlot.getAndIncrement(), CACHED_CHUNKS), new VerifiedChunk(index, data));
            return data;
        }
    }

    private byte[] cached(int index) {
        for (int i = 0; i < CACHED_CHUNKS; i++) {
            VerifiedChunk c = cache.get(i);
            if (c != null && c.index() == index) {
                return c.data();
            }
        }
        return null;
    }

    /**
     * Records a miss of chunk {@code index}; if it continues a stream (the chunk after that
     * stream's last miss, or the one after it: concurrent reads arrive slightly out of order),
     * announces chunks up to AHEAD past it, in batches of half that, never one twice.
     */
    private void announceAhead(int index) throws IOException {
        int from;
        int to;
        synchronized (streams) {
            int stream = -1;
            for (int s = 0; s < STREAMS; s++) {
                if (index > lastMiss[s] && index <= lastMiss[s] + 2) {
                    stream = s;
                    break;
                }
            }
            if (stream < 0) {
                stream = nextStream;
                nextStream = (nextStream + 1) % STREAMS;
                lastMiss[stream] = index;
                announcedUpTo[stream] = index;
                return;
            }
            lastMiss[stream] = index;
            from = Math.max(index + 1, announcedUpTo[stream] + 1);
            to = Math.min(chunks().size() - 1, index + AHEAD);
            if (from > index + AHEAD / 2 || from > to) {
                return; // enough is already on its way
            }
            announcedUpTo[stream] = to;
        }
        for (int i = from; i <= to; i++) {
            Location l = packs.find(ObjectKind.CHUNK, chunks().get(i).digest());
            if (l != null) {
                l.source().willNeed(l);
                announced.incrementAndGet();
            }
        }
    }

    int announcedChunks() {
        return announced.get();
    }

    int loadedChunks() {
        return loads.get();
    }
}

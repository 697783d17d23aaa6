package castore.store.local;

import castore.model.B3Digest;
import castore.service.CorruptedDataException;
import castore.service.NotFoundException;
import castore.service.ChunkSlots;
import castore.service.ChunkedBlobReader;
import castore.service.RecentChunks;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Positional reads of one blob ({@link ChunkedBlobReader} finds the chunk of an offset by binary
 * search). Chunks are read from their packs and verified; the last few verified chunks are kept
 * so a sequential reader asking for 4 KiB at a time hashes each chunk once, and concurrent
 * readers at a few different places do not evict each other at once. Loads of one chunk are
 * done once: the kernel sends a stream's next reads together, and they often fall in the same
 * chunk (two 128 KiB reads per 256 KiB chunk).
 *
 * <p>When chunks are missed in order (a sequential reader), the next {@link #AHEAD} chunks are
 * announced to the kernel (POSIX_FADV_WILLNEED) so the disk reads them while this one is
 * verified and served: the kernel's own readahead window (128 KiB by default) is smaller than
 * one chunk, so without the hint every cold chunk waits for the disk. Up to {@link #STREAMS}
 * sequential readers of one blob (parallel readers of one file share its reader) are followed
 * apart.
 *
 * <p>Chunks of a sequential stream over a blob of more than {@link #STREAM_SLOTS} chunks (about
 * 3 MiB) are loaded into a few buffers this reader reuses
 * ({@link ChunkSlots}) rather than into a new array each: a 1 GiB stream otherwise allocates
 * 1 GiB of arrays, which the JVM zeroes and the kernel backs with fresh pages. Readers copy out
 * of a slot under an optimistic read and retry if a load overwrote it meanwhile. Other loads
 * (random reads) get arrays of their own, which stay immutable: the filesystem may hand the rest
 * of such a chunk to the kernel's page cache after the read ({@link #lastChunkRead}).
 */
final class LocalBlobReader extends ChunkedBlobReader {
    /** Sequential readers of one blob followed apart. */
    static final int STREAMS = 4;
    private static final int CACHED_CHUNKS = 8;
    private static final int STREAM_SLOTS = 3 * STREAMS;
    /** Chunks announced ahead of a sequential reader: about 2 MiB at the average chunk size. */
    static final int AHEAD = 8;

    private final PackStore packs;
    private final B3Digest digest;
    /** Where chunk 0 is, when the opener already found it (a blob of one chunk); else null. */
    private final Location firstChunk;
    private final RecentChunks cache = new RecentChunks(CACHED_CHUNKS);
    /** Buffers for streams, made when the first stream starts (a small file never has them). */
    private final ChunkSlots streamSlots = new ChunkSlots(STREAM_SLOTS);
    private final int lockSeed = System.identityHashCode(this) * 0x9E3779B9;
    /** Per stream, guarded by {@code streams}: the last chunk it read from the packs and the last one announced ahead. */
    private final int[] lastMiss = new int[STREAMS];
    private final int[] announcedUpTo = new int[STREAMS];
    private final Object streams = new Object();
    private int nextStream;
    /** Chunks announced and chunks loaded so far (for tests). */
    private final AtomicInteger announced = new AtomicInteger();
    private final AtomicInteger loads = new AtomicInteger();

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
    protected int copyChunk(int index, int within, ByteBuffer dst) throws IOException {
        int n = copyFromStreamSlot(index, within, dst);
        if (n >= 0) {
            return n;
        }
        byte[] cached = cached(index);
        if (cached != null) {
            return copyFrom(index, cached, within, dst);
        }
        synchronized (loadLock(index)) {
            n = copyFromStreamSlot(index, within, dst);
            if (n >= 0) {
                return n;
            }
            cached = cached(index);
            if (cached != null) {
                return copyFrom(index, cached, within, dst);
            }
            // Reused buffers pay off on long streams; a file of a few chunks would only allocate them.
            return announceAhead(index) && chunks().size() > STREAM_SLOTS
                    ? loadIntoStreamSlot(index, within, dst)
                    : copyFrom(index, load(index), within, dst);
        }
    }

    @Override
    protected byte[] chunk(int index) throws IOException {
        byte[] cached = cached(index);
        if (cached != null) {
            return cached;
        }
        synchronized (loadLock(index)) {
            cached = cached(index);
            return cached != null ? cached : load(index);
        }
    }

    /** Loads chunk {@code index} into an array of its own and caches it; under its load lock. */
    private byte[] load(int index) throws IOException {
        byte[] data = packs.readVerified(locate(index));
        loads.incrementAndGet();
        cache.add(index, data);
        return data;
    }

    /** Where chunk {@code index} is, checked against the chunk list's size. */
    private Location locate(int index) throws IOException {
        var meta = chunks().get(index);
        Location l = index == 0 && firstChunk != null ? firstChunk : packs.find(ObjectKind.CHUNK, meta.digest());
        if (l == null) {
            throw new NotFoundException("chunk " + meta.digest() + " of blob " + digest + " is missing from the store");
        }
        if (l.length() != meta.size()) {
            throw new CorruptedDataException(l.describe() + " has " + l.length()
                    + " bytes but blob " + digest + " lists it with " + meta.size());
        }
        return l;
    }

    private Object loadLock(int index) {
        return packs.loadLock(lockSeed + index);
    }

    private byte[] cached(int index) {
        return cache.get(index);
    }

    /** Copies from the stream slot holding chunk {@code index}; -1 if none does (or one is being reloaded). */
    private int copyFromStreamSlot(int index, int within, ByteBuffer dst) {
        return streamSlots.copy(index, (int) chunks().get(index).size(), within, dst);
    }

    /** Loads chunk {@code index} into the oldest stream slot and copies from it; under its load lock. */
    private int loadIntoStreamSlot(int index, int within, ByteBuffer dst) throws IOException {
        Location l = locate(index);
        return streamSlots.load(index, l.length(), within, dst, buffer -> {
            packs.readVerifiedInto(l, buffer);
            loads.incrementAndGet();
            return true;
        });
    }

    /**
     * Records a miss of chunk {@code index}; if it continues a stream (the chunk after that
     * stream's last miss, or the one after it: concurrent reads arrive slightly out of order),
     * announces chunks up to AHEAD past it, in batches of half that, never one twice, and
     * returns true.
     */
    private boolean announceAhead(int index) throws IOException {
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
                return false;
            }
            lastMiss[stream] = index;
            from = Math.max(index + 1, announcedUpTo[stream] + 1);
            to = Math.min(chunks().size() - 1, index + AHEAD);
            if (from > index + AHEAD / 2 || from > to) {
                return true; // enough is already on its way
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
        return true;
    }

    int announcedChunks() {
        return announced.get();
    }

    int loadedChunks() {
        return loads.get();
    }

    boolean hasStreamSlots() {
        return streamSlots.allocated();
    }
}

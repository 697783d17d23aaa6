package castore.store.local;

import castore.io.DirectReads;
import castore.io.DirectStream;
import castore.io.DirectStreams;
import castore.model.B3Digest;
import castore.service.CorruptedDataException;
import castore.service.NotFoundException;
import castore.service.ChunkSlots;
import castore.service.ChunkedBlobReader;
import castore.service.RecentChunks;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
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
 * <p>When chunks are missed in order (a sequential reader) on a blob of more than
 * {@link #STREAM_SLOTS} chunks, the stream gets a {@link castore.io.DirectStream}: its next chunks are read
 * with O_DIRECT on the store's read-ahead threads, verified there, and served from native
 * buffers, past the page cache. Where that is not possible (turned off, the store's cap on
 * stream buffers reached), the next {@link #AHEAD} chunks are announced to the kernel
 * (POSIX_FADV_WILLNEED) so the disk reads them while this one is verified and served: a
 * device's read-ahead window can be smaller than one chunk (128 KiB by default), and without
 * the hint every cold chunk would wait for the disk. Up to {@link #STREAMS} sequential readers
 * of one blob (parallel readers of one file share its reader) are followed apart.
 *
 * <p>Without a direct stream, chunks of a sequential stream over a blob of more than
 * {@link #STREAM_SLOTS} chunks (about 3 MiB) are loaded into a few buffers this reader reuses
 * ({@link ChunkSlots}) rather than into a new array each: a 1 GiB stream otherwise allocates
 * 1 GiB of arrays, which the JVM zeroes and the kernel backs with fresh pages. Readers copy out
 * of a slot under an optimistic read and retry if a load overwrote it meanwhile. A read that
 * takes a whole chunk (a small file read whole) gets it straight into its own buffer. Other
 * loads (random reads) go to slots of their own, {@link #RANDOM_SLOTS} of them: 20k random
 * 4 KiB reads of a 1 GiB file load nearly every chunk once, and arrays of their own were a GiB
 * of garbage, the heap's fresh pages faulted in while the reads waited. The filesystem may hand
 * the rest of such a chunk to the kernel's page cache after the read: the slot is lent to it
 * ({@link #lendRecentChunk}), and a load waits for the loan to end before it reuses the slot.
 */
final class LocalBlobReader extends ChunkedBlobReader {
    /** Sequential readers of one blob followed apart. */
    static final int STREAMS = 4;
    private static final int CACHED_CHUNKS = 8;
    /** Slots for the chunks of random reads: as many chunks as {@link #cache} keeps for other loads. */
    static final int RANDOM_SLOTS = CACHED_CHUNKS;
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
    /** Buffers for random reads, made as loads need them: on a long blob each of its largest chunk's size. */
    private final ChunkSlots randomSlots;
    private final int lockSeed = System.identityHashCode(this) * 0x9E3779B9;
    /** Per stream, guarded by {@code streams}: the last chunk it read from the packs and the last one announced ahead. */
    private final int[] lastMiss = new int[STREAMS];
    private final int[] announcedUpTo = new int[STREAMS];
    /** Per stream, guarded by {@code streams}: how many misses in a row continued it. */
    private final int[] runs = new int[STREAMS];
    private final Object streams = new Object();
    private int nextStream;
    /** O_DIRECT read-ahead of the streams over a long blob; null for a short one or when the store does not read so. */
    private final DirectStreams direct;
    /** Chunks announced and chunks loaded so far (for tests). */
    private final AtomicInteger announced = new AtomicInteger();
    private final AtomicInteger loads = new AtomicInteger();

    LocalBlobReader(PackStore packs, B3Digest digest, ChunkList chunks, Location firstChunk) {
        super(chunks.toMetas());
        this.packs = packs;
        this.digest = digest;
        this.firstChunk = firstChunk;
        Arrays.fill(lastMiss, -2);
        int maxChunk = Arrays.stream(chunks.sizes()).max().orElse(0);
        // A short blob's chunks each get a slot of their own size: fewer chunks than slots.
        this.randomSlots = new ChunkSlots(RANDOM_SLOTS, chunks.sizes().length > RANDOM_SLOTS ? maxChunk : 0);
        DirectReads reads = packs.directReads();
        if (reads != null && chunks.sizes().length > STREAM_SLOTS) {
            this.direct = new DirectStreams(reads, STREAMS, chunks.sizes().length, maxChunk, new SpanLoader());
        } else {
            this.direct = null;
        }
    }

    /** The WILLNEED hints below keep the disk ahead; read-ahead on other threads measured slower (docs/performance.md). */
    @Override
    public boolean readsAhead() {
        return true;
    }

    @Override
    protected int copyChunk(int index, int within, ByteBuffer dst) throws IOException {
        int n = direct != null ? direct.copy(index, within, dst) : -1;
        if (n >= 0) {
            return n;
        }
        n = copyFromStreamSlot(index, within, dst);
        if (n >= 0) {
            return n;
        }
        n = copyFromRandomSlot(index, within, dst);
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
            n = copyFromRandomSlot(index, within, dst);
            if (n >= 0) {
                return n;
            }
            cached = cached(index);
            if (cached != null) {
                return copyFrom(index, cached, within, dst);
            }
            int stream = followStream(index);
            // Reused buffers pay off on long streams; a file of a few chunks would only allocate them.
            boolean longBlob = chunks().size() > STREAM_SLOTS;
            // A direct stream reads ahead past the page cache, wasted on a random reader: it needs
            // a third miss in a row (or one where a direct stream is reading already).
            boolean established = stream >= 0 && established(stream);
            if (direct != null && (established || direct.follows(index))) {
                n = direct.start(index, within, dst);
                if (n >= 0) {
                    return n;
                }
            }
            // Hints for a stream a direct stream will soon take over would read its chunks twice.
            if (stream >= 0 && (direct == null || established)) {
                announceAhead(stream, index);
            }
            // A read that takes the whole chunk needs neither a slot nor an array (the daemon
            // sends a stream chunk by chunk, each read into the message it goes out in).
            if (within == 0 && dst.remaining() >= chunks().get(index).size()) {
                return loadInto(index, dst);
            }
            return stream >= 0 && longBlob
                    ? loadIntoStreamSlot(index, within, dst)
                    : loadIntoRandomSlot(index, within, dst);
        }
    }

    @Override
    protected byte[] chunk(int index) throws IOException {
        byte[] cached = cached(index);
        if (cached != null) {
            return cached;
        }
        byte[] streamed = fromDirectStream(index);
        if (streamed != null) {
            return streamed;
        }
        synchronized (loadLock(index)) {
            cached = cached(index);
            return cached != null ? cached : load(index);
        }
    }

    /**
     * A copy of chunk {@code index} out of the direct stream that holds or loads it (verified
     * there), else null: the first place of a chunk the blob repeats, which the base class keeps
     * as an array, comes from the read-ahead as its neighbours do instead of a read of its own.
     */
    private byte[] fromDirectStream(int index) throws IOException {
        if (direct == null || !direct.streaming()) {
            return null;
        }
        byte[] copy = new byte[(int) chunks().get(index).size()];
        return direct.copy(index, 0, ByteBuffer.wrap(copy)) == copy.length ? copy : null;
    }

    /** Loads chunk {@code index} into an array of its own and caches it; under its load lock. */
    private byte[] load(int index) throws IOException {
        byte[] data = packs.readVerified(locate(index));
        loads.incrementAndGet();
        cache.add(index, data);
        return data;
    }

    /**
     * Loads chunk {@code index}, which {@code dst} takes whole, straight into it and verifies it
     * there; under its load lock. A read of a whole small file, the common case in a tree, so
     * neither allocates, zeroes and copies the chunk once more nor leaves the heap that much to
     * collect (a cold read of the bench tree allocated 437 MB of such arrays). Nothing is
     * cached: the caller has the whole chunk, and nothing of it is left for the kernel's page
     * cache. On a failed check this throws and {@code dst}'s position stays where it was.
     */
    private int loadInto(int index, ByteBuffer dst) throws IOException {
        Location l = locate(index);
        packs.readVerifiedInto(l, MemorySegment.ofBuffer(dst).asSlice(0, l.length()));
        loads.incrementAndGet();
        dst.position(dst.position() + l.length());
        return l.length();
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

    /** {@link #locate} without touching the file system (no rescan on a miss): null if not known, or not as listed. */
    private Location locateKnown(int index) {
        var meta = chunks().get(index);
        Location l = index == 0 && firstChunk != null ? firstChunk : packs.findKnown(ObjectKind.CHUNK, meta.digest());
        return l != null && l.length() == meta.size() ? l : null;
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

    /** Copies from the random-read slot holding chunk {@code index}, which becomes the chunk lent after the read; -1 if none does. */
    private int copyFromRandomSlot(int index, int within, ByteBuffer dst) {
        int n = randomSlots.copy(index, (int) chunks().get(index).size(), within, dst);
        if (n >= 0) {
            usedHeld(index);
        }
        return n;
    }

    /** Loads chunk {@code index} into the oldest random-read slot and copies from it, as {@link #loadIntoStreamSlot}. */
    private int loadIntoRandomSlot(int index, int within, ByteBuffer dst) throws IOException {
        Location l = locate(index);
        int n = randomSlots.load(index, l.length(), within, dst, buffer -> {
            packs.readVerifiedInto(l, buffer);
            loads.incrementAndGet();
            return true;
        });
        usedHeld(index);
        return n;
    }

    @Override
    protected boolean lendHeld(int index, ChunkUser user) {
        return randomSlots.lend(index, (int) chunks().get(index).size(), start(index), user);
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
     * returns that stream, else starts following a new one and returns -1.
     */
    private int followStream(int index) {
        synchronized (streams) {
            for (int s = 0; s < STREAMS; s++) {
                if (index > lastMiss[s] && index <= lastMiss[s] + 2) {
                    lastMiss[s] = index;
                    runs[s]++;
                    return s;
                }
            }
            int stream = nextStream;
            nextStream = (nextStream + 1) % STREAMS;
            lastMiss[stream] = index;
            announcedUpTo[stream] = index;
            runs[stream] = 0;
            return -1;
        }
    }

    /** Whether stream {@code s} has continued at least twice: a sequential reader, not chance. */
    private boolean established(int s) {
        synchronized (streams) {
            return runs[s] >= 2;
        }
    }

    /**
     * Announces the chunks after {@code index} up to AHEAD past it to the kernel
     * (POSIX_FADV_WILLNEED), in batches of half that, never one twice.
     */
    private void announceAhead(int stream, int index) throws IOException {
        int from;
        int to;
        synchronized (streams) {
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

    /**
     * Loads for direct streams: a chunk, or a span of chunks stored one after the other in one
     * pack (an import writes a file's chunks so), with one O_DIRECT read of up to
     * {@link DirectStream#SPAN_BUFFER}: a cold GiB took 3368 device reads one chunk at a time.
     */
    private final class SpanLoader implements DirectStream.Loader {
        @Override
        public MemorySegment load(int index, MemorySegment buffer) throws IOException {
            return loadDirect(index, buffer);
        }

        @Override
        public long spanBuffer() {
            return DirectStream.SPAN_BUFFER;
        }

        /** Plans with what the store knows already: called under a stream's lock, it must not touch the file system. */
        @Override
        public int span(int index, int max, long bufferBytes) {
            Location[] at = new Location[max];
            for (int k = 0; k < max; k++) {
                at[k] = locateKnown(index + k);
                if (at[k] == null) {
                    break;
                }
            }
            return Math.max(1, together(at, max, bufferBytes));
        }

        @Override
        public int loadSpan(int index, int count, MemorySegment buffer, MemorySegment[] payloads) throws IOException {
            if (holdsRepeat(index)) {
                return 0; // served from memory wherever it occurs: no read ahead of it
            }
            Location[] at = new Location[count];
            for (int k = 0; k < count; k++) {
                at[k] = locate(index + k);
            }
            // Planned under the lock with what was known then; a pack published since may hold
            // some of these chunks now: read the part that still lies together.
            int n = count == 1 ? 1 : together(at, count, buffer.byteSize());
            if (n <= 1) {
                payloads[0] = loadDirect(index, buffer);
                return 1;
            }
            Pack pack = (Pack) at[0].source();
            MemorySegment span = pack.readDirectSpan(at[0], at[n - 1], buffer);
            if (span == null) {
                payloads[0] = loadDirect(index, buffer); // O_DIRECT refused just now: this chunk through the page cache
                return 1;
            }
            DirectReads counts = packs.directReads();
            counts.spans.increment();
            for (int k = 0; k < n; k++) {
                MemorySegment payload = span.asSlice(at[k].offset() - at[0].offset(), at[k].length());
                if (!packs.intact(at[k], payload)) {
                    if (k == 0) {
                        throw PackStore.corrupted(at[k]);
                    }
                    return k; // the reader's own path reads it again and reports it
                }
                counts.direct.increment();
                payloads[k] = payload;
            }
            return n;
        }

        /**
         * How many of {@code at[0..max)} (null ends them) lie one after another in one pack that
         * reads with O_DIRECT ({@link DirectStream#continuesSpan}); 0 if the first is not in such
         * a pack.
         */
        private static int together(Location[] at, int max, long bufferBytes) {
            if (at[0] == null || !(at[0].source() instanceof Pack pack) || pack.directRefused()) {
                return 0;
            }
            long end = at[0].offset() + at[0].length();
            int n = 1;
            while (n < max && at[n] != null && at[n].source() == pack
                    && DirectStream.continuesSpan(at[0].offset(), end, at[n].offset(), at[n].length(), bufferBytes)) {
                end = at[n].offset() + at[n].length();
                n++;
            }
            return n;
        }
    }

    /**
     * Loads chunk {@code index} for a direct stream: with O_DIRECT from a published pack, else
     * through the page cache (a file system without it, a pack this process still writes); verified.
     */
    private MemorySegment loadDirect(int index, MemorySegment buffer) throws IOException {
        Location l = locate(index);
        DirectReads counts = packs.directReads();
        MemorySegment payload = l.source() instanceof Pack pack ? pack.readDirect(l, buffer) : null;
        if (payload != null) {
            counts.direct.increment();
        } else {
            payload = buffer.asSlice(0, l.length());
            l.source().readPayloadInto(l, payload);
            counts.buffered.increment();
        }
        if (!packs.intact(l, payload)) {
            throw PackStore.corrupted(l);
        }
        return payload;
    }

    /** Ends the direct streams (waiting for their loads) and gives their buffers back. */
    @Override
    public void close() {
        if (direct != null) {
            direct.close();
        }
    }

    /** Whether a direct stream was made (for tests). */
    boolean hasDirectStreams() {
        return direct != null && direct.active();
    }

    int announcedChunks() {
        return announced.get();
    }

    int loadedChunks() {
        return loads.get();
    }

    int randomSlotBuffersMade() {
        return randomSlots.buffersMade();
    }

    boolean hasStreamSlots() {
        return streamSlots.allocated();
    }
}

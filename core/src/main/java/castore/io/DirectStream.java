package castore.io;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Read-ahead for one sequential stream over the chunks of a large blob, past the page cache: the
 * stream's next chunks are loaded into a ring of aligned native buffers by {@link DirectReads}'
 * threads (with O_DIRECT where the owner can: see {@link #readAligned}), verified there by the
 * {@link Loader}, and copied out by the readers.
 *
 * <p>Why: a buffered read of a cold chunk costs the page cache's work (allocating, charging and
 * adding a folio per 4 KiB: the size POSIX_FADV_WILLNEED reads in) and a copy out of it, and a
 * mount keeps those bytes in FUSE's own page cache afterwards, so the file's copy is memory spent
 * twice. With O_DIRECT the disk writes straight into the buffer the chunk is verified and served
 * from (docs/performance.md, "Session 10"). Several chunks are in flight at once, since a direct
 * read has no kernel read-ahead behind it.
 *
 * <p>A chunk is loaded once per stream; readers that find it loading wait for it. A slot is
 * reused only when no reader is copying out of it ({@code pins}) and its chunk lies outside the
 * window from {@link #BEHIND} chunks behind the latest one taken (reads of one stream arrive
 * slightly out of order) to {@link #AHEAD} past it, or to the end of the {@link #SPANS_AHEAD}th span
 * past it when the loader reads spans. A load that fails (an I/O error, a corrupted
 * chunk, anything thrown) or finds nothing is forgotten, and the read that wanted the chunk takes
 * its owner's usual path, which reads and verifies it again and reports what is wrong: the stream
 * only ever speeds reads up. The chunk a reader asks for when it (re)starts a stream is loaded on
 * that reader's thread, not queued behind other streams' read-ahead.
 *
 * <p>Spans grow from {@link #FIRST_SPAN} to the whole buffer ({@link #SPAN_BUFFER}, 4 MiB) as a
 * stream goes on, as the kernel's own read-ahead does: a short read does not wait for 4 MiB, and a
 * long one gets requests as large as the kernel's read-ahead makes. Span buffers are backed by
 * transparent huge pages where the kernel offers them ({@link Libc#mapHugePages}): a request's
 * memory in 4 KiB pages is one segment per page, and with the common limit of 254 segments the
 * block layer split every 1 MiB read in two (docs/performance.md, "Session 21").
 */
public final class DirectStream implements AutoCloseable {
    /** Alignment of O_DIRECT offsets, lengths and memory: the largest logical block size in use. */
    public static final int ALIGN = 4096;
    /** Chunks read ahead of the latest one taken: about 1.5 MiB at the average chunk size. */
    public static final int AHEAD = 6;
    /** Chunks kept behind the latest one taken. */
    public static final int BEHIND = 1;
    /** Buffers of a stream whose loader reads chunk by chunk: the window, one chunk each. */
    private static final int SLOTS = AHEAD + BEHIND + 1;
    /** Spans loaded or loading past the one holding the latest chunk taken. */
    static final int SPANS_AHEAD = 2;
    /**
     * Buffers of a stream whose loader reads spans: those ahead, the one being read, the one
     * behind, and two spare (spans shorter than AHEAD chunks need a third ahead).
     */
    private static final int SPAN_SLOTS = SPANS_AHEAD + 4;

    /**
     * A buffer for loaders that read spans ({@link Loader#spanBuffer}): 4 MiB, the largest
     * request the kernel sends a disk by default ({@code max_sectors_kb}) and two huge pages.
     */
    public static final long SPAN_BUFFER = 4 << 20;
    /** The bytes of a stream's first span; each next span may be twice as long, up to the buffer. */
    static final long FIRST_SPAN = 1 << 20;
    /** The most chunks one load reads. */
    static final int MAX_SPAN = 64;

    /**
     * Loads and verifies chunks; runs on a {@link DirectReads} thread. A loader may read a
     * <em>span</em> of consecutive chunks in one request when they lie together in one file
     * ({@link #span}, {@link #loadSpan}): fewer, larger disk reads cost the kernel and the
     * device less than one per chunk.
     */
    @FunctionalInterface
    public interface Loader {
        /**
         * Reads chunk {@code index} into {@code buffer} (aligned to {@link #ALIGN}, as large as the
         * stream's buffers) and verifies it; the slice of {@code buffer} holding exactly its
         * bytes, or null if this loader does not have it (the reader then takes another path).
         */
        MemorySegment load(int index, MemorySegment buffer) throws IOException;

        /** Buffer bytes this loader would like for spans (0: one chunk per buffer is enough). */
        default long spanBuffer() {
            return 0;
        }

        /**
         * How many chunks from {@code index} on (at least 1, at most {@code max}) one
         * {@link #loadSpan} can read into a buffer of {@code bufferBytes}. Called with the
         * stream's lock held: it must be quick and must not block.
         */
        default int span(int index, int max, long bufferBytes) {
            return 1;
        }

        /**
         * Reads chunks {@code index} to {@code index + count - 1} (a {@link #span}) into
         * {@code buffer} and verifies them; puts each one's slice in {@code payloads} and returns
         * how many of the first ones it has (0: none; a chunk that fails verification ends the
         * span before it, or throws if it is the first).
         */
        default int loadSpan(int index, int count, MemorySegment buffer, MemorySegment[] payloads) throws IOException {
            MemorySegment payload = load(index, buffer);
            if (payload == null) {
                return 0;
            }
            payloads[0] = payload;
            return 1;
        }
    }

    /** Reads {@code [offset, offset + dst.byteSize())} of a file into {@code dst}; the bytes read, or -1 if it cannot read so. */
    @FunctionalInterface
    public interface AlignedFile {
        long read(MemorySegment dst, long offset) throws IOException;
    }

    private enum State { EMPTY, LOADING, READY, ABSENT }

    /**
     * A buffer with the chunks {@code first} to {@code last} (a span) in it, or on their way. The
     * buffer is allocated on first use: a few spans cover the window, and only a blob whose chunks
     * lie apart (one per buffer) needs all of them.
     */
    private static final class Slot {
        MemorySegment buffer;
        int first = -1;
        int last = -1;
        State state = State.EMPTY;
        /** Each chunk's bytes, from {@code first} on. */
        final MemorySegment[] payloads = new MemorySegment[MAX_SPAN];
        int pins;
        /** Counts claims: a load runs only for the claim it was made for (see {@link #load}). */
        int generation;

        boolean holds(int index) {
            return state != State.EMPTY && index >= first && index <= last;
        }

        void clear() {
            state = State.EMPTY;
            first = last = -1;
            Arrays.fill(payloads, null);
        }
    }

    private final int count;
    private final long bufferBytes;
    private final Loader loader;
    private final DirectReads loaders;
    private final Arena arena = Arena.ofShared();
    private final Slot[] slots;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    /** The latest chunk a reader took; guarded by lock. */
    private int latest = -1;
    private int loading;
    private boolean closed;
    /** When a reader last took a chunk (System.nanoTime); guarded by lock. */
    private long lastTake = System.nanoTime();
    /** The bytes the next span may take: doubles with each span claimed, back to FIRST_SPAN at a jump; guarded by lock. */
    private long spanBytes = FIRST_SPAN;

    /** A stream over {@code count} chunks of at most {@code maxChunk} bytes each. */
    DirectStream(int count, int maxChunk, Loader loader, DirectReads loaders) {
        this.count = count;
        this.loader = loader;
        this.loaders = loaders;
        this.bufferBytes = bufferSize(maxChunk, loader);
        this.slots = new Slot[slotCount(loader)];
        Arrays.setAll(slots, i -> new Slot());
    }

    /** One buffer: the largest chunk's bytes rounded out to ALIGN at both ends, or the loader's span buffer if larger. */
    static long bufferSize(int maxChunk, Loader loader) {
        return Math.max(alignUp(maxChunk) + ALIGN, alignUp(loader.spanBuffer()));
    }

    private static int slotCount(Loader loader) {
        return loader.spanBuffer() > 0 ? SPAN_SLOTS : SLOTS;
    }

    /** The buffers' total size, for the cap on what streams hold. */
    static long footprint(int maxChunk, Loader loader) {
        return slotCount(loader) * bufferSize(maxChunk, loader);
    }

    /**
     * Reads {@code length} bytes at {@code offset} of {@code file} into {@code buffer} with the
     * range rounded out to {@link #ALIGN}, as O_DIRECT requires; the slice holding those bytes,
     * or null if the file cannot be read so (the caller reads another way).
     */
    public static MemorySegment readAligned(AlignedFile file, long offset, int length, MemorySegment buffer) throws IOException {
        long from = offset & -ALIGN;
        int skip = (int) (offset - from);
        long n = file.read(buffer.asSlice(0, alignUp(skip + (long) length)), from);
        if (n < 0) {
            return null;
        }
        if (n < skip + (long) length) {
            throw new IOException("the file ends " + (skip + length - n) + " bytes before the end of the data at offset " + offset);
        }
        return buffer.asSlice(skip, length);
    }

    /**
     * Whether an entry at {@code offset} of {@code length} bytes continues a span of one file
     * that starts at {@code spanStart} and ends at {@code spanEnd}: right behind it (at most
     * {@link #ALIGN} apart: a record header or so), and the whole still within {@code bufferBytes}
     * once rounded out to ALIGN at both ends, as {@link #readAligned} reads it. For loaders'
     * {@link Loader#span} plans.
     */
    public static boolean continuesSpan(long spanStart, long spanEnd, long offset, long length, long bufferBytes) {
        long gap = offset - spanEnd;
        return gap >= 0 && gap <= ALIGN && alignedLength(spanStart, offset + length) <= bufferBytes;
    }

    /** The bytes {@link #readAligned} reads for the range {@code [from, to)} of a file: rounded out to ALIGN at both ends. */
    public static long alignedLength(long from, long to) {
        return alignUp(to) - (from & -ALIGN);
    }

    /**
     * Points the stream at chunk {@code index}, loading it on this thread if the stream does not
     * hold or load it (and the next {@link #AHEAD} on the loader threads), then copies as
     * {@link #copy}.
     */
    int startAt(int index, int within, ByteBuffer dst) throws IOException {
        Slot own = null;
        lock.lock();
        try {
            if (closed) {
                return -1;
            }
            latest = index; // after a jump, what was loaded around the old place is free again
            spanBytes = FIRST_SPAN;
            if (find(index) == null) {
                own = freeSlot();
                // The chunk asked for alone (its reader waits for it); the rest comes in spans.
                if (own != null && !claim(own, index, 1)) {
                    own = null;
                }
            }
            fill();
        } finally {
            lock.unlock();
        }
        if (own != null) {
            load(own, own.generation);
        }
        return copy(index, within, dst);
    }

    /** The latest chunk a reader took from this stream, -1 before any. */
    int latest() {
        lock.lock();
        try {
            return latest;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Copies bytes of chunk {@code index} from {@code within} on into {@code dst}, waiting for its
     * load if it is on its way; how many, or -1 if this stream does not hold or load that chunk
     * (or its loader does not have it). Taking a chunk moves the read-ahead on.
     */
    int copy(int index, int within, ByteBuffer dst) throws IOException {
        Slot slot;
        lock.lock();
        try {
            slot = find(index);
            if (slot == null) {
                return -1;
            }
            while (slot.state == State.LOADING && !closed) {
                changed.awaitUninterruptibly();
            }
            if (!slot.holds(index) || closed) {
                return -1; // reused meanwhile, or the load ended before this chunk
            }
            if (slot.state == State.ABSENT) {
                slot.clear(); // the reader's own path reads it (and reports what is wrong)
                return -1;
            }
            lastTake = System.nanoTime();
            if (index > latest) {
                latest = index;
                fill();
            }
            slot.pins++;
        } finally {
            lock.unlock();
        }
        try {
            MemorySegment payload = slot.payloads[index - slot.first];
            int n = (int) Math.min(dst.remaining(), payload.byteSize() - within);
            MemorySegment.copy(payload, within, MemorySegment.ofBuffer(dst), 0, n);
            dst.position(dst.position() + n);
            return n;
        } finally {
            lock.lock();
            try {
                if (--slot.pins == 0) {
                    changed.signalAll();
                }
            } finally {
                lock.unlock();
            }
        }
    }

    /**
     * Closes the stream if no reader took a chunk for {@code idleNanos}, no load is under way and
     * nobody copies (a stream that reached the end of its file, or whose reader stopped): its
     * buffers can serve another stream. True if it closed (now or before).
     */
    boolean closeIfIdle(long idleNanos) {
        lock.lock();
        try {
            if (closed) {
                return true;
            }
            if (loading > 0 || pinned() || System.nanoTime() - lastTake < idleNanos) {
                return false;
            }
            closed = true;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        arena.close();
        return true;
    }

    /** Waits for loads under way and readers copying, then frees the buffers. */
    @Override
    public void close() {
        lock.lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            changed.signalAll();
            while (loading > 0 || pinned()) {
                changed.awaitUninterruptibly();
            }
        } finally {
            lock.unlock();
        }
        arena.close();
    }

    /** With lock held: the slot holding or loading chunk {@code index}. */
    private Slot find(int index) {
        for (Slot s : slots) {
            if (s.holds(index)) {
                return s;
            }
        }
        return null;
    }

    /**
     * With lock held: marks {@code slot} (free) as loading the span from chunk {@code index} on,
     * at most {@code max} chunks, as long as the loader can read in one request and no other slot
     * holds any of it. False if its buffer could not be had.
     */
    private boolean claim(Slot slot, int index, int max) {
        if (slot.buffer == null) {
            try {
                slot.buffer = allocateBuffer();
            } catch (RuntimeException | OutOfMemoryError noMemory) {
                return false; // readers take their own path
            }
        }
        slot.clear(); // its old span no longer counts below
        max = Math.min(max, count - index);
        for (int k = 1; k < max; k++) {
            if (find(index + k) != null) {
                max = k;
                break;
            }
        }
        int span = 1;
        if (max > 1) {
            try {
                span = Math.clamp(loader.span(index, max, Math.min(bufferBytes, spanBytes)), 1, max);
            } catch (RuntimeException e) {
                span = 1;
            }
        }
        slot.first = index;
        slot.last = index + span - 1;
        slot.state = State.LOADING;
        slot.generation++;
        loading++;
        return true;
    }

    private boolean pinned() {
        for (Slot s : slots) {
            if (s.pins > 0) {
                return true;
            }
        }
        return false;
    }

    /**
     * With lock held: schedules loads of the chunks from the latest taken to AHEAD past it, and on
     * to the end of the SPANS_AHEADth span past the one holding it, as slots allow.
     */
    private void fill() {
        int last = Math.min(count - 1, latest + AHEAD);
        int spansAhead = 0;
        for (int next = Math.max(latest, 0); next < count && (next <= last || spansAhead < SPANS_AHEAD) && !closed; next++) {
            if (next > latest) {
                spansAhead++;
            }
            Slot held = find(next);
            if (held != null) {
                next = held.last;
                continue;
            }
            Slot free = freeSlot();
            if (free == null || !claim(free, next, MAX_SPAN)) {
                return; // a later take goes on
            }
            spanBytes = Math.min(bufferBytes, 2 * spanBytes);
            next = free.last;
            int generation = free.generation;
            try {
                loaders.execute(() -> load(free, generation));
            } catch (RejectedExecutionException | Error notStarted) {
                // Shutting down, or no thread could be made: readers take their own path. (An
                // Error may come after the task was queued: it then finds its claim gone.)
                finish(free, 0);
                return;
            }
        }
    }

    /**
     * With lock held: an empty slot with a buffer, else one outside the window that nobody copies
     * from (the one furthest behind, else the one furthest ahead), else an empty slot without a
     * buffer yet (so buffers are allocated only as the window needs them).
     */
    private Slot freeSlot() {
        Slot behind = null;
        Slot ahead = null;
        Slot unallocated = null;
        for (Slot s : slots) {
            if (s.state == State.EMPTY) {
                if (s.buffer != null) {
                    return s;
                }
                unallocated = unallocated == null ? s : unallocated;
            } else if (s.state != State.LOADING && s.pins == 0) {
                if (s.last < latest - BEHIND) {
                    behind = behind == null || s.first < behind.first ? s : behind;
                } else if (beyondWindow(s)) {
                    ahead = ahead == null || s.first > ahead.first ? s : ahead;
                }
            }
        }
        return behind != null ? behind : ahead != null ? ahead : unallocated;
    }

    /**
     * With lock held: whether {@code slot} lies past the window {@link #fill} keeps: it starts more
     * than AHEAD chunks past the latest one taken, with SPANS_AHEAD held spans before it (a reader
     * that jumps back leaves such spans behind in the ring).
     */
    private boolean beyondWindow(Slot slot) {
        if (slot.first <= latest + AHEAD) {
            return false;
        }
        int before = 0;
        for (Slot s : slots) {
            if (s.state != State.EMPTY && s.first > latest && s.first < slot.first) {
                before++;
            }
        }
        return before >= SPANS_AHEAD;
    }

    /**
     * On a loader thread (or the reader that starts the stream): loads the slot's span into it,
     * if the slot is still loading under claim {@code generation} (a task whose claim was given
     * up, see {@link #fill}, does nothing).
     */
    private void load(Slot slot, int generation) {
        int first;
        int span;
        lock.lock();
        try {
            if (slot.generation != generation || slot.state != State.LOADING) {
                return;
            }
            // Claimed: nobody else writes the buffer or payloads until finish() publishes them.
            first = slot.first;
            span = slot.last - first + 1;
        } finally {
            lock.unlock();
        }
        int loaded = 0;
        try {
            loaded = Math.clamp(loader.loadSpan(first, span, slot.buffer, slot.payloads), 0, span);
        } catch (Throwable ignored) {
            // The reader's own path reads the chunks again and reports the error.
        } finally {
            lock.lock();
            try {
                finish(slot, loaded);
            } finally {
                lock.unlock();
            }
        }
    }

    /**
     * With lock held: a load ended with the first {@code loaded} chunks of the slot's span (the
     * rest, if any, are no longer held: their readers take their own path); none is ABSENT.
     */
    private void finish(Slot slot, int loaded) {
        if (loaded == 0) {
            slot.last = slot.first;
            slot.state = State.ABSENT;
        } else {
            slot.last = slot.first + loaded - 1;
            slot.state = State.READY;
        }
        loading--;
        changed.signalAll();
    }

    /**
     * With lock held: a buffer of bufferBytes, aligned to ALIGN; in huge pages where the size
     * allows, so that the disk gets a whole span as one request.
     */
    private MemorySegment allocateBuffer() {
        if (bufferBytes % Libc.HUGE_PAGE == 0) {
            MemorySegment mapped = Libc.mapHugePages(bufferBytes, arena);
            if (mapped != null) {
                return mapped;
            }
        }
        return arena.allocate(bufferBytes, ALIGN);
    }

    private static long alignUp(long n) {
        return (n + ALIGN - 1) & -ALIGN;
    }
}

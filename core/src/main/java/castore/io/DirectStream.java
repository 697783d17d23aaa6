package castore.io;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
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
 * slightly out of order) to {@link #AHEAD} past it. A load that fails (an I/O error, a corrupted
 * chunk, anything thrown) or finds nothing is forgotten, and the read that wanted the chunk takes
 * its owner's usual path, which reads and verifies it again and reports what is wrong: the stream
 * only ever speeds reads up. The chunk a reader asks for when it (re)starts a stream is loaded on
 * that reader's thread, not queued behind other streams' read-ahead.
 */
public final class DirectStream implements AutoCloseable {
    /** Alignment of O_DIRECT offsets, lengths and memory: the largest logical block size in use. */
    public static final int ALIGN = 4096;
    /** Chunks read ahead of the latest one taken: about 1.5 MiB at the average chunk size. */
    public static final int AHEAD = 6;
    /** Chunks kept behind the latest one taken. */
    public static final int BEHIND = 1;
    private static final int SLOTS = AHEAD + BEHIND + 1;

    /** Loads and verifies one chunk; runs on a {@link DirectReads} thread. */
    @FunctionalInterface
    public interface Loader {
        /**
         * Reads chunk {@code index} into {@code buffer} (aligned to {@link #ALIGN}, as large as the
         * stream's buffers) and verifies it; the slice of {@code buffer} holding exactly its
         * bytes, or null if this loader does not have it (the reader then takes another path).
         */
        MemorySegment load(int index, MemorySegment buffer) throws IOException;
    }

    /** Reads {@code [offset, offset + dst.byteSize())} of a file into {@code dst}; the bytes read, or -1 if it cannot read so. */
    @FunctionalInterface
    public interface AlignedFile {
        long read(MemorySegment dst, long offset) throws IOException;
    }

    private enum State { EMPTY, LOADING, READY, ABSENT }

    private static final class Slot {
        final MemorySegment buffer;
        int index = -1;
        State state = State.EMPTY;
        MemorySegment payload;
        int pins;

        Slot(MemorySegment buffer) {
            this.buffer = buffer;
        }
    }

    private final int count;
    private final Loader loader;
    private final DirectReads loaders;
    private final Arena arena = Arena.ofShared();
    private final Slot[] slots = new Slot[SLOTS];
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    /** The latest chunk a reader took; guarded by lock. */
    private int latest = -1;
    private int loading;
    private boolean closed;
    /** When a reader last took a chunk (System.nanoTime); guarded by lock. */
    private long lastTake = System.nanoTime();

    /** A stream over {@code count} chunks of at most {@code maxChunk} bytes each. */
    DirectStream(int count, int maxChunk, Loader loader, DirectReads loaders) {
        this.count = count;
        this.loader = loader;
        this.loaders = loaders;
        long size = bufferSize(maxChunk);
        try {
            for (int i = 0; i < SLOTS; i++) {
                slots[i] = new Slot(arena.allocate(size, ALIGN));
            }
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    /** One buffer: a chunk's bytes rounded out to ALIGN at both ends. */
    static long bufferSize(int maxChunk) {
        return alignUp(maxChunk) + ALIGN;
    }

    /** The buffers' total size, for the cap on what streams hold. */
    static long footprint(int maxChunk) {
        return SLOTS * bufferSize(maxChunk);
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
            if (find(index) == null) {
                own = freeSlot();
                if (own != null) {
                    own.index = index;
                    own.state = State.LOADING;
                    loading++;
                }
            }
            fill();
        } finally {
            lock.unlock();
        }
        if (own != null) {
            load(own, index);
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
            if (slot.index != index || closed) {
                return -1;
            }
            if (slot.state == State.ABSENT) {
                slot.state = State.EMPTY; // the reader's own path reads it (and reports what is wrong)
                slot.index = -1;
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
            int n = (int) Math.min(dst.remaining(), slot.payload.byteSize() - within);
            MemorySegment.copy(slot.payload, within, MemorySegment.ofBuffer(dst), 0, n);
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
            if (s.index == index && s.state != State.EMPTY) {
                return s;
            }
        }
        return null;
    }

    private boolean pinned() {
        for (Slot s : slots) {
            if (s.pins > 0) {
                return true;
            }
        }
        return false;
    }

    /** With lock held: schedules loads of the chunks from the latest taken to AHEAD past it, as slots allow. */
    private void fill() {
        int last = Math.min(count - 1, latest + AHEAD);
        for (int next = Math.max(latest, 0); next <= last && !closed; next++) {
            if (find(next) != null) {
                continue;
            }
            Slot free = freeSlot();
            if (free == null) {
                return; // a later take goes on
            }
            free.index = next;
            free.state = State.LOADING;
            loading++;
            int index = next;
            try {
                loaders.execute(() -> load(free, index));
            } catch (RejectedExecutionException | Error notStarted) {
                finish(free, null); // shutting down, or no thread could be made: readers take their own path
                return;
            }
        }
    }

    /** With lock held: an empty slot, else the one with the oldest chunk outside the window that nobody copies from. */
    private Slot freeSlot() {
        Slot best = null;
        for (Slot s : slots) {
            if (s.state == State.EMPTY) {
                return s;
            }
            boolean outside = s.index < latest - BEHIND || s.index > latest + AHEAD;
            if (s.state != State.LOADING && s.pins == 0 && outside && (best == null || s.index < best.index)) {
                best = s;
            }
        }
        return best;
    }

    /** On a loader thread (or the reader that starts the stream): loads chunk {@code index} into the slot. */
    private void load(Slot slot, int index) {
        MemorySegment payload = null;
        try {
            payload = loader.load(index, slot.buffer);
        } catch (Throwable ignored) {
            // The reader's own path reads the chunk again and reports the error.
        } finally {
            lock.lock();
            try {
                finish(slot, payload);
            } finally {
                lock.unlock();
            }
        }
    }

    /** With lock held: a load ended, with the chunk's bytes or (null) without. */
    private void finish(Slot slot, MemorySegment payload) {
        slot.payload = payload;
        slot.state = payload == null ? State.ABSENT : State.READY;
        loading--;
        changed.signalAll();
    }

    private static long alignUp(long n) {
        return (n + ALIGN - 1) & -ALIGN;
    }
}

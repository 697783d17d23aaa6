package castore.store.local;

import castore.hash.Blake3;
import castore.service.CorruptedDataException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Read-ahead for one sequential stream over a large blob, past the page cache: the stream's next
 * chunks are read with O_DIRECT into a ring of native buffers by the store's read-ahead threads
 * ({@link DirectReads}), verified there, and copied out by the readers.
 *
 * <p>Why: a buffered read of a cold chunk costs the page cache's work (allocating, charging and
 * adding a folio per 4 KiB: the size POSIX_FADV_WILLNEED reads in) and a copy out of it, and a
 * mount keeps those bytes in FUSE's own page cache afterwards, so the pack's copy is memory
 * spent twice. With O_DIRECT the disk writes straight into the buffer the chunk is verified and
 * served from (docs/performance.md, "Session 10"). Several chunks are in flight at once, since a
 * direct read has no kernel read-ahead behind it. A pack on a file system that refuses O_DIRECT
 * (tmpfs), or still being written by this process, is read through the page cache on the same
 * threads, still ahead of the readers.
 *
 * <p>A chunk is loaded once per stream; readers that find it loading wait for it. A slot is
 * reused only when no reader is copying out of it ({@code pins}) and its chunk lies more than
 * {@link #BEHIND} chunks behind the latest one taken (reads of one stream arrive slightly out
 * of order) or after a jump of the stream. A failed load (I/O error, corrupted chunk) fails the
 * read that takes it and is forgotten, so a later read tries again.
 */
final class DirectStream implements AutoCloseable {
    /** Alignment of O_DIRECT offsets, lengths and memory: the largest logical block size in use. */
    static final int ALIGN = 4096;
    /** Chunks read ahead of the latest one taken: about 1.5 MiB at the average chunk size. */
    static final int AHEAD = 6;
    /** Chunks kept behind the latest one taken. */
    static final int BEHIND = 1;
    private static final int SLOTS = AHEAD + BEHIND + 1;

    /** Where a stream's chunks are; LocalBlobReader's chunk list. */
    interface Chunks {
        int count();

        /** The location of chunk {@code index}, checked against the chunk list. */
        Location locate(int index) throws IOException;
    }

    private enum State { EMPTY, LOADING, READY, FAILED }

    private static final class Slot {
        final MemorySegment buffer;
        int index = -1;
        State state = State.EMPTY;
        int payloadAt;
        int length;
        IOException error;
        int pins;

        Slot(MemorySegment buffer) {
            this.buffer = buffer;
        }
    }

    private final Chunks chunks;
    private final DirectReads loaders;
    private final Arena arena = Arena.ofShared();
    private final Slot[] slots = new Slot[SLOTS];
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    /** The latest chunk a reader took; guarded by lock. */
    private int latest = -1;
    private int loading;
    private boolean closed;

    /** A stream whose buffers hold chunks of up to {@code maxChunk} bytes. */
    DirectStream(Chunks chunks, int maxChunk, DirectReads loaders) {
        this.chunks = chunks;
        this.loaders = loaders;
        // A chunk's aligned span: its bytes rounded out to ALIGN at both ends.
        long size = alignUp(maxChunk) + ALIGN;
        for (int i = 0; i < SLOTS; i++) {
            slots[i] = new Slot(arena.allocate(size, ALIGN));
        }
    }

    /** The buffers' total size, for the store's cap on what streams hold. */
    static long footprint(int maxChunk) {
        return SLOTS * (alignUp(maxChunk) + ALIGN);
    }

    /** Points the stream at chunk {@code index}: it and the next {@link #AHEAD} are loaded. */
    void startAt(int index) {
        lock.lock();
        try {
            latest = index; // after a jump, what was loaded around the old place is free again
            fill();
        } finally {
            lock.unlock();
        }
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
     * load if it is on its way; how many, or -1 if this stream does not hold or load that chunk.
     * Taking a chunk moves the read-ahead on.
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
            if (slot.state == State.FAILED) {
                IOException error = slot.error;
                slot.state = State.EMPTY;
                slot.index = -1;
                slot.error = null;
                throw error;
            }
            slot.pins++;
            if (index > latest) {
                latest = index;
                fill();
            }
        } finally {
            lock.unlock();
        }
        try {
            int n = Math.min(dst.remaining(), slot.length - within);
            MemorySegment.copy(slot.buffer, slot.payloadAt + within, MemorySegment.ofBuffer(dst), 0, n);
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
        int last = Math.min(chunks.count() - 1, latest + AHEAD);
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
            free.error = null;
            loading++;
            int index = next;
            try {
                loaders.execute(() -> load(free, index));
            } catch (RejectedExecutionException shuttingDown) {
                finish(free, new IOException("the store is closing"));
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

    /** On a loader thread: reads chunk {@code index} into the slot and verifies it. */
    private void load(Slot slot, int index) {
        IOException error = null;
        try {
            Location l = chunks.locate(index);
            slot.length = l.length();
            slot.payloadAt = read(l, slot.buffer, loaders);
            if (!Blake3.digest(slot.buffer.asSlice(slot.payloadAt, l.length())).equals(l.digest())) {
                throw new CorruptedDataException(l.describe() + " is corrupted: its content does not hash to its digest");
            }
        } catch (IOException e) {
            error = e;
        } catch (RuntimeException e) {
            error = new IOException("chunk " + index + ": " + e, e);
        }
        lock.lock();
        try {
            finish(slot, error);
        } finally {
            lock.unlock();
        }
    }

    /** With lock held: a load ended. */
    private void finish(Slot slot, IOException error) {
        slot.state = error == null ? State.READY : State.FAILED;
        slot.error = error;
        loading--;
        changed.signalAll();
    }

    /**
     * Reads the payload at {@code l} into {@code buffer}, straight from the disk where the pack
     * allows it; where in the buffer it starts.
     */
    private static int read(Location l, MemorySegment buffer, DirectReads counts) throws IOException {
        if (l.source() instanceof Pack pack) {
            pack.checkBounds(l);
            long from = l.offset() & -ALIGN;
            int skip = (int) (l.offset() - from);
            long span = alignUp(skip + (long) l.length());
            long n = pack.readDirect(buffer.asSlice(0, span), from);
            if (n >= 0) {
                if (n < skip + (long) l.length()) {
                    throw new CorruptedDataException(l.describe() + " ends past the end of its pack file");
                }
                counts.direct.increment();
                return skip;
            }
            pack.readPayloadInto(l, buffer);
            counts.buffered.increment();
            return 0;
        }
        // A pack this process is still writing: through its own reader.
        byte[] payload = l.source().readPayload(l);
        MemorySegment.copy(MemorySegment.ofArray(payload), 0, buffer, 0, payload.length);
        counts.buffered.increment();
        return 0;
    }

    private static long alignUp(long n) {
        return (n + ALIGN - 1) & -ALIGN;
    }
}

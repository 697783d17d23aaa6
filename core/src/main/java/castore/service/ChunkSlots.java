package castore.service;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.StampedLock;

/**
 * A few buffers a {@link ChunkedBlobReader} reuses for chunks (of sequential streams, of random reads), one
 * verified chunk each, instead of a new array per chunk: a 1 GiB stream otherwise allocates
 * 1 GiB of arrays, which the JVM zeroes and the kernel backs with fresh pages. A load takes the
 * oldest slot under its write lock; readers copy out of a slot under an optimistic read and
 * validate after the copy, so a reader never keeps bytes a load overwrote while it copied (it
 * finds no slot and loads the chunk again). Bytes in a slot never escape a copy, except to a
 * {@link ChunkedBlobReader.ChunkUser} that {@link #lend} lends them to under the slot's read lock.
 * The slots are made at the first load, so a reader that never loads into them pays for none.
 */
public final class ChunkSlots {
    /** Fills {@code buffer[0, length)} with the verified chunk; false if it cannot (the caller takes another path). */
    @FunctionalInterface
    public interface Loader {
        boolean loadInto(byte[] buffer) throws IOException;
    }

    /** An empty slot's buffer. */
    private static final byte[] NONE = new byte[0];

    private static final class Slot {
        final StampedLock lock = new StampedLock();
        // Written under the write lock; read under an optimistic read that is validated after.
        byte[] buffer = NONE;
        int index = -1;
    }

    private final int count;
    /** The smallest buffer a slot gets: a reader of chunks of several sizes passes its largest, so slots are not grown again and again. */
    private final int bufferSize;
    /** Null until the first load. */
    private volatile Slot[] slots;
    private final AtomicInteger next = new AtomicInteger();
    private final AtomicInteger buffersMade = new AtomicInteger();

    public ChunkSlots(int count) {
        this(count, 0);
    }

    public ChunkSlots(int count, int bufferSize) {
        this.count = count;
        this.bufferSize = bufferSize;
    }

    /** How many buffers loads have made so far (for tests). */
    public int buffersMade() {
        return buffersMade.get();
    }

    /** Whether the slots have been made (a chunk was loaded into one). */
    public boolean allocated() {
        return slots != null;
    }

    /**
     * Copies bytes of chunk {@code index} ({@code length} bytes long) from {@code within} on into
     * {@code dst} from the slot holding it; how many, or -1 if no slot does (or one is being loaded).
     */
    public int copy(int index, int length, int within, ByteBuffer dst) {
        Slot[] all = slots;
        if (all == null) {
            return -1;
        }
        for (Slot slot : all) {
            long stamp = slot.lock.tryOptimisticRead();
            if (stamp == 0 || slot.index != index) {
                continue;
            }
            byte[] buffer = slot.buffer;
            if (buffer.length < length) {
                continue; // a torn view of a slot being reloaded
            }
            int start = dst.position();
            int n = Math.min(dst.remaining(), length - within);
            dst.put(buffer, within, n);
            if (slot.lock.validate(stamp)) {
                return n;
            }
            dst.position(start); // overwritten while copying: the bytes may be torn
        }
        return -1;
    }

    /**
     * Loads chunk {@code index} into the oldest slot (grown to {@code length} if needed) and
     * copies from it as {@link #copy} does; -1 if the loader could not (the slot is left empty).
     */
    public int load(int index, int length, int within, ByteBuffer dst, Loader loader) throws IOException {
        Slot slot = oldest();
        long stamp = slot.lock.writeLock();
        try {
            slot.index = -1;
            if (slot.buffer.length < length) {
                slot.buffer = new byte[Math.max(length, bufferSize)];
                buffersMade.incrementAndGet();
            }
            if (!loader.loadInto(slot.buffer)) {
                return -1;
            }
            slot.index = index;
            int n = Math.min(dst.remaining(), length - within);
            dst.put(slot.buffer, within, n);
            return n;
        } finally {
            slot.lock.unlockWrite(stamp);
        }
    }

    /**
     * Lends chunk {@code index} ({@code length} bytes long) from the slot holding it to
     * {@code user}, under the slot's read lock, so no load reuses the slot meanwhile; false if no
     * slot holds it (or its slot is being loaded: it is another chunk's then).
     */
    public boolean lend(int index, int length, long start, ChunkedBlobReader.ChunkUser user) {
        Slot[] all = slots;
        if (all == null) {
            return false;
        }
        for (Slot slot : all) {
            long stamp = slot.lock.tryReadLock();
            if (stamp == 0) {
                continue;
            }
            try {
                if (slot.index == index && slot.buffer.length >= length) {
                    user.use(start, slot.buffer, length);
                    return true;
                }
            } finally {
                slot.lock.unlockRead(stamp);
            }
        }
        return false;
    }

    /**
     * Makes {@code buffer}, whose first bytes are the verified chunk {@code index}, the oldest
     * slot's buffer, and returns the one it held (null if none) for the caller to reuse: a reader
     * that was copying from that one meanwhile finds it overwritten, as after a {@link #load}.
     * The caller must not write {@code buffer} again before it comes back from here.
     */
    public byte[] put(int index, byte[] buffer) {
        Slot slot = oldest();
        long stamp = slot.lock.writeLock();
        try {
            byte[] old = slot.buffer;
            slot.buffer = buffer;
            slot.index = index;
            return old == NONE ? null : old;
        } finally {
            slot.lock.unlockWrite(stamp);
        }
    }

    /**
     * Empties every slot, so that their arrays can go (a reader copying from one meanwhile finds
     * it overwritten); later loads and puts fill them again.
     */
    public void clear() {
        Slot[] all = slots;
        if (all == null) {
            return;
        }
        for (Slot slot : all) {
            long stamp = slot.lock.writeLock();
            try {
                slot.buffer = NONE;
                slot.index = -1;
            } finally {
                slot.lock.unlockWrite(stamp);
            }
        }
    }

    /** The slot the next load or put takes (the slots are made at the first). */
    private Slot oldest() {
        Slot[] all = slots;
        if (all == null) {
            synchronized (this) {
                all = slots;
                if (all == null) {
                    all = new Slot[count];
                    Arrays.setAll(all, i -> new Slot());
                    slots = all;
                }
            }
        }
        return all[Math.floorMod(next.getAndIncrement(), count)];
    }
}

package castore.io;

import java.util.BitSet;
import java.util.concurrent.TimeUnit;

/**
 * Read-ahead for small records of one file read in no particular order (Directories and chunk
 * lists in a local store's metadata pack or a cache's segment): a read asks the kernel for the
 * {@value #WINDOW}-byte window holding it and the next one, each window once while its hint
 * stands. A walk reads a tree's Directories about in the order they were stored, and the page
 * cache's own read-ahead, seeing small reads that skip around, fetched them a few pages at a time
 * (207-208 device reads for the bench tree's 3.6 MiB metadata pack, 40-42 with this;
 * docs/performance.md, "Session 11").
 *
 * <p>A hint stands for {@link #STANDS_NANOS} by default; after that the next read in the window
 * asks again: the page cache may have been dropped meanwhile (memory pressure, drop_caches), and
 * a long-lived mount's cold walk then read the metadata 16 KiB at a time again (262-264 device
 * reads for the bench tree, 38-45 with this; "Session 24"). Short, because a walk right after a
 * drop reads within a fraction of a second of the last hints; a hint of cached pages costs the
 * kernel only a page-cache lookup, at most ten times a second per window read.
 */
public final class WindowHints {
    /** The window a read asks for, and the next one. */
    public static final long WINDOW = 512 << 10;
    /** How long a window's hint stands by default. */
    public static final long STANDS_NANOS = TimeUnit.MILLISECONDS.toNanos(100);

    /** Asks the kernel to read a range ahead (POSIX_FADV_WILLNEED or madvise). */
    @FunctionalInterface
    public interface Hint {
        void willNeed(long offset, long length);
    }

    // Guarded by this.
    private final BitSet hinted = new BitSet();
    private long since = System.nanoTime();
    private long given;

    /**
     * A read at {@code offset} of a file of {@code fileSize} bytes: asks {@code hint} for the
     * window holding it and the next one (within the file), those not asked for within the last
     * {@code standsNanos}. Returns how many it asked for.
     */
    public int ahead(long offset, long fileSize, long standsNanos, Hint hint) {
        long first = offset / WINDOW;
        int asked; // bit 0: the first window, bit 1: the next
        synchronized (this) {
            long now = System.nanoTime();
            if (now - since > standsNanos) {
                since = now;
                hinted.clear();
            }
            asked = 0;
            for (int i = 0; i < 2 && (first + i) * WINDOW < fileSize; i++) {
                int window = Math.toIntExact(first + i);
                if (!hinted.get(window)) {
                    hinted.set(window);
                    asked |= 1 << i;
                }
            }
            given += Integer.bitCount(asked);
        }
        for (int i = 0; i < 2; i++) {
            if ((asked & 1 << i) != 0) {
                hint.willNeed((first + i) * WINDOW, WINDOW);
            }
        }
        return Integer.bitCount(asked);
    }

    /** Windows asked for so far (for tests). */
    public synchronized long given() {
        return given;
    }
}

package castore.fs;

import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * Whether READDIRPLUS entries of files and symlinks carry their lookup (attributes), or only
 * their names.
 *
 * <p>An entry with its lookup makes the kernel build a dentry and an inode for it, and us an
 * inode: wasted on consumers that only want names ({@code find}, globbing, shells completing),
 * where it makes the walker's kernel time about 60% higher. An entry without it costs a LOOKUP
 * round trip when the consumer does stat or open the name ({@code ls -l}, {@code du}, tar,
 * rsync). So subdirectories always carry their lookup (every walker descends), and files and
 * symlinks do while consumers have recently looked up names that a listing gave out bare.
 * The first directory of such a walk pays its lookups; the kernel's own READDIRPLUS_AUTO makes
 * the same bet, and limits the cost the same way: only a directory's first reply buffer is
 * READDIRPLUS unless lookups came in between.
 */
final class ListingAttributes {
    /** How long one lookup of a bare-listed name turns attributes on. */
    static final long WINDOW_NANOS = TimeUnit.SECONDS.toNanos(5);

    private final LongSupplier clock;
    private final long windowNanos;
    private volatile long wantedUntil;

    ListingAttributes() {
        this(System::nanoTime, WINDOW_NANOS);
    }

    ListingAttributes(LongSupplier clock, long windowNanos) {
        this.clock = clock;
        this.windowNanos = windowNanos;
        this.wantedUntil = clock.getAsLong();
    }

    /** Whether files and symlinks listed now should carry their lookup. */
    boolean filesWanted() {
        return clock.getAsLong() - wantedUntil < 0;
    }

    /** A name that a listing gave out without its lookup was looked up after all. */
    void bareNameLookedUp() {
        long now = clock.getAsLong();
        // Written at most once per half window: a burst of lookups does not bounce the cache line.
        if (wantedUntil - now < windowNanos / 2) {
            wantedUntil = now + windowNanos;
        }
    }
}

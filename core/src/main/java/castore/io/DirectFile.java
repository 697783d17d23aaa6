package castore.io;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.concurrent.locks.StampedLock;

/**
 * A file read with O_DIRECT (past the page cache) for {@link DirectStream} loaders: the local
 * store's packs and the cache's segments. Opened on first use; given up for good where O_DIRECT is
 * not to be had (another architecture, no native access, a file system that refuses it at open or
 * at a read: then {@link #read} says -1 and the caller reads through the page cache). {@link #close}
 * waits for reads in flight, so the descriptor number is never reused under one.
 */
public final class DirectFile implements AutoCloseable {
    private final Path path;
    /** Read-locked by each read; write-locked for good by {@link #close}. */
    private final StampedLock use = new StampedLock();
    /** Guarded by this: the descriptor once opened, -1 before or if it could not be. */
    private int fd = -1;
    private boolean tried;
    /** Set without the monitor: a read that finds O_DIRECT refused holds the read lock, which close waits for under the monitor. */
    private volatile boolean refused;

    public DirectFile(Path path) {
        this.path = path;
    }

    /**
     * One O_DIRECT read of {@code [offset, offset + dst.byteSize())} into {@code dst} (offset,
     * length and memory aligned to {@link DirectStream#ALIGN}): the bytes read, fewer only at the
     * end of the file, or -1 if this file cannot be read so.
     */
    public long read(MemorySegment dst, long offset) throws IOException {
        int f = descriptor();
        if (f < 0) {
            return -1;
        }
        long stamp = use.tryReadLock();
        if (stamp == 0) {
            return -1; // closed
        }
        try {
            long n = Libc.readDirect(f, dst, offset, path);
            if (n < 0) {
                refused = true; // the file system took O_DIRECT at open but not for reads
            }
            return n;
        } finally {
            use.unlockRead(stamp);
        }
    }

    private synchronized int descriptor() {
        if (!tried) {
            tried = true;
            if (Libc.O_DIRECT != 0 && Libc.available()) {
                try {
                    fd = Libc.open(path, Libc.O_RDONLY | Libc.O_DIRECT, 0);
                } catch (IOException refusedOrGone) {
                    fd = -1; // EINVAL without O_DIRECT; a file deleted meanwhile reads another way too
                }
            }
            if (fd < 0) {
                refused = true;
            }
        }
        return refused ? -1 : fd;
    }

    /** Whether reads are known to say -1 (O_DIRECT refused, or closed): a quick check that never blocks. */
    public boolean refused() {
        return refused;
    }

    /** Waits for the reads in flight, then closes the descriptor; later reads say -1. Idempotent. */
    @Override
    public synchronized void close() {
        tried = true;
        refused = true;
        if (!use.isWriteLocked()) {
            use.writeLock(); // never unlocked: every later read finds it taken
            if (fd >= 0) {
                Libc.close(fd);
            }
        }
    }
}

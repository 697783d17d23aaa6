package castore.service.cache;

import castore.io.Libc;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.concurrent.locks.StampedLock;

/**
 * A file read with {@code pread(2)} and written with {@code pwrite(2)} straight between the
 * kernel and Java arrays ({@link Libc#transfer}: no bounce buffer). {@code FileChannel} copies a
 * heap buffer through a temporary direct buffer of its own; for the disk cache, which writes
 * every fetched chunk and reads every chunk of a warm read, that copy (and, for reads, the fresh
 * array it was copied into) was ~10% of a warm 1 GiB read through a mount, ~12% of a write's CPU.
 * {@link #openForReading} and {@link #create} return null where native calls are not available
 * (native access denied), and the caller uses a {@code FileChannel} instead.
 *
 * <p>Calls may run on any threads while another closes the file: {@link #close} waits for the
 * calls in flight, and later calls fail with "closed", so a descriptor number reused by another
 * open is never read or written through this object.
 */
final class NativeFile implements AutoCloseable {
    private final Path path;
    private final int fd;
    /** Read-locked by each call; write-locked for good by {@link #close}. */
    private final StampedLock use = new StampedLock();

    private NativeFile(Path path, int fd) {
        this.path = path;
        this.fd = fd;
    }

    /** Opens an existing file for reading; null if native calls are not available here. */
    static NativeFile openForReading(Path path) throws IOException {
        return open(path, Libc.O_RDONLY);
    }

    /** Creates a new file (it must not exist) for reading and writing; null if native calls are not available here. */
    static NativeFile create(Path path) throws IOException {
        return open(path, Libc.O_RDWR | Libc.O_CREAT | Libc.O_EXCL);
    }

    private static NativeFile open(Path path, int flags) throws IOException {
        return Libc.available() ? new NativeFile(path, Libc.open(path, flags, 0666)) : null;
    }

    Path path() {
        return path;
    }

    /**
     * Reads {@code dst[at, at + length)} from {@code offset}; false if the file ends first (what
     * was read is then in {@code dst}, the rest untouched).
     */
    boolean readFully(byte[] dst, int at, int length, long offset) throws IOException {
        return transfer(false, dst, at, length, offset) == length;
    }

    /** Reads into native memory from {@code offset} until {@code dst} is full or the file ends; the bytes read. */
    long readNative(MemorySegment dst, long offset) throws IOException {
        long stamp = use.tryReadLock();
        if (stamp == 0) {
            throw new IOException(path + " is closed");
        }
        try {
            return Libc.transfer(fd, false, dst, offset, path);
        } finally {
            use.unlockRead(stamp);
        }
    }

    /** Writes {@code src[at, at + length)} at {@code offset}, all of it or an exception. */
    void writeFully(byte[] src, int at, int length, long offset) throws IOException {
        transfer(true, src, at, length, offset);
    }

    /** Writes all of {@code src} (native memory) at {@code offset}, or an exception. */
    void writeNative(MemorySegment src, long offset) throws IOException {
        long stamp = use.tryReadLock();
        if (stamp == 0) {
            throw new IOException(path + " is closed");
        }
        try {
            Libc.transfer(fd, true, src, offset, path);
        } finally {
            use.unlockRead(stamp);
        }
    }

    /** Asks the kernel to start reading {@code [offset, offset + length)} into the page cache; only a hint. */
    void willNeed(long offset, long length) {
        long stamp = use.tryReadLock();
        if (stamp != 0) {
            try {
                Libc.willNeed(fd, offset, length);
            } finally {
                use.unlockRead(stamp);
            }
        }
    }

    private long transfer(boolean write, byte[] array, int at, int length, long offset) throws IOException {
        long stamp = use.tryReadLock();
        if (stamp == 0) {
            throw new IOException(path + " is closed");
        }
        try {
            return Libc.transfer(fd, write, MemorySegment.ofArray(array).asSlice(at, length), offset, path);
        } finally {
            use.unlockRead(stamp);
        }
    }

    /** Waits for the calls in flight, then closes the descriptor; later calls fail. Idempotent. */
    @Override
    public synchronized void close() {
        if (!use.isWriteLocked()) {
            use.writeLock(); // never unlocked: every later call finds it taken
            Libc.close(fd);
        }
    }
}

package castore.service.cache;

import castore.io.Libc;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.file.Path;
import java.util.concurrent.locks.StampedLock;

/**
 * A file read with {@code pread(2)} and written with {@code pwrite(2)} straight between the
 * kernel and Java arrays (critical downcalls: no bounce buffer). {@code FileChannel} copies a
 * heap buffer through a temporary direct buffer of its own; for the disk cache, which writes
 * every fetched chunk and reads every chunk of a warm read, that copy (and, for reads, the fresh
 * array it was copied into) was ~10% of a warm 1 GiB read through a mount, ~12% of a write's CPU.
 * {@link #open} returns null where native calls are not available (native access denied), and
 * the caller uses a {@code FileChannel} instead.
 *
 * <p>Calls may run on any threads while another closes the file: {@link #close} waits for the
 * calls in flight, and later calls fail with "closed", so a descriptor number reused by another
 * open is never read or written through this object.
 */
@SuppressWarnings("restricted")
final class NativeFile implements AutoCloseable {
    private static final int EINTR = 4;
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    /** Each thread's errno capture segment, made once (an arena per call costs more than the call). */
    private static final ThreadLocal<MemorySegment> CALL_STATES = ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CALL_STATE));
    private static final MethodHandle PREAD;
    private static final MethodHandle PWRITE;
    private static final MethodHandle FADVISE;
    private static final MethodHandle CLOSE;
    private static final int POSIX_FADV_WILLNEED = 3;

    static {
        MethodHandle pread = null;
        MethodHandle pwrite = null;
        MethodHandle close = null;
        MethodHandle fadvise = null;
        try {
            Linker linker = Linker.nativeLinker();
            var libc = linker.defaultLookup();
            var errno = Linker.Option.captureCallState("errno");
            var critical = Linker.Option.critical(true);
            var i = ValueLayout.JAVA_INT;
            var l = ValueLayout.JAVA_LONG;
            var a = ValueLayout.ADDRESS;
            pread = linker.downcallHandle(libc.find("pread").orElseThrow(), FunctionDescriptor.of(l, i, a, l, l), errno, critical);
            pwrite = linker.downcallHandle(libc.find("pwrite").orElseThrow(), FunctionDescriptor.of(l, i, a, l, l), errno, critical);
            close = linker.downcallHandle(libc.find("close").orElseThrow(), FunctionDescriptor.of(i, i));
            fadvise = linker.downcallHandle(libc.find("posix_fadvise").orElseThrow(), FunctionDescriptor.of(i, i, l, l, i));
        } catch (RuntimeException | Error unavailable) {
            pread = null; // IllegalCallerException without native access, or no libc: FileChannel it is
        }
        PREAD = pread;
        PWRITE = pwrite;
        FADVISE = fadvise;
        CLOSE = close;
    }

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
        if (PREAD == null || !Libc.available()) {
            return null;
        }
        return new NativeFile(path, Libc.open(path, flags, 0666));
    }

    Path path() {
        return path;
    }

    /**
     * Reads {@code dst[at, at + length)} from {@code offset}; false if the file ends first (what
     * was read is then in {@code dst}, the rest untouched).
     */
    boolean readFully(byte[] dst, int at, int length, long offset) throws IOException {
        return transferFully(false, dst, at, length, offset);
    }

    /** Writes {@code src[at, at + length)} at {@code offset}, all of it or an exception. */
    void writeFully(byte[] src, int at, int length, long offset) throws IOException {
        transferFully(true, src, at, length, offset);
    }

    /** Asks the kernel to start reading {@code [offset, offset + length)} into the page cache; only a hint. */
    void willNeed(long offset, long length) {
        long stamp = use.tryReadLock();
        if (stamp == 0) {
            return;
        }
        try {
            int ignored = (int) FADVISE.invokeExact(fd, offset, length, POSIX_FADV_WILLNEED);
        } catch (Throwable t) {
            // only a hint
        } finally {
            use.unlockRead(stamp);
        }
    }

    private boolean transferFully(boolean write, byte[] array, int at, int length, long offset) throws IOException {
        MemorySegment buffer = MemorySegment.ofArray(array).asSlice(at, length);
        long stamp = use.tryReadLock();
        if (stamp == 0) {
            throw new IOException(path + " is closed");
        }
        try {
            MemorySegment state = CALL_STATES.get();
            long done = 0;
            while (done < length) {
                MemorySegment rest = buffer.asSlice(done);
                long n = write
                        ? (long) PWRITE.invokeExact(state, fd, rest, rest.byteSize(), offset + done)
                        : (long) PREAD.invokeExact(state, fd, rest, rest.byteSize(), offset + done);
                if (n == 0 && !write) {
                    return false;
                }
                if (n < 0) {
                    int errno = (int) ERRNO.get(state, 0L);
                    if (errno != EINTR) {
                        throw new IOException(path + ": " + (write ? "write" : "read") + " of " + length + " bytes at " + offset
                                + " failed: " + Libc.strerror(errno));
                    }
                    continue;
                }
                done += n;
            }
            return true;
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IOException(path + ": " + (write ? "write" : "read") + " failed", t);
        } finally {
            use.unlockRead(stamp);
        }
    }

    /** Waits for the calls in flight, then closes the descriptor; later calls fail. Idempotent. */
    @Override
    public synchronized void close() {
        if (use.isWriteLocked()) {
            return;
        }
        use.writeLock(); // never unlocked: every later call finds it taken
        try {
            int ignored = (int) CLOSE.invokeExact(fd);
        } catch (Throwable ignored) {
            // close(2) releases the descriptor even when it reports an error; nothing is buffered
        }
    }
}

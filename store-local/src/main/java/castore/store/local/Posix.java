package castore.store.local;

import castore.io.Libc;
import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

/**
 * The few libc file calls the store makes through FFM. Two reasons not to use FileChannel for
 * them: a FileChannel closes itself when a thread using it is interrupted (one cancelled task
 * would break a pack that every import thread shares), and FileChannel.lock takes fcntl locks,
 * which belong to the whole process (two store instances in one JVM would not exclude each other,
 * and closing any descriptor of the file drops them). flock(2) locks belong to the open file.
 */
@SuppressWarnings("restricted")
final class Posix {
    private static final int SYNC_FILE_RANGE_WRITE = 2;
    private static final int MADV_WILLNEED = 3;
    static final int LOCK_SH = 1;
    static final int LOCK_EX = 2;
    static final int LOCK_NB = 4;
    static final int LOCK_UN = 8;
    private static final int EINTR = 4;
    private static final int EWOULDBLOCK = 11;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final Linker.Option ERRNO = Linker.Option.captureCallState("errno");
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG;

    private static final MethodHandle MADVISE = downcall("madvise", FunctionDescriptor.of(INT, ValueLayout.ADDRESS, LONG, INT));
    private static final MethodHandle FLOCK = downcall("flock", FunctionDescriptor.of(INT, INT, INT), ERRNO);

    /**
     * Only writers need these: made on first use (a holder class the JVM initialises lazily), as a
     * downcall handle of a new shape costs a reader's start-up a few ms.
     */
    private static final class Durability {
        static final MethodHandle FDATASYNC = downcall("fdatasync", FunctionDescriptor.of(INT, INT), ERRNO);
        static final MethodHandle SYNC_FILE_RANGE = downcall("sync_file_range", FunctionDescriptor.of(INT, INT, LONG, LONG, INT), ERRNO);
    }

    /** Only gc needs it ({@link Fd#detach}): made on first use, as {@link Durability}. */
    private static final class Detach {
        static final MethodHandle DUP2 = downcall("dup2", FunctionDescriptor.of(INT, INT, INT), ERRNO);
    }

    private static MethodHandle downcall(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(), descriptor, options);
    }

    private Posix() {
    }

    /** An open file descriptor. Closing it releases any flock it holds. */
    static final class Fd implements AutoCloseable {
        private final Path path;
        private volatile int fd;

        private Fd(Path path, int fd) {
            this.path = path;
            this.fd = fd;
        }

        Path path() {
            return path;
        }

        /** Reads exactly {@code dst.byteSize()} bytes at {@code offset}; fails on end of file. */
        void readFully(MemorySegment dst, long offset) throws IOException {
            transferFully(false, dst, offset);
        }

        /** Reads exactly {@code length} bytes at {@code offset} into {@code dst} from index {@code at}. */
        void readFully(byte[] dst, int at, int length, long offset) throws IOException {
            transferFully(false, MemorySegment.ofArray(dst).asSlice(at, length), offset);
        }

        /** Writes {@code src[at, at + length)} at {@code offset}, straight from the array (no bounce buffer). */
        void writeFully(byte[] src, int at, int length, long offset) throws IOException {
            transferFully(true, MemorySegment.ofArray(src).asSlice(at, length), offset);
        }

        /** Asks the kernel to start reading a range into the page cache (advisory: failures are ignored). */
        void willNeed(long offset, long length) {
            int f = fd;
            if (f >= 0) {
                Libc.willNeed(f, offset, length);
            }
        }

        /** Writes all of {@code src} at {@code offset}. */
        void writeFully(MemorySegment src, long offset) throws IOException {
            transferFully(true, src, offset);
        }

        /** pread/pwrite of all of {@code buffer} ({@link Libc#transfer}); a read that meets the end of the file fails. */
        private void transferFully(boolean write, MemorySegment buffer, long offset) throws IOException {
            long done = Libc.transfer(fd(), write, buffer, offset, path);
            if (done < buffer.byteSize()) {
                throw new IOException(path + ": unexpected end of file at " + (offset + done));
            }
        }

        /** Makes the file's data durable (fdatasync). */
        void sync() throws IOException {
            try {
                MemorySegment state = Libc.callState();
                while ((int) Durability.FDATASYNC.invokeExact(state, fd()) != 0) {
                    checkErrno(state, "fdatasync");
                }
            } catch (IOException | RuntimeException | Error e) {
                throw e;
            } catch (Throwable t) {
                throw new IOException(path + ": fdatasync failed", t);
            }
        }

        /**
         * Starts writeback of a range without waiting for it (sync_file_range WRITE), so the
         * final fdatasync finds little left to do. Advisory: failures are ignored.
         */
        void startWriteback(long offset, long length) {
            try {
                MemorySegment state = Libc.callState();
                int ignored = (int) Durability.SYNC_FILE_RANGE.invokeExact(state, fd(), offset, length, SYNC_FILE_RANGE_WRITE);
            } catch (Throwable t) {
                // only a hint
            }
        }

        /** flock(2); false if {@code LOCK_NB} was given and another open file holds a conflicting lock. */
        boolean flock(int operation) throws IOException {
            try {
                MemorySegment state = Libc.callState();
                while ((int) FLOCK.invokeExact(state, fd(), operation) != 0) {
                    if (Libc.errno(state) == EWOULDBLOCK) {
                        return false;
                    }
                    checkErrno(state, "flock");
                }
                return true;
            } catch (IOException | RuntimeException | Error e) {
                throw e;
            } catch (Throwable t) {
                throw new IOException(path + ": flock failed", t);
            }
        }

        private int fd() throws IOException {
            int f = fd;
            if (f < 0) {
                throw new IOException(path + " is closed");
            }
            return f;
        }

        /** Throws for any errno but EINTR, which means: try again. */
        private void checkErrno(MemorySegment state, String call) throws IOException {
            int errno = Libc.errno(state);
            if (errno != EINTR) {
                throw new IOException(path + ": " + call + " failed: " + Libc.strerror(errno));
            }
        }

        /**
         * Points the descriptor at /dev/null, keeping its number: once the file is deleted its
         * blocks are freed at once, not when this descriptor closes, and a read still running on
         * another thread reads nothing (an error) rather than a file that took the number.
         */
        synchronized void detach() throws IOException {
            int f = fd();
            int devNull = Libc.open(Path.of("/dev/null"), Libc.O_RDONLY, 0);
            try {
                MemorySegment state = Libc.callState();
                while ((int) Detach.DUP2.invokeExact(state, devNull, f) < 0) {
                    checkErrno(state, "dup2");
                }
            } catch (IOException | RuntimeException | Error e) {
                throw e;
            } catch (Throwable t) {
                throw new IOException(path + ": dup2 failed", t);
            } finally {
                Libc.close(devNull);
            }
        }

        @Override
        public synchronized void close() {
            int f = fd;
            if (f >= 0) {
                fd = -1;
                Libc.close(f);
            }
        }
    }

    /** Asks the kernel to page a mapping in ahead of use (advisory: failures are ignored). */
    static void willNeed(MemorySegment mapped) {
        try {
            // madvise wants a page-aligned start; mappings from FileChannel.map start on a page.
            int ignored = (int) MADVISE.invokeExact(mapped, mapped.byteSize(), MADV_WILLNEED);
        } catch (Throwable t) {
            // only a hint
        }
    }

    static Fd open(Path path, int flags, int mode) throws IOException {
        return new Fd(path, Libc.open(path, flags, mode));
    }
}

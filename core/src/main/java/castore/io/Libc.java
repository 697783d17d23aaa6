package castore.io;

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
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * The libc calls that every module doing its own file I/O through FFM needs alike: {@code open}
 * and {@code pread}/{@code pwrite} loops with their errors as Java exceptions, read-ahead hints,
 * {@code close}, {@code strerror} for messages, and memory in huge pages for O_DIRECT buffers. The local store and the cache's disk tier
 * both read and write through these. pread and pwrite are critical downcalls: data goes straight
 * between the file and a Java array, with no bounce buffer (native segments work too).
 */
@SuppressWarnings("restricted")
public final class Libc {
    public static final int O_RDONLY = 0;
    public static final int O_WRONLY = 1;
    public static final int O_RDWR = 2;
    public static final int O_CREAT = 0100;
    public static final int O_EXCL = 0200;
    private static final int O_CLOEXEC = 02000000;
    /** O_DIRECT differs between architectures; 0 where we do not know it (direct reads are then not offered). */
    public static final int O_DIRECT = switch (System.getProperty("os.arch")) {
        case "amd64", "x86_64", "x86" -> 040000;
        case "aarch64", "arm" -> 0200000;
        default -> 0;
    };
    private static final int ENOENT = 2;
    private static final int EINTR = 4;
    private static final int EINVAL = 22;
    /** The size and alignment of a transparent huge page ({@link #mapHugePages}). */
    public static final long HUGE_PAGE = 2 << 20;
    private static final int POSIX_FADV_WILLNEED = 3;
    private static final int PRIO_PROCESS = 0;
    private static final int LOWEST_PRIORITY = 19;
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    /**
     * Each thread's errno capture segment, made once: a confined arena per call (malloc, session,
     * free) cost more than a pread's own Java side on a fresh mount's read path. A segment is only
     * used for the duration of one call on its own thread.
     */
    private static final ThreadLocal<MemorySegment> CALL_STATES = ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CALL_STATE));
    private static final Linker.Option ERRNO_STATE = Linker.Option.captureCallState("errno");
    private static final Linker.Option CRITICAL = Linker.Option.critical(true);
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG;

    private static final MethodHandle OPEN = downcall("open", FunctionDescriptor.of(INT, ValueLayout.ADDRESS, INT, INT),
            ERRNO_STATE, Linker.Option.firstVariadicArg(2));
    private static final MethodHandle PREAD = downcall("pread", FunctionDescriptor.of(LONG, INT, ValueLayout.ADDRESS, LONG, LONG),
            ERRNO_STATE, CRITICAL);
    private static final MethodHandle PWRITE = downcall("pwrite", FunctionDescriptor.of(LONG, INT, ValueLayout.ADDRESS, LONG, LONG),
            ERRNO_STATE, CRITICAL);
    private static final MethodHandle POSIX_FADVISE = downcall("posix_fadvise", FunctionDescriptor.of(INT, INT, LONG, LONG, INT));
    private static final MethodHandle CLOSE = downcall("close", FunctionDescriptor.of(INT, INT));
    /** All of open, pread, pwrite and close; callers fall back to the JDK's file API without them. */
    private static final boolean AVAILABLE = OPEN != null && PREAD != null && PWRITE != null && CLOSE != null;

    // A downcall handle of a new shape costs a few ms to make (the JDK spins its stub; the AOT
    // cache keeps none), so the rarely needed ones are made on first use, in holder classes.

    /** fallocate(2) and ftruncate(2), for the cache's segments. */
    private static final class Space {
        static final MethodHandle FALLOCATE = downcall("fallocate", FunctionDescriptor.of(INT, INT, INT, LONG, LONG));
        static final MethodHandle FTRUNCATE = downcall("ftruncate", FunctionDescriptor.of(INT, INT, LONG));
        static final MethodHandle LSEEK = downcall("lseek", FunctionDescriptor.of(LONG, INT, LONG, INT));
    }

    /** fallocate(2) mode: reserve blocks without changing the file's size. */
    public static final int FALLOC_FL_KEEP_SIZE = 1;

    /**
     * fallocate(2) of {@code [offset, offset + length)} with {@code mode}; false where the file
     * system or libc cannot (a hint: callers go on either way).
     */
    public static boolean fallocate(int fd, int mode, long offset, long length) {
        if (length <= 0 || Space.FALLOCATE == null) {
            return false;
        }
        try {
            return (int) Space.FALLOCATE.invokeExact(fd, mode, offset, length) == 0;
        } catch (Throwable unavailable) {
            return false;
        }
    }

    /**
     * ftruncate(2); false if it failed. To the file's own size it frees blocks reserved past its
     * end (ext4; punching a hole there does not).
     */
    public static boolean ftruncate(int fd, long size) {
        if (Space.FTRUNCATE == null) {
            return false;
        }
        try {
            return (int) Space.FTRUNCATE.invokeExact(fd, size) == 0;
        } catch (Throwable unavailable) {
            return false;
        }
    }

    /**
     * The size of the file open as {@code fd} (lseek to its end: positional reads and writes do
     * not use the offset), also once its name is gone; -1 if it cannot be had.
     */
    public static long size(int fd) {
        if (Space.LSEEK == null) {
            return -1;
        }
        try {
            return (long) Space.LSEEK.invokeExact(fd, 0L, 2 /* SEEK_END */);
        } catch (Throwable unavailable) {
            return -1;
        }
    }

    /** strerror, for messages. */
    private static final class Messages {
        static final MethodHandle STRERROR = downcall("strerror", FunctionDescriptor.of(ValueLayout.ADDRESS, INT));
    }

    /**
     * pread as an ordinary downcall, for reads that wait for the device (O_DIRECT): a critical
     * downcall would hold off the garbage collector for as long as the disk takes.
     */
    private static final class BlockingRead {
        static final MethodHandle PREAD = downcall("pread", FunctionDescriptor.of(LONG, INT, ValueLayout.ADDRESS, LONG, LONG), ERRNO_STATE);
    }

    /** pwrite as an ordinary downcall, for O_DIRECT writes: as {@link BlockingRead}. */
    private static final class BlockingWrite {
        static final MethodHandle PWRITE = downcall("pwrite", FunctionDescriptor.of(LONG, INT, ValueLayout.ADDRESS, LONG, LONG), ERRNO_STATE);
    }

    /** setpriority and gettid (glibc 2.30+): without them only {@link #lowerCurrentThreadPriority} does nothing. */
    private static final class Priority {
        static final MethodHandle SETPRIORITY = downcall("setpriority", FunctionDescriptor.of(INT, INT, INT, INT));
        static final MethodHandle GETTID = downcall("gettid", FunctionDescriptor.of(INT));
    }

    /** mmap, munmap and madvise, for buffers in huge pages ({@link #mapHugePages}). */
    private static final class Mapping {
        static final MethodHandle MMAP = downcall("mmap",
                FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, LONG, INT, INT, INT, LONG));
        static final MethodHandle MUNMAP = downcall("munmap", FunctionDescriptor.of(INT, ValueLayout.ADDRESS, LONG));
        static final MethodHandle MADVISE = downcall("madvise", FunctionDescriptor.of(INT, ValueLayout.ADDRESS, LONG, INT));
        static final int PROT_READ_WRITE = 3;
        static final int MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20;
        static final int MADV_HUGEPAGE = 14;
    }

    /** A libc function, or null without native access (IllegalCallerException) or without the symbol. */
    private static MethodHandle downcall(String name, FunctionDescriptor descriptor, Linker.Option... options) {
        try {
            Linker linker = Linker.nativeLinker();
            return linker.downcallHandle(linker.defaultLookup().find(name).orElseThrow(), descriptor, options);
        } catch (RuntimeException | Error unavailable) {
            return null;
        }
    }

    private Libc() {
    }

    /** Whether native calls are allowed in this JVM (callers fall back to the JDK's file API if not). */
    public static boolean available() {
        return AVAILABLE;
    }

    /**
     * Opens {@code path} ({@code O_CLOEXEC} is always added), retrying on EINTR; a missing file is
     * {@link NoSuchFileException}, any other failure an IOException naming the path and the cause.
     */
    public static int open(Path path, int flags, int mode) throws IOException {
        if (!AVAILABLE) {
            throw new IOException("cannot open " + path + ": native access is not enabled");
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CALL_STATE);
            MemorySegment name = arena.allocateFrom(path.toString());
            while (true) {
                int fd = (int) OPEN.invokeExact(state, name, flags | O_CLOEXEC, mode);
                if (fd >= 0) {
                    return fd;
                }
                int errno = errno(state);
                if (errno == ENOENT) {
                    throw new NoSuchFileException(path.toString());
                }
                if (errno != EINTR) {
                    throw new IOException("cannot open " + path + ": " + strerror(errno));
                }
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IOException("cannot open " + path, t);
        }
    }

    /**
     * Reads ({@code write} false) or writes all of {@code buffer} at {@code offset} of {@code fd},
     * going on after short counts and EINTR; returns the bytes transferred, fewer than asked only
     * when a read reaches end of file. Errors are IOExceptions naming {@code path}.
     */
    public static long transfer(int fd, boolean write, MemorySegment buffer, long offset, Path path) throws IOException {
        if (!AVAILABLE) {
            throw new IOException("cannot " + (write ? "write " : "read ") + path + ": native access is not enabled");
        }
        long done = 0;
        try {
            MemorySegment state = CALL_STATES.get();
            while (done < buffer.byteSize()) {
                MemorySegment rest = buffer.asSlice(done);
                long n = write
                        ? (long) PWRITE.invokeExact(state, fd, rest, rest.byteSize(), offset + done)
                        : (long) PREAD.invokeExact(state, fd, rest, rest.byteSize(), offset + done);
                if (n == 0 && !write) {
                    return done;
                }
                if (n < 0) {
                    int errno = errno(state);
                    if (errno != EINTR) {
                        throw new IOException(path + ": " + (write ? "write" : "read") + " of " + buffer.byteSize()
                                + " bytes at " + offset + " failed: " + strerror(errno));
                    }
                    continue;
                }
                done += n;
            }
            return done;
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IOException(path + ": " + (write ? "write" : "read") + " failed", t);
        }
    }

    /**
     * One read into native memory ({@code buffer}) at {@code offset} of a descriptor opened with
     * {@link #O_DIRECT}, as an ordinary downcall (it waits for the device; a critical downcall
     * would hold off the garbage collector meanwhile). Returns the bytes read, fewer than asked
     * only at the end of the file (a second read there would be unaligned), or -1 if the file
     * system refuses the read (EINVAL: it cannot read this file directly after all).
     */
    public static long readDirect(int fd, MemorySegment buffer, long offset, Path path) throws IOException {
        if (!AVAILABLE || BlockingRead.PREAD == null) {
            throw new IOException("cannot read " + path + ": native access is not enabled");
        }
        try {
            MemorySegment state = CALL_STATES.get();
            while (true) {
                long n = (long) BlockingRead.PREAD.invokeExact(state, fd, buffer, buffer.byteSize(), offset);
                if (n >= 0) {
                    return n;
                }
                int errno = errno(state);
                if (errno == EINVAL) {
                    return -1;
                }
                if (errno != EINTR) {
                    throw new IOException(path + ": read of " + buffer.byteSize() + " bytes at " + offset + " failed: " + strerror(errno));
                }
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IOException(path + ": read failed", t);
        }
    }

    /**
     * Writes all of {@code buffer} (native memory) at {@code offset} of a descriptor opened with
     * {@link #O_DIRECT}, as an ordinary downcall (it waits for the device). Offset, length and
     * memory are aligned as the file system asks. Returns true, or false if the file system refuses
     * the write (EINVAL) before any of it is written; other failures are IOExceptions naming {@code path}.
     */
    public static boolean writeDirect(int fd, MemorySegment buffer, long offset, Path path) throws IOException {
        if (!AVAILABLE || BlockingWrite.PWRITE == null) {
            throw new IOException("cannot write " + path + ": native access is not enabled");
        }
        try {
            MemorySegment state = CALL_STATES.get();
            long done = 0;
            while (done < buffer.byteSize()) {
                MemorySegment rest = buffer.asSlice(done);
                long n = (long) BlockingWrite.PWRITE.invokeExact(state, fd, rest, rest.byteSize(), offset + done);
                if (n > 0) {
                    done += n; // a short count ends on a block boundary; the rest stays aligned
                    continue;
                }
                int errno = n < 0 ? errno(state) : 0;
                if (errno == EINVAL && done == 0) {
                    return false;
                }
                if (errno != EINTR) {
                    throw new IOException(path + ": write of " + buffer.byteSize() + " bytes at " + offset + " failed: "
                            + (n == 0 ? "no progress" : strerror(errno)));
                }
            }
            return true;
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IOException(path + ": write failed", t);
        }
    }

    /** Asks the kernel to start reading {@code [offset, offset + length)} of {@code fd} into the page cache; only a hint. */
    public static void willNeed(int fd, long offset, long length) {
        if (POSIX_FADVISE == null) {
            return;
        }
        try {
            int ignored = (int) POSIX_FADVISE.invokeExact(fd, offset, length, POSIX_FADV_WILLNEED);
        } catch (Throwable t) {
            // only a hint
        }
    }

    /**
     * {@code bytes} (a multiple of 2 MiB) of zeroed anonymous memory aligned to 2 MiB, with
     * transparent huge pages asked for before anything touches it (madvise MADV_HUGEPAGE: the
     * kernel's default THP mode, "madvise", gives them only so); unmapped when {@code arena}
     * closes. Why: memory in 4 KiB pages is one DMA segment per page, so the block layer splits
     * an O_DIRECT read into it at {@code max_segments} (254 on virtio: 1016 KiB). Null if it
     * cannot be had (no native access, no address space): the caller allocates another way.
     */
    public static MemorySegment mapHugePages(long bytes, Arena arena) {
        long huge = HUGE_PAGE;
        if (bytes <= 0 || bytes % huge != 0) {
            throw new IllegalArgumentException("not a multiple of 2 MiB: " + bytes);
        }
        if (Mapping.MMAP == null || Mapping.MUNMAP == null || Mapping.MADVISE == null) {
            return null;
        }
        try {
            // Map one huge page more than asked and give back what lies outside the aligned part.
            long mapped = bytes + huge;
            long address = ((MemorySegment) Mapping.MMAP.invokeExact(MemorySegment.NULL, mapped,
                    Mapping.PROT_READ_WRITE, Mapping.MAP_PRIVATE_ANONYMOUS, -1, 0L)).address();
            if (address == -1L) {
                return null; // MAP_FAILED
            }
            long start = (address + huge - 1) & -huge;
            unmap(address, start - address);
            unmap(start + bytes, address + mapped - (start + bytes));
            MemorySegment memory;
            try {
                memory = MemorySegment.ofAddress(start).reinterpret(bytes, arena, m -> unmap(m.address(), bytes));
            } catch (RuntimeException arenaClosed) {
                unmap(start, bytes);
                return null;
            }
            int ignored = (int) Mapping.MADVISE.invokeExact(memory, bytes, Mapping.MADV_HUGEPAGE); // only a hint
            return memory;
        } catch (Throwable t) {
            return null;
        }
    }

    private static void unmap(long address, long bytes) {
        if (bytes > 0) {
            try {
                int ignored = (int) Mapping.MUNMAP.invokeExact(MemorySegment.ofAddress(address), bytes);
            } catch (Throwable t) {
                // address space kept until exit: nothing else to do
            }
        }
    }

    /** Closes {@code fd}; close(2) releases the descriptor even when it reports an error, so there is nothing to report. */
    public static void close(int fd) {
        if (CLOSE == null) {
            return;
        }
        try {
            int ignored = (int) CLOSE.invokeExact(fd);
        } catch (Throwable ignored) {
            // released anyway
        }
    }

    /**
     * Gives the calling thread the lowest CPU priority (nice 19): on Linux, setpriority on a
     * thread id sets that thread's nice value alone, so a background worker yields the CPU to the
     * rest of the process. Best effort: does nothing where the call is unavailable or refused.
     */
    public static void lowerCurrentThreadPriority() {
        if (Priority.SETPRIORITY == null || Priority.GETTID == null) {
            return;
        }
        try {
            int tid = (int) Priority.GETTID.invokeExact();
            int ignored = (int) Priority.SETPRIORITY.invokeExact(PRIO_PROCESS, tid, LOWEST_PRIORITY);
        } catch (Throwable t) {
            // best effort
        }
    }

    /** This thread's errno capture segment, for callers with downcalls of their own (captureCallState("errno")). */
    public static MemorySegment callState() {
        return CALL_STATES.get();
    }

    /** The errno a downcall left in {@code callState}. */
    public static int errno(MemorySegment callState) {
        return (int) ERRNO.get(callState, 0L);
    }

    /** The system's message for {@code errno}, or "errno N". */
    public static String strerror(int errno) {
        if (Messages.STRERROR == null) {
            return "errno " + errno;
        }
        try {
            MemorySegment s = (MemorySegment) Messages.STRERROR.invokeExact(errno);
            return s.reinterpret(256).getString(0);
        } catch (Throwable t) {
            return "errno " + errno;
        }
    }
}

package castore.ingest.posix;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The few libc calls import and export need, on raw byte names, through FFM. java.nio cannot
 * represent file names that are not valid in the platform encoding (they come back with U+FFFD),
 * so everything that touches a name goes through here, relative to directory descriptors
 * (openat and friends) so that deep trees are not limited by PATH_MAX.
 *
 * <p>Calls are thread-safe; each thread keeps its own scratch memory for names and errno.
 * Failures throw {@link PosixException} carrying errno and the path they concern.
 */
public final class Posix {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final Linker.Option ERRNO = Linker.Option.captureCallState("errno");
    private static final VarHandle ERRNO_HANDLE =
            Linker.Option.captureStateLayout().varHandle(MemoryLayout.PathElement.groupElement("errno"));

    public static final int AT_FDCWD = -100;
    public static final int AT_SYMLINK_NOFOLLOW = 0x100;
    public static final int AT_EMPTY_PATH = 0x1000;

    public static final int O_RDONLY = 0;
    public static final int O_WRONLY = 1;
    public static final int O_CREAT = 0100;
    public static final int O_EXCL = 0200;
    public static final int O_NOCTTY = 0400;
    public static final int O_NONBLOCK = 04000;
    public static final int O_CLOEXEC = 02000000;
    /** Differs between architectures (asm-generic vs x86). */
    public static final int O_DIRECTORY;
    public static final int O_NOFOLLOW;

    public static final int S_IFMT = 0170000;
    public static final int S_IFREG = 0100000;
    public static final int S_IFDIR = 0040000;
    public static final int S_IFLNK = 0120000;
    public static final int S_IFIFO = 0010000;
    public static final int S_IFSOCK = 0140000;
    public static final int S_IFCHR = 0020000;
    public static final int S_IFBLK = 0060000;

    public static final int DT_UNKNOWN = 0;
    public static final int DT_DIR = 4;
    public static final int DT_REG = 8;
    public static final int DT_LNK = 10;

    public static final int ENOENT = 2;
    public static final int EINTR = 4;
    /** lseek's answer to SEEK_DATA at or past the last data: no data from there on. */
    public static final int ENXIO = 6;
    public static final int EACCES = 13;
    public static final int EEXIST = 17;
    public static final int ENOTDIR = 20;
    public static final int EINVAL = 22;
    public static final int ELOOP = 40;

    static {
        String arch = System.getProperty("os.arch");
        switch (arch) {
            case "amd64", "x86_64", "riscv64" -> { // riscv64 has the generic values (asm-generic/fcntl.h)
                O_DIRECTORY = 0200000;
                O_NOFOLLOW = 0400000;
            }
            case "aarch64" -> {
                O_DIRECTORY = 040000;
                O_NOFOLLOW = 0100000;
            }
            default -> throw new ExceptionInInitializerError("unsupported architecture for castore's libc calls: " + arch);
        }
    }

    private static final MethodHandle OPENAT = downcall("openat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
    private static final MethodHandle CLOSE = downcall("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle STATX = downcall("statx", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS));
    private static final MethodHandle GETDENTS64 = downcall("getdents64", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle READLINKAT = downcall("readlinkat", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG));
    private static final MethodHandle READ = downcall("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle PREAD = downcall("pread", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle LSEEK = downcall("lseek", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_INT));
    private static final MethodHandle PWRITE = downcall("pwrite", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG));
    private static final MethodHandle FTRUNCATE = downcall("ftruncate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG));
    private static final MethodHandle UNLINKAT = downcall("unlinkat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle MKDIRAT = downcall("mkdirat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SYMLINKAT = downcall("symlinkat", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
    private static final MethodHandle FADVISE = downcall("posix_fadvise", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_INT));
    private static final MethodHandle FCHMOD = downcall("fchmod", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle FCHMODAT = downcall("fchmodat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
    private static final MethodHandle ISATTY = LINKER.downcallHandle(
            LIBC.find("isatty").orElseThrow(), FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle STRERROR = LINKER.downcallHandle(
            LIBC.find("strerror").orElseThrow(), FunctionDescriptor.of(ADDRESS, JAVA_INT));

    // struct statx offsets (the same on every architecture).
    private static final int STATX_SIZE = 256;
    private static final int STATX_MODE_OFFSET = 28;
    private static final int STATX_SIZE_OFFSET = 40;
    private static final int STATX_BLOCKS_OFFSET = 48;
    private static final int STATX_INO_OFFSET = 32;
    private static final int STATX_MTIME_OFFSET = 112; // struct statx_timestamp: s64 tv_sec, u32 tv_nsec
    private static final int STATX_DEV_MAJOR_OFFSET = 136;
    private static final int STATX_DEV_MINOR_OFFSET = 140;
    // STATX_TYPE | STATX_MODE | STATX_MTIME | STATX_INO | STATX_SIZE | STATX_BLOCKS (the device is always given)
    private static final int STATX_MASK = 0x1 | 0x2 | 0x40 | 0x100 | 0x200 | 0x400;
    private static final int SEEK_DATA = 3;
    private static final int SEEK_HOLE = 4;

    /** Longest path a single call accepts (PATH_MAX includes the NUL). */
    public static final int PATH_MAX = 4096;

    private Posix() {
    }

    private static MethodHandle downcall(String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(LIBC.find(name).orElseThrow(() -> new ExceptionInInitializerError("libc has no " + name)),
                descriptor, ERRNO);
    }

    /** Per-thread native memory: errno capture, two NUL-terminated path buffers, statx and readlink buffers. */
    private static final class Scratch {
        final MemorySegment state;
        final MemorySegment path1;
        final MemorySegment path2;
        final MemorySegment statx;
        final MemorySegment link;

        Scratch() {
            Arena arena = Arena.ofAuto();
            state = arena.allocate(Linker.Option.captureStateLayout());
            path1 = arena.allocate(PATH_MAX + 1);
            path2 = arena.allocate(PATH_MAX + 1);
            statx = arena.allocate(STATX_SIZE, 8);
            link = arena.allocate(PATH_MAX + 1);
        }

        int errno() {
            return (int) ERRNO_HANDLE.get(state, 0L);
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private static MemorySegment cString(MemorySegment buffer, byte[] bytes, byte[] pathForErrors) throws PosixException {
        if (bytes.length > PATH_MAX) {
            throw new PosixException(36 /* ENAMETOOLONG: "cannot use PATH: File name too long" */, "use", pathForErrors);
        }
        MemorySegment.copy(bytes, 0, buffer, JAVA_BYTE, 0, bytes.length);
        buffer.set(JAVA_BYTE, bytes.length, (byte) 0);
        return buffer;
    }

    /** Type bits and permission bits of a file, and its size. */
    /**
     * {@code mtime} in nanoseconds since the epoch: to tell whether a file was written meanwhile;
     * {@code device} (major and minor) and {@code inode}: which file it is; {@code blocks}: the
     * 512-byte units the file takes on disk (fewer than its size for a file with holes).
     */
    public record Stat(int mode, long size, long mtime, long device, long inode, long blocks) {
        /** Whether the file takes at least {@code holeBytes} less on disk than its size: it may have holes. */
        public boolean mayHaveHoles(long holeBytes) {
            return isRegular() && blocks < (size - holeBytes) / 512;
        }

        public int type() {
            return mode & S_IFMT;
        }

        public boolean isRegular() {
            return type() == S_IFREG;
        }

        public boolean isDirectory() {
            return type() == S_IFDIR;
        }

        public boolean isSymlink() {
            return type() == S_IFLNK;
        }

        /** The owner's execute bit: what castore records as "executable". */
        public boolean ownerExecutable() {
            return (mode & 0100) != 0;
        }

        /** "fifo", "socket", "character device", ... for messages. */
        public String typeName() {
            return switch (type()) {
                case S_IFREG -> "regular file";
                case S_IFDIR -> "directory";
                case S_IFLNK -> "symlink";
                case S_IFIFO -> "fifo";
                case S_IFSOCK -> "socket";
                case S_IFCHR -> "character device";
                case S_IFBLK -> "block device";
                default -> "file of unknown type " + Integer.toOctalString(type());
            };
        }
    }

    /** openat(2); {@code path} is used for messages only. Retries on EINTR. */
    public static int openat(int dirfd, byte[] name, int flags, int mode, byte[] path) throws PosixException {
        Scratch s = SCRATCH.get();
        MemorySegment cname = cString(s.path1, name, path);
        while (true) {
            int fd;
            try {
                fd = (int) OPENAT.invokeExact(s.state, dirfd, cname, flags, mode);
            } catch (Throwable t) {
                throw rethrow(t);
            }
            if (fd >= 0) {
                return fd;
            }
            int errno = s.errno();
            if (errno != EINTR) {
                throw new PosixException(errno, (flags & O_CREAT) != 0 ? "create" : "open", path);
            }
        }
    }

    public static void close(int fd) {
        int ignored = close(SCRATCH.get(), fd);
    }

    /**
     * close(2) of a file written to: NFS and FUSE file systems report delayed write errors
     * (EIO, ENOSPC, EDQUOT) here. The descriptor is gone either way (EINTR included: Linux
     * closes it before it can be interrupted), so this is never retried.
     */
    public static void closeWritten(int fd, byte[] path) throws PosixException {
        Scratch s = SCRATCH.get();
        if (close(s, fd) < 0 && s.errno() != EINTR) {
            throw new PosixException(s.errno(), "close", path);
        }
    }

    private static int close(Scratch s, int fd) {
        try {
            return (int) CLOSE.invokeExact(s.state, fd);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** statx(2) of {@code name} relative to {@code dirfd}; an empty name with AT_EMPTY_PATH stats the fd itself. */
    public static Stat statat(int dirfd, byte[] name, int flags, byte[] path) throws PosixException {
        Scratch s = SCRATCH.get();
        MemorySegment cname = cString(s.path1, name, path);
        int rc;
        try {
            rc = (int) STATX.invokeExact(s.state, dirfd, cname, flags, STATX_MASK, s.statx);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (rc != 0) {
            throw new PosixException(s.errno(), "stat", path);
        }
        int mode = Short.toUnsignedInt(s.statx.get(JAVA_SHORT, STATX_MODE_OFFSET));
        long size = s.statx.get(JAVA_LONG, STATX_SIZE_OFFSET);
        long mtime = s.statx.get(JAVA_LONG, STATX_MTIME_OFFSET) * 1_000_000_000L
                + Integer.toUnsignedLong(s.statx.get(JAVA_INT, STATX_MTIME_OFFSET + 8));
        long device = Integer.toUnsignedLong(s.statx.get(JAVA_INT, STATX_DEV_MAJOR_OFFSET)) << 32
                | Integer.toUnsignedLong(s.statx.get(JAVA_INT, STATX_DEV_MINOR_OFFSET));
        return new Stat(mode, size, mtime, device, s.statx.get(JAVA_LONG, STATX_INO_OFFSET), s.statx.get(JAVA_LONG, STATX_BLOCKS_OFFSET));
    }

    private static final byte[] EMPTY = new byte[0];

    /** fstat of an open descriptor. */
    public static Stat fstat(int fd, byte[] path) throws PosixException {
        return statat(fd, EMPTY, AT_EMPTY_PATH, path);
    }

    /** lstat relative to {@code dirfd}. */
    public static Stat lstatat(int dirfd, byte[] name, byte[] path) throws PosixException {
        return statat(dirfd, name, AT_SYMLINK_NOFOLLOW, path);
    }

    /** getdents64(2) into {@code buffer}: bytes filled, 0 at the end. See {@link DirectoryReader}. */
    static long getdents(int fd, MemorySegment buffer, byte[] path) throws PosixException {
        Scratch s = SCRATCH.get();
        long n;
        try {
            n = (long) GETDENTS64.invokeExact(s.state, fd, buffer, buffer.byteSize());
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (n < 0) {
            throw new PosixException(s.errno(), "read directory", path);
        }
        return n;
    }

    /** readlinkat(2): the target's bytes. */
    public static byte[] readlinkat(int dirfd, byte[] name, byte[] path) throws PosixException {
        Scratch s = SCRATCH.get();
        MemorySegment cname = cString(s.path1, name, path);
        long n;
        try {
            n = (long) READLINKAT.invokeExact(s.state, dirfd, cname, s.link, (long) s.link.byteSize());
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (n < 0) {
            throw new PosixException(s.errno(), "read link", path);
        }
        if (n > PATH_MAX) {
            throw new PosixException(36 /* ENAMETOOLONG */, "read link", path);
        }
        return s.link.asSlice(0, n).toArray(JAVA_BYTE);
    }

    /** read(2) of up to {@code length} bytes into {@code buffer} at {@code offset}; 0 at end of file. Retries on EINTR. */
    public static long read(int fd, MemorySegment buffer, long offset, long length, byte[] path) throws PosixException {
        return readInto(fd, buffer.asSlice(offset, length), -1, path);
    }

    /** pread(2) of up to {@code length} bytes at {@code position} into {@code buffer}; 0 at end of file. Retries on EINTR. */
    public static long pread(int fd, MemorySegment buffer, long length, long position, byte[] path) throws PosixException {
        return readInto(fd, buffer.asSlice(0, length), position, path);
    }

    /** read(2) into all of {@code target} if {@code position} is negative, else pread(2) at it. */
    private static long readInto(int fd, MemorySegment target, long position, byte[] path) throws PosixException {
        Scratch s = SCRATCH.get();
        long length = target.byteSize();
        while (true) {
            long n;
            try {
                n = position < 0 ? (long) READ.invokeExact(s.state, fd, target, length)
                        : (long) PREAD.invokeExact(s.state, fd, target, length, position);
            } catch (Throwable t) {
                throw rethrow(t);
            }
            if (n >= 0) {
                return n;
            }
            int errno = s.errno();
            if (errno != EINTR) {
                throw new PosixException(errno, "read", path);
            }
        }
    }

    /**
     * The start of the first data at or after {@code offset} (lseek SEEK_DATA), or -1 if there is
     * none (ENXIO: only a hole, or the end of the file, from there).
     */
    public static long seekData(int fd, long offset, byte[] path) throws PosixException {
        return seek(fd, offset, SEEK_DATA, path);
    }

    /** The start of the first hole at or after {@code offset} (lseek SEEK_HOLE; the end of the file counts as one). */
    public static long seekHole(int fd, long offset, byte[] path) throws PosixException {
        return seek(fd, offset, SEEK_HOLE, path);
    }

    private static long seek(int fd, long offset, int whence, byte[] path) throws PosixException {
        Scratch s = SCRATCH.get();
        long r;
        try {
            r = (long) LSEEK.invokeExact(s.state, fd, offset, whence);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (r < 0) {
            int errno = s.errno();
            if (errno == ENXIO) {
                return -1;
            }
            throw new PosixException(errno, "seek in", path);
        }
        return r;
    }

    /** Writes all {@code length} bytes of {@code buffer} from {@code offset} at {@code position} of the file (pwrite(2)). */
    public static void pwriteFully(int fd, MemorySegment buffer, long offset, long length, long position, byte[] path)
            throws PosixException {
        Scratch s = SCRATCH.get();
        long done = 0;
        while (done < length) {
            long n;
            try {
                n = (long) PWRITE.invokeExact(s.state, fd, buffer.asSlice(offset + done, length - done), length - done, position + done);
            } catch (Throwable t) {
                throw rethrow(t);
            }
            if (n < 0) {
                int errno = s.errno();
                if (errno == EINTR) {
                    continue;
                }
                throw new PosixException(errno, "write", path);
            }
            done += n;
        }
    }

    /** ftruncate(2): sets the file's size; bytes it adds read as zeros and take no space. */
    public static void ftruncate(int fd, long size, byte[] path) throws PosixException {
        Scratch s = SCRATCH.get();
        while (true) {
            int rc;
            try {
                rc = (int) FTRUNCATE.invokeExact(s.state, fd, size);
            } catch (Throwable t) {
                throw rethrow(t);
            }
            if (rc == 0) {
                return;
            }
            int errno = s.errno();
            if (errno != EINTR) {
                throw new PosixException(errno, "set the size of", path);
            }
        }
    }

    /** unlinkat(2) of the file {@code name} relative to {@code dirfd}: false if it failed (errno ignored: a best-effort clean-up). */
    public static boolean unlinkFile(int dirfd, byte[] name, byte[] path) {
        Scratch s = SCRATCH.get();
        try {
            MemorySegment cname = cString(s.path1, name, path);
            return (int) UNLINKAT.invokeExact(s.state, dirfd, cname, 0) == 0;
        } catch (PosixException e) {
            return false;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static void mkdirat(int dirfd, byte[] name, int mode, byte[] path) throws PosixException {
        Scratch s = SCRATCH.get();
        MemorySegment cname = cString(s.path1, name, path);
        int rc;
        try {
            rc = (int) MKDIRAT.invokeExact(s.state, dirfd, cname, mode);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (rc != 0) {
            throw new PosixException(s.errno(), "create directory", path);
        }
    }

    public static void symlinkat(byte[] target, int dirfd, byte[] name, byte[] path) throws PosixException {
        Scratch s = SCRATCH.get();
        MemorySegment ctarget = cString(s.path2, target, path);
        MemorySegment cname = cString(s.path1, name, path);
        int rc;
        try {
            rc = (int) SYMLINKAT.invokeExact(s.state, ctarget, dirfd, cname);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (rc != 0) {
            throw new PosixException(s.errno(), "create symlink", path);
        }
    }

    /**
     * fchmodat(2) of {@code name} relative to {@code dirfd}, never through a symlink
     * (AT_SYMLINK_NOFOLLOW: a symlink swapped in is an error, not its target changed).
     */
    public static void chmodNoFollow(int dirfd, byte[] name, int mode, byte[] path) throws PosixException {
        Scratch s = SCRATCH.get();
        MemorySegment cname = cString(s.path1, name, path);
        int rc;
        try {
            rc = (int) FCHMODAT.invokeExact(s.state, dirfd, cname, mode, AT_SYMLINK_NOFOLLOW);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (rc != 0) {
            throw new PosixException(s.errno(), "chmod", path);
        }
    }

    public static void fchmod(int fd, int mode, byte[] path) throws PosixException {
        Scratch s = SCRATCH.get();
        int rc;
        try {
            rc = (int) FCHMOD.invokeExact(s.state, fd, mode);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (rc != 0) {
            throw new PosixException(s.errno(), "chmod", path);
        }
    }

    private static final int POSIX_FADV_WILLNEED = 3;

    /**
     * Asks the kernel to start reading {@code length} bytes at {@code offset} into the page cache
     * now, asynchronously (a hint: failures are ignored).
     */
    public static void willNeed(int fd, long offset, long length) {
        try {
            int ignored = (int) FADVISE.invokeExact(SCRATCH.get().state, fd, offset, length, POSIX_FADV_WILLNEED);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Whether {@code fd} is a terminal. */
    public static boolean isatty(int fd) {
        try {
            return (int) ISATTY.invokeExact(fd) == 1;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The C library's text for an errno value. */
    public static String strerror(int errno) {
        try {
            MemorySegment s = (MemorySegment) STRERROR.invokeExact(errno);
            return s.reinterpret(1024).getString(0, StandardCharsets.UTF_8);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        throw new IllegalStateException("native call failed", t);
    }

    /** {@code path} + "/" + {@code name}, for messages and for opening from the start. */
    public static byte[] child(byte[] path, byte[] name) {
        boolean slash = path.length > 0 && path[path.length - 1] != '/';
        byte[] out = Arrays.copyOf(path, path.length + (slash ? 1 : 0) + name.length);
        if (slash) {
            out[path.length] = '/';
        }
        System.arraycopy(name, 0, out, out.length - name.length, name.length);
        return out;
    }
}

package castore.fuse.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.util.List;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The few libc calls the FUSE transport needs, through the FFM API (Linux, LP64). Calls that can
 * fail take a call-state segment ({@link #newCallState}) first, which receives errno; they return
 * the result or {@code -errno}, so hot paths allocate nothing. One call-state segment per thread.
 */
public final class Libc {
    public static final int O_RDONLY = 0;
    public static final int O_RDWR = 2;
    public static final int O_CLOEXEC = 0x80000;
    public static final long MS_RDONLY = 1;
    public static final long MS_NOSUID = 2;
    public static final long MS_NODEV = 4;
    public static final int MNT_DETACH = 2;
    public static final int AF_UNIX = 1;
    public static final int SOCK_STREAM = 1;
    public static final int SOCK_CLOEXEC = 0x80000;
    public static final int SOL_SOCKET = 1;
    public static final int SCM_RIGHTS = 1;
    /** getsockopt: the peer's struct ucred {pid, uid, gid}. */
    public static final int SO_PEERCRED = 17;
    public static final int SHUT_RDWR = 2;
    /** recvmsg flag: received descriptors are close-on-exec. */
    public static final int MSG_CMSG_CLOEXEC = 0x40000000;
    /** _IOR(229, 0, uint32_t): clone a /dev/fuse fd onto the same connection. */
    public static final long FUSE_DEV_IOC_CLONE = 0x8004e500L;
    /** _IOW(229, 1, struct fuse_backing_map {int32 fd; u32 flags; u64 padding}): register a passthrough file. */
    public static final long FUSE_DEV_IOC_BACKING_OPEN = 0x4010e501L;
    /** _IOW(229, 2, uint32_t): drop a backing id. */
    public static final long FUSE_DEV_IOC_BACKING_CLOSE = 0x4004e502L;

    /** struct statfs is 120 bytes on LP64 Linux; allocate generously. */
    public static final long STATFS_SIZE = 256;
    /** glibc's posix_spawn_file_actions_t is 80 bytes; allocate generously. */
    static final long SPAWN_FILE_ACTIONS_SIZE = 128;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final SymbolLookup LIBC = LINKER.defaultLookup();
    private static final Linker.Option ERRNO = Linker.Option.captureCallState("errno");
    private static final VarHandle ERRNO_HANDLE = Linker.Option.captureStateLayout()
            .varHandle(MemoryLayout.PathElement.groupElement("errno"));

    private static final MethodHandle OPEN = errnoHandle("open", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle CLOSE = errnoHandle("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    private static final MethodHandle READ = errnoHandle("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    // Without errno: capturing it costs 70-80 ns a call (a transition into the VM), and a FUSE
    // reader calls read(2) once per request; it calls READ, which captures, only after a failure.
    private static final MethodHandle READ_NO_ERRNO = handle("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    private static final MethodHandle WRITE = errnoHandle("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
    // Critical with heap access: the buffer may be a Java array, written with no copy to native
    // memory and no thread-state transition. The JVM cannot reach a safepoint (GC) meanwhile, so
    // only for writes that never wait in the kernel. errno capture works with it (JDK 22+).
    private static final MethodHandle WRITE_CRITICAL = errnoHandle("write",
            FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG), Linker.Option.critical(true));
    private static final MethodHandle MOUNT = errnoHandle("mount",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS));
    private static final MethodHandle IOCTL = errnoHandle("ioctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS),
            Linker.Option.firstVariadicArg(2));
    private static final MethodHandle GETUID = handle("getuid", FunctionDescriptor.of(JAVA_INT));
    private static final MethodHandle GETGID = handle("getgid", FunctionDescriptor.of(JAVA_INT));
    private static final MethodHandle GETEUID = handle("geteuid", FunctionDescriptor.of(JAVA_INT));
    private static final MethodHandle GETPAGESIZE = handle("getpagesize", FunctionDescriptor.of(JAVA_INT));

    // Each downcall handle of a new shape costs a few ms to make (the JDK spins its stub and
    // lambda forms; the AOT cache keeps none), so calls a mount may never make get theirs on
    // first use, through holder classes the JVM initialises lazily.

    /** Unmounting: at the end, or after a failed start. */
    private static final class Unmount {
        static final MethodHandle UMOUNT2 = errnoHandle("umount2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    }

    /** statfs(2): a request the mount's own warm-up sends through the kernel. */
    private static final class Statfs {
        static final MethodHandle STATFS = errnoHandle("statfs", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    }

    /** Error messages. */
    private static final class Messages {
        static final MethodHandle STRERROR = handle("strerror", FunctionDescriptor.of(ADDRESS, JAVA_INT));
    }

    /** Mounting through fusermount3 (ordinary users): a socket pair, a child, its descriptor back. */
    private static final class Fusermount {
        static final MethodHandle SOCKETPAIR = errnoHandle("socketpair",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
        static final MethodHandle PIPE2 = errnoHandle("pipe2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        static final MethodHandle RECVMSG = errnoHandle("recvmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
        static final MethodHandle WAITPID = errnoHandle("waitpid", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
        // posix_spawn* return the error number instead of setting errno.
        static final MethodHandle SPAWN_FA_INIT = handle("posix_spawn_file_actions_init", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        static final MethodHandle SPAWN_FA_ADDDUP2 = handle("posix_spawn_file_actions_adddup2",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        static final MethodHandle SPAWN_FA_DESTROY = handle("posix_spawn_file_actions_destroy",
                FunctionDescriptor.of(JAVA_INT, ADDRESS));
        static final MethodHandle POSIX_SPAWNP = handle("posix_spawnp",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS));
    }

    /** A live mount's hand-over to another process: a listening Unix socket, descriptors passed over it. */
    private static final class HandOver {
        static final MethodHandle SOCKET = errnoHandle("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
        static final MethodHandle BIND = errnoHandle("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
        static final MethodHandle LISTEN = errnoHandle("listen", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
        static final MethodHandle ACCEPT4 = errnoHandle("accept4", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
        static final MethodHandle CONNECT = errnoHandle("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
        static final MethodHandle SENDMSG = errnoHandle("sendmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
        static final MethodHandle GETSOCKOPT = errnoHandle("getsockopt",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
        static final MethodHandle SHUTDOWN = errnoHandle("shutdown", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    }

    private Libc() {
    }

    private static MethodHandle handle(String name, FunctionDescriptor fd, Linker.Option... options) {
        MemorySegment symbol = LIBC.find(name).orElseThrow(() -> new UnsatisfiedLinkError("libc has no " + name));
        return LINKER.downcallHandle(symbol, fd, options);
    }

    private static MethodHandle errnoHandle(String name, FunctionDescriptor fd, Linker.Option... options) {
        Linker.Option[] all = new Linker.Option[options.length + 1];
        all[0] = ERRNO;
        System.arraycopy(options, 0, all, 1, options.length);
        return handle(name, fd, all);
    }

    /**
     * Calls a handle made by {@link #errnoHandle} (state first) for its int or long result, or
     * {@code -errno} on failure. Boxes its arguments: for set-up calls, not for the read/write loop.
     */
    private static long call(MethodHandle handle, MemorySegment state, Object... args) {
        Object[] all = new Object[args.length + 1];
        all[0] = state;
        System.arraycopy(args, 0, all, 1, args.length);
        try {
            long r = ((Number) handle.invokeWithArguments(all)).longValue();
            return r < 0 ? -errno(state) : r;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** A segment to receive errno; allocate one per thread (or per buffer) and reuse it. */
    public static MemorySegment newCallState(Arena arena) {
        return arena.allocate(Linker.Option.captureStateLayout());
    }

    /** The errno the last failed call with this call state left. */
    public static int errno(MemorySegment callState) {
        return (int) ERRNO_HANDLE.get(callState, 0L);
    }

    /** The C library's description of an errno. */
    public static String strerror(int errno) {
        try {
            MemorySegment s = (MemorySegment) Messages.STRERROR.invokeExact(errno);
            return s.reinterpret(4096).getString(0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int open(MemorySegment state, MemorySegment path, int flags) {
        return (int) call(OPEN, state, path, flags, 0);
    }

    public static int close(MemorySegment state, int fd) {
        return (int) call(CLOSE, state, fd);
    }

    // read, write and writeCritical each invoke their handle from a static final field, so the
    // JIT sees a constant handle: a shared helper taking the handle as an argument would not.

    /** read(2): bytes read, or -errno. */
    public static long read(MemorySegment state, int fd, MemorySegment buffer, long count) {
        try {
            long r = (long) READ.invokeExact(state, fd, buffer, count);
            return r < 0 ? -errno(state) : r;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * read(2) without errno: bytes read, or -1 on any failure, whose reason {@link #read} tells
     * (for a call that fails the same way again, or may simply be made again).
     */
    public static long readOrMinusOne(int fd, MemorySegment buffer, long count) {
        try {
            long r = (long) READ_NO_ERRNO.invokeExact(fd, buffer, count);
            return r < 0 ? -1 : r;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** write(2): bytes written, or -errno. */
    public static long write(MemorySegment state, int fd, MemorySegment buffer, long count) {
        try {
            long r = (long) WRITE.invokeExact(state, fd, buffer, count);
            return r < 0 ? -errno(state) : r;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * write(2) from a heap or native buffer through a critical downcall: bytes written, or -errno.
     * Only for writes that return without waiting (FUSE replies): no GC can run until it returns.
     */
    public static long writeCritical(MemorySegment state, int fd, MemorySegment buffer, long count) {
        try {
            long r = (long) WRITE_CRITICAL.invokeExact(state, fd, buffer, count);
            return r < 0 ? -errno(state) : r;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public static int mount(MemorySegment state, MemorySegment source, MemorySegment target, MemorySegment type,
                            long flags, MemorySegment data) {
        return (int) call(MOUNT, state, source, target, type, flags, data);
    }

    public static int umount2(MemorySegment state, MemorySegment target, int flags) {
        return (int) call(Unmount.UMOUNT2, state, target, flags);
    }

    /** statfs(2) of {@code path} (a C string) into {@code buffer} ({@link #STATFS_SIZE} bytes). */
    public static int statfs(MemorySegment state, MemorySegment path, MemorySegment buffer) {
        return (int) call(Statfs.STATFS, state, path, buffer);
    }

    public static int ioctl(MemorySegment state, int fd, long request, MemorySegment arg) {
        return (int) call(IOCTL, state, fd, request, arg);
    }

    /** socketpair(2) into {@code fds} (two ints). */
    public static int socketpair(MemorySegment state, int domain, int type, int protocol, MemorySegment fds) {
        return (int) call(Fusermount.SOCKETPAIR, state, domain, type, protocol, fds);
    }

    /** pipe2(2) into {@code fds} (two ints: read end, write end). */
    public static int pipe2(MemorySegment state, MemorySegment fds, int flags) {
        return (int) call(Fusermount.PIPE2, state, fds, flags);
    }

    public static long recvmsg(MemorySegment state, int fd, MemorySegment msghdr, int flags) {
        return call(Fusermount.RECVMSG, state, fd, msghdr, flags);
    }

    public static int socket(MemorySegment state, int domain, int type, int protocol) {
        return (int) call(HandOver.SOCKET, state, domain, type, protocol);
    }

    public static int bind(MemorySegment state, int fd, MemorySegment address, int length) {
        return (int) call(HandOver.BIND, state, fd, address, length);
    }

    public static int listen(MemorySegment state, int fd, int backlog) {
        return (int) call(HandOver.LISTEN, state, fd, backlog);
    }

    /** accept4(2) without the peer's address. */
    public static int accept4(MemorySegment state, int fd, int flags) {
        return (int) call(HandOver.ACCEPT4, state, fd, MemorySegment.NULL, MemorySegment.NULL, flags);
    }

    public static int connect(MemorySegment state, int fd, MemorySegment address, int length) {
        return (int) call(HandOver.CONNECT, state, fd, address, length);
    }

    public static long sendmsg(MemorySegment state, int fd, MemorySegment msghdr, int flags) {
        return call(HandOver.SENDMSG, state, fd, msghdr, flags);
    }

    /** getsockopt(2) into {@code value}, whose size goes in and out through {@code length} (one int). */
    public static int getsockopt(MemorySegment state, int fd, int level, int name, MemorySegment value, MemorySegment length) {
        return (int) call(HandOver.GETSOCKOPT, state, fd, level, name, value, length);
    }

    public static int shutdown(MemorySegment state, int fd, int how) {
        return (int) call(HandOver.SHUTDOWN, state, fd, how);
    }

    /** waitpid(2) with the wait status stored into {@code status} (one int). */
    public static int waitpid(MemorySegment state, int pid, MemorySegment status, int options) {
        return (int) call(Fusermount.WAITPID, state, pid, status, options);
    }

    /**
     * Starts {@code argv[0]} (searched on PATH) with {@code env}, each {@code dup2s[i][0]} made the
     * child's fd {@code dup2s[i][1]} (cleared of close-on-exec). Unlike ProcessBuilder, every other
     * fd without close-on-exec stays open in the child too. Returns the pid.
     */
    public static int spawn(List<String> argv, List<String> env, int[][] dup2s) throws ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment actions = arena.allocate(SPAWN_FILE_ACTIONS_SIZE, 16);
            check("posix_spawn_file_actions_init", (int) Fusermount.SPAWN_FA_INIT.invokeExact(actions));
            try {
                for (int[] dup2 : dup2s) {
                    check("posix_spawn_file_actions_adddup2",
                            (int) Fusermount.SPAWN_FA_ADDDUP2.invokeExact(actions, dup2[0], dup2[1]));
                }
                MemorySegment pid = arena.allocate(JAVA_INT);
                int r = (int) Fusermount.POSIX_SPAWNP.invokeExact(pid, arena.allocateFrom(argv.getFirst()), actions,
                        MemorySegment.NULL, stringArray(arena, argv), stringArray(arena, env));
                if (r != 0) {
                    throw new ErrnoException("posix_spawnp " + argv.getFirst(), r);
                }
                return pid.get(JAVA_INT, 0);
            } finally {
                int destroyed = (int) Fusermount.SPAWN_FA_DESTROY.invokeExact(actions);
                assert destroyed == 0;
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static void check(String call, int result) throws ErrnoException {
        if (result != 0) {
            throw new ErrnoException(call, result);
        }
    }

    /** A NULL-terminated array of C strings. */
    private static MemorySegment stringArray(Arena arena, List<String> strings) {
        MemorySegment array = arena.allocate(ADDRESS, strings.size() + 1L);
        for (int i = 0; i < strings.size(); i++) {
            array.setAtIndex(ADDRESS, i, arena.allocateFrom(strings.get(i)));
        }
        array.setAtIndex(ADDRESS, strings.size(), MemorySegment.NULL);
        return array;
    }

    public static int getuid() {
        return noArgs(GETUID);
    }

    public static int getgid() {
        return noArgs(GETGID);
    }

    public static int geteuid() {
        return noArgs(GETEUID);
    }

    public static int pageSize() {
        return noArgs(GETPAGESIZE);
    }

    private static int noArgs(MethodHandle handle) {
        try {
            return (int) handle.invokeExact();
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
        throw new IllegalStateException(t);
    }
}

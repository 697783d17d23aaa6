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
 * with its errors as Java exceptions, and {@code strerror} for messages. The local store and the
 * cache's disk tier build their pread/pwrite on the descriptors this returns.
 */
@SuppressWarnings("restricted")
public final class Libc {
    public static final int O_RDONLY = 0;
    public static final int O_WRONLY = 1;
    public static final int O_RDWR = 2;
    public static final int O_CREAT = 0100;
    public static final int O_EXCL = 0200;
    private static final int O_CLOEXEC = 02000000;
    private static final int ENOENT = 2;
    private static final int EINTR = 4;
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final MethodHandle OPEN;
    private static final MethodHandle STRERROR;

    static {
        MethodHandle open = null;
        MethodHandle strerror = null;
        try {
            Linker linker = Linker.nativeLinker();
            var libc = linker.defaultLookup();
            var i = ValueLayout.JAVA_INT;
            open = linker.downcallHandle(libc.find("open").orElseThrow(), FunctionDescriptor.of(i, ValueLayout.ADDRESS, i, i),
                    Linker.Option.captureCallState("errno"), Linker.Option.firstVariadicArg(2));
            strerror = linker.downcallHandle(libc.find("strerror").orElseThrow(), FunctionDescriptor.of(ValueLayout.ADDRESS, i));
        } catch (RuntimeException | Error unavailable) {
            open = null; // IllegalCallerException without native access, or no libc
        }
        OPEN = open;
        STRERROR = strerror;
    }

    private Libc() {
    }

    /** Whether native calls are allowed in this JVM (callers fall back to the JDK's file API if not). */
    public static boolean available() {
        return OPEN != null;
    }

    /**
     * Opens {@code path} ({@code O_CLOEXEC} is always added), retrying on EINTR; a missing file is
     * {@link NoSuchFileException}, any other failure an IOException naming the path and the cause.
     */
    public static int open(Path path, int flags, int mode) throws IOException {
        if (OPEN == null) {
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
                int errno = (int) ERRNO.get(state, 0L);
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

    /** The system's message for {@code errno}, or "errno N". */
    public static String strerror(int errno) {
        if (STRERROR == null) {
            return "errno " + errno;
        }
        try {
            MemorySegment s = (MemorySegment) STRERROR.invokeExact(errno);
            return s.reinterpret(256).getString(0);
        } catch (Throwable t) {
            return "errno " + errno;
        }
    }
}

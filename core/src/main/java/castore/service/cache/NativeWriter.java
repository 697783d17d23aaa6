package castore.service.cache;

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

/**
 * A file opened for writing with {@code pwrite(2)} straight from Java arrays (a critical
 * downcall: the kernel copies from the array itself). {@code FileChannel} copies a heap buffer
 * into a temporary direct buffer first: for the disk cache, which writes every fetched chunk,
 * that copy was ~2% of a cold 1 GiB read through a mount and ~12% of the write's CPU.
 * {@link #open} returns null where the native call is not available (native access denied),
 * and the caller writes through its channel instead.
 */
final class NativeWriter implements AutoCloseable {
    private static final int O_WRONLY = 1;
    private static final int O_CLOEXEC = 02000000;
    private static final int EINTR = 4;
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    /** Each thread's errno capture segment, made once (an arena per call costs more than the call). */
    private static final ThreadLocal<MemorySegment> CALL_STATES = ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(CALL_STATE));
    private static final MethodHandle OPEN;
    private static final MethodHandle PWRITE;
    private static final MethodHandle CLOSE;

    static {
        MethodHandle open = null;
        MethodHandle pwrite = null;
        MethodHandle close = null;
        try {
            Linker linker = Linker.nativeLinker();
            var libc = linker.defaultLookup();
            var errno = Linker.Option.captureCallState("errno");
            var i = ValueLayout.JAVA_INT;
            var l = ValueLayout.JAVA_LONG;
            var a = ValueLayout.ADDRESS;
            open = linker.downcallHandle(libc.find("open").orElseThrow(), FunctionDescriptor.of(i, a, i, i), errno,
                    Linker.Option.firstVariadicArg(2));
            pwrite = linker.downcallHandle(libc.find("pwrite").orElseThrow(), FunctionDescriptor.of(l, i, a, l, l), errno,
                    Linker.Option.critical(true));
            close = linker.downcallHandle(libc.find("close").orElseThrow(), FunctionDescriptor.of(i, i));
        } catch (RuntimeException | Error unavailable) {
            open = null; // IllegalCallerException without native access, or no libc: FileChannel it is
        }
        OPEN = open;
        PWRITE = pwrite;
        CLOSE = close;
    }

    private final Path path;
    private int fd;

    private NativeWriter(Path path, int fd) {
        this.path = path;
        this.fd = fd;
    }

    /** Opens an existing file for writing; null if native calls are not available here. */
    static NativeWriter open(Path path) throws IOException {
        if (OPEN == null) {
            return null;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = CALL_STATES.get();
            MemorySegment name = arena.allocateFrom(path.toString());
            while (true) {
                int fd = (int) OPEN.invokeExact(state, name, O_WRONLY | O_CLOEXEC, 0);
                if (fd >= 0) {
                    return new NativeWriter(path, fd);
                }
                int errno = (int) ERRNO.get(state, 0L);
                if (errno != EINTR) {
                    throw new IOException(path + ": open for writing failed (errno " + errno + ")");
                }
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IOException(path + ": open failed", t);
        }
    }

    /** Writes {@code src[0, length)} at {@code offset}, all of it or an exception. */
    void writeFully(byte[] src, int length, long offset) throws IOException {
        if (fd < 0) {
            throw new IOException(path + ": closed");
        }
        MemorySegment all = MemorySegment.ofArray(src);
        long done = 0;
        try {
            MemorySegment state = CALL_STATES.get();
            while (done < length) {
                long n = (long) PWRITE.invokeExact(state, fd, all.asSlice(done), length - done, offset + done);
                if (n < 0) {
                    int errno = (int) ERRNO.get(state, 0L);
                    if (errno != EINTR) {
                        throw new IOException(path + ": write failed (errno " + errno + ")");
                    }
                    continue;
                }
                done += n;
            }
        } catch (IOException | RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IOException(path + ": write failed", t);
        }
    }

    @Override
    public void close() {
        if (fd >= 0) {
            try {
                int ignored = (int) CLOSE.invokeExact(fd);
            } catch (Throwable ignored) {
                // nothing buffered: writes go straight to the kernel
            }
            fd = -1;
        }
    }
}

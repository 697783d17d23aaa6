package castore.fuse.transport;

import castore.fuse.api.Errno;
import castore.fuse.sys.ErrnoException;
import castore.fuse.sys.Libc;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Opening, cloning and closing /dev/fuse descriptors. */
final class DevFuse {
    static final String PATH = "/dev/fuse";

    private DevFuse() {
    }

    /** A fresh /dev/fuse descriptor, close-on-exec so no child process keeps the connection alive. */
    static int open() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            int fd = Libc.open(Libc.newCallState(arena), arena.allocateFrom(PATH), Libc.O_RDWR | Libc.O_CLOEXEC);
            if (fd < 0) {
                String hint = -fd == Errno.ENOENT ? " (no FUSE device: load the fuse module, or pass /dev/fuse into the container)"
                        : -fd == Errno.EACCES || -fd == Errno.EPERM ? " (no permission: mount as root, or let fusermount3 mount)"
                        : "";
                throw new IOException(new ErrnoException("open " + PATH, -fd).getMessage() + hint);
            }
            return fd;
        }
    }

    /**
     * A new descriptor on the same connection as {@code master} with a queue of its own
     * (FUSE_DEV_IOC_CLONE): a reader on it gets its own requests, and must reply on it.
     */
    static int cloneOf(int master) throws IOException {
        int fd = open();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment masterFd = arena.allocateFrom(ValueLayout.JAVA_INT, master);
            int r = Libc.ioctl(Libc.newCallState(arena), fd, Libc.FUSE_DEV_IOC_CLONE, masterFd);
            if (r < 0) {
                close(fd);
                throw new ErrnoException("ioctl FUSE_DEV_IOC_CLONE", -r);
            }
            return fd;
        }
    }

    static void close(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            Libc.close(Libc.newCallState(arena), fd);
        }
    }
}

package castore.fuse.transport;

import castore.fuse.api.Errno;
import castore.fuse.sys.ErrnoException;
import castore.fuse.sys.Libc;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/** Mounting with mount(2) and unmounting with umount2(2): needs CAP_SYS_ADMIN (root). */
final class SyscallMount {
    /** S_IFDIR in octal, as the kernel parses rootmode. */
    private static final String ROOT_MODE = "40000";

    private SyscallMount() {
    }

    /** The data string the fuse filesystem type parses; it rejects any word it does not know. */
    static String data(int fd, int uid, int gid, MountOptions options) {
        StringBuilder sb = new StringBuilder()
                .append("fd=").append(fd)
                .append(",rootmode=").append(ROOT_MODE)
                .append(",user_id=").append(uid)
                .append(",group_id=").append(gid);
        if (options.defaultPermissions()) {
            sb.append(",default_permissions");
        }
        if (options.allowOther()) {
            sb.append(",allow_other");
        }
        return sb.toString();
    }

    static String type(MountOptions options) {
        return options.subtype().isEmpty() ? "fuse" : "fuse." + options.subtype();
    }

    /** Opens /dev/fuse and mounts it read-only, nosuid, nodev on {@code mountpoint}; returns the fd. */
    static int mount(Path mountpoint, MountOptions options) throws IOException {
        int fd = DevFuse.open();
        try (Arena arena = Arena.ofConfined()) {
            String data = data(fd, Libc.getuid(), Libc.getgid(), options);
            int r = Libc.mount(Libc.newCallState(arena), arena.allocateFrom(options.fsName()),
                    arena.allocateFrom(mountpoint.toString()), arena.allocateFrom(type(options)),
                    Libc.MS_RDONLY | Libc.MS_NOSUID | Libc.MS_NODEV, arena.allocateFrom(data));
            if (r < 0) {
                String hint = -r == Errno.EPERM ? " (mount(2) needs root; as an ordinary user fusermount3 mounts)" : "";
                throw new IOException(new ErrnoException("mount " + mountpoint, -r).getMessage() + hint);
            }
            return fd;
        } catch (IOException | RuntimeException e) {
            DevFuse.close(fd);
            throw e;
        }
    }

    /** Detaches the mount (MNT_DETACH): it vanishes now, the kernel drops it when no longer busy. */
    static void unmount(Path mountpoint) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment target = arena.allocateFrom(mountpoint.toString());
            int r = Libc.umount2(Libc.newCallState(arena), target, Libc.MNT_DETACH);
            if (r < 0) {
                throw new ErrnoException("umount2 " + mountpoint, -r);
            }
        }
    }
}

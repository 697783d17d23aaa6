package castore.fuse.transport;

import castore.fuse.api.BackingFiles;
import castore.fuse.api.FuseException;
import castore.fuse.sys.Libc;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** {@link BackingFiles} through the passthrough ioctls on a /dev/fuse descriptor of the connection. */
record DeviceBackingFiles(int deviceFd) implements BackingFiles {
    /** struct fuse_backing_map: int32 fd, uint32 flags, uint64 padding. */
    private static final long MAP_SIZE = 16;

    @Override
    public int open(int fd) throws FuseException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment map = arena.allocate(MAP_SIZE, 8);
            map.set(ValueLayout.JAVA_INT, 0, fd);
            int id = Libc.ioctl(Libc.newCallState(arena), deviceFd, Libc.FUSE_DEV_IOC_BACKING_OPEN, map);
            if (id < 0) {
                throw new FuseException(-id);
            }
            return id;
        }
    }

    @Override
    public void close(int backingId) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment id = arena.allocateFrom(ValueLayout.JAVA_INT, backingId);
            Libc.ioctl(Libc.newCallState(arena), deviceFd, Libc.FUSE_DEV_IOC_BACKING_CLOSE, id);
        }
    }
}

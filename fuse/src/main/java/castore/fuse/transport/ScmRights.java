package castore.fuse.transport;

import castore.fuse.api.Errno;
import castore.fuse.sys.ErrnoException;
import castore.fuse.sys.Libc;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * One byte and one descriptor over a Unix socket (SCM_RIGHTS): how fusermount3 hands back the
 * /dev/fuse descriptor it opened, and how a mount hands its own to the process taking it over.
 */
final class ScmRights {
    // struct msghdr / iovec / cmsghdr offsets (LP64)
    private static final int MSGHDR_SIZE = 56;
    private static final int MSG_IOV = 16;
    private static final int MSG_IOVLEN = 24;
    private static final int MSG_CONTROL = 32;
    private static final int MSG_CONTROLLEN = 40;
    private static final int IOVEC_SIZE = 16;
    private static final int CMSG_LEN = 0;
    private static final int CMSG_LEVEL = 8;
    private static final int CMSG_TYPE = 12;
    private static final int CMSG_DATA = 16;
    /** CMSG_LEN(sizeof(int)) and CMSG_SPACE(sizeof(int)). */
    private static final int CMSG_LEN_INT = 20;
    private static final int CMSG_SPACE_INT = 24;

    private ScmRights() {
    }

    /** Sends {@code data} with {@code descriptor} (none if negative). {@code what} names the peer in errors. */
    static void send(MemorySegment state, int socket, int descriptor, byte data, String what) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment control = arena.allocate(CMSG_SPACE_INT, 8);
            MemorySegment msg = message(arena, arena.allocateFrom(ValueLayout.JAVA_BYTE, data), control);
            if (descriptor >= 0) {
                control.set(ValueLayout.JAVA_LONG, CMSG_LEN, CMSG_LEN_INT);
                control.set(ValueLayout.JAVA_INT, CMSG_LEVEL, Libc.SOL_SOCKET);
                control.set(ValueLayout.JAVA_INT, CMSG_TYPE, Libc.SCM_RIGHTS);
                control.set(ValueLayout.JAVA_INT, CMSG_DATA, descriptor);
            } else {
                msg.set(ValueLayout.ADDRESS, MSG_CONTROL, MemorySegment.NULL);
                msg.set(ValueLayout.JAVA_LONG, MSG_CONTROLLEN, 0);
            }
            long n;
            do {
                n = Libc.sendmsg(state, socket, msg, 0);
            } while (n == -Errno.EINTR);
            if (n != 1) {
                throw n < 0 ? new ErrnoException("sendmsg to " + what, (int) -n) : new IOException("sendmsg to " + what + " sent nothing");
            }
        }
    }

    /**
     * Receives one byte and the descriptor sent with it, close-on-exec: {byte, descriptor}, the
     * descriptor -1 if none came, both -1 if the peer closed without sending anything.
     */
    static int[] receive(MemorySegment state, int socket, String what) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment one = arena.allocate(1);
            MemorySegment control = arena.allocate(CMSG_SPACE_INT, 8);
            MemorySegment msg = message(arena, one, control);
            long n;
            do {
                n = Libc.recvmsg(state, socket, msg, Libc.MSG_CMSG_CLOEXEC);
            } while (n == -Errno.EINTR);
            if (n < 0) {
                throw new ErrnoException("recvmsg from " + what, (int) -n);
            }
            if (n == 0) {
                return new int[]{-1, -1};
            }
            boolean withDescriptor = msg.get(ValueLayout.JAVA_LONG, MSG_CONTROLLEN) >= CMSG_DATA + 4
                    && control.get(ValueLayout.JAVA_INT, CMSG_LEVEL) == Libc.SOL_SOCKET
                    && control.get(ValueLayout.JAVA_INT, CMSG_TYPE) == Libc.SCM_RIGHTS;
            return new int[]{one.get(ValueLayout.JAVA_BYTE, 0) & 0xff, withDescriptor ? control.get(ValueLayout.JAVA_INT, CMSG_DATA) : -1};
        }
    }

    /** A msghdr for one byte at {@code data} and room for one descriptor in {@code control}. */
    private static MemorySegment message(Arena arena, MemorySegment data, MemorySegment control) {
        MemorySegment iov = arena.allocate(IOVEC_SIZE, 8);
        iov.set(ValueLayout.ADDRESS, 0, data);
        iov.set(ValueLayout.JAVA_LONG, 8, 1);
        MemorySegment msg = arena.allocate(MSGHDR_SIZE, 8);
        msg.set(ValueLayout.ADDRESS, MSG_IOV, iov);
        msg.set(ValueLayout.JAVA_LONG, MSG_IOVLEN, 1);
        msg.set(ValueLayout.ADDRESS, MSG_CONTROL, control);
        msg.set(ValueLayout.JAVA_LONG, MSG_CONTROLLEN, CMSG_SPACE_INT);
        return msg;
    }
}

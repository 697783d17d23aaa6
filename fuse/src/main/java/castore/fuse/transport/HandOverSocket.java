package castore.fuse.transport;

import castore.fuse.api.Errno;
import castore.fuse.sys.ErrnoException;
import castore.fuse.sys.Libc;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * The Unix socket a mount listens on for a process that takes it over ({@link FuseMount#takeOver}).
 * Its name is in the abstract namespace (nothing on disk, so nothing a crash leaves behind) and
 * derived from the mountpoint's path alone, so the new process finds it knowing only the path.
 * Anyone may connect to an abstract socket: the listener serves only a peer of its own uid, or
 * root (SO_PEERCRED), since the /dev/fuse descriptor it passes serves the whole mount.
 */
final class HandOverSocket implements AutoCloseable {
    private static final String NAME_PREFIX = "castore-fuse-hand-over/";
    private static final int SOCKADDR_UN_SIZE = 110; // sa_family_t + sun_path[108]


    private final int fd;
    private final String name;
    private volatile boolean closed;

    private HandOverSocket(int fd, String name) {
        this.fd = fd;
        this.name = name;
    }

    /** The socket's abstract name for a mountpoint (absolute, normalized). */
    static String name(Path mountpoint) {
        try {
            byte[] hash = MessageDigest.getInstance("SHA-256").digest(mountpoint.toString().getBytes(StandardCharsets.UTF_8));
            return NAME_PREFIX + HexFormat.of().formatHex(hash, 0, 16);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Listens for take-overs of the mount at {@code mountpoint}.
     *
     * @throws IOException if another process listens for that path already (EADDRINUSE), or the socket fails
     */
    static HandOverSocket listen(Path mountpoint) throws IOException {
        String name = name(mountpoint);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = Libc.newCallState(arena);
            int fd = socket(state);
            MemorySegment address = address(arena, name);
            int r = Libc.bind(state, fd, address, addressLength(name));
            if (r == 0) {
                r = Libc.listen(state, fd, 4);
            }
            if (r < 0) {
                close(fd);
                throw new ErrnoException(-r == Errno.EADDRINUSE ? "listening for a take-over of " + mountpoint
                        + " (another process listens for that path)" : "listening for a take-over of " + mountpoint, -r);
            }
            return new HandOverSocket(fd, name);
        }
    }

    /**
     * Connects to the process serving the mount at {@code mountpoint}.
     *
     * @throws IOException with a one-line reason if no process listens for that path
     */
    static Peer connect(Path mountpoint) throws IOException {
        String name = name(mountpoint);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = Libc.newCallState(arena);
            int fd = socket(state);
            int r;
            do {
                r = Libc.connect(state, fd, address(arena, name), addressLength(name));
            } while (r == -Errno.EINTR);
            if (r < 0) {
                close(fd);
                if (-r == Errno.ECONNREFUSED || -r == Errno.ENOENT) {
                    throw new IOException("no process serving a mount at " + mountpoint
                            + " accepts a take-over (is it mounted by castore mount, from the same path?)");
                }
                throw new ErrnoException("connecting to the mount at " + mountpoint, -r);
            }
            return new Peer(fd);
        }
    }

    /** Waits for the next peer; throws once {@link #close} was called. */
    Peer accept() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = Libc.newCallState(arena);
            while (true) {
                int peer = Libc.accept4(state, fd, Libc.SOCK_CLOEXEC);
                if (peer >= 0) {
                    return new Peer(peer);
                }
                if (closed) {
                    throw new IOException("the hand-over socket is closed");
                }
                if (-peer != Errno.EINTR && -peer != Errno.EAGAIN) {
                    throw new ErrnoException("accept on " + name, -peer);
                }
            }
        }
    }

    /** Stops listening: a thread in {@link #accept} returns with an exception. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            try (Arena arena = Arena.ofConfined()) {
                Libc.shutdown(Libc.newCallState(arena), fd, Libc.SHUT_RDWR); // wakes accept
            }
            close(fd);
        }
    }

    private static int socket(MemorySegment state) throws ErrnoException {
        int fd = Libc.socket(state, Libc.AF_UNIX, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC, 0);
        if (fd < 0) {
            throw new ErrnoException("socket(AF_UNIX)", -fd);
        }
        return fd;
    }

    /** struct sockaddr_un with sun_path = '\0' + name (the abstract namespace). */
    private static MemorySegment address(Arena arena, String name) {
        MemorySegment address = arena.allocate(SOCKADDR_UN_SIZE, 2);
        address.set(ValueLayout.JAVA_SHORT, 0, (short) Libc.AF_UNIX);
        byte[] bytes = name.getBytes(StandardCharsets.US_ASCII);
        MemorySegment.copy(bytes, 0, address, ValueLayout.JAVA_BYTE, 3, bytes.length);
        return address;
    }

    private static int addressLength(String name) {
        return 2 + 1 + name.length();
    }

    private static void close(int fd) {
        try (Arena arena = Arena.ofConfined()) {
            Libc.close(Libc.newCallState(arena), fd);
        }
    }

    /** One connection: bytes both ways, and a descriptor passed with SCM_RIGHTS. Blocking; platform threads only. */
    static final class Peer implements AutoCloseable {
        private final int fd;
        private final Arena arena = Arena.ofShared();
        private final MemorySegment state = Libc.newCallState(arena);
        private final MemorySegment buffer = arena.allocate(64 * 1024, 8);

        private Peer(int fd) {
            this.fd = fd;
        }

        /** The peer's uid and pid (SO_PEERCRED): {uid, pid}. */
        int[] credentials() throws IOException {
            try (Arena local = Arena.ofConfined()) {
                MemorySegment ucred = local.allocate(12, 4);
                MemorySegment length = local.allocateFrom(ValueLayout.JAVA_INT, 12);
                int r = Libc.getsockopt(state, fd, Libc.SOL_SOCKET, Libc.SO_PEERCRED, ucred, length);
                if (r < 0) {
                    throw new ErrnoException("getsockopt(SO_PEERCRED)", -r);
                }
                return new int[]{ucred.get(ValueLayout.JAVA_INT, 4), ucred.get(ValueLayout.JAVA_INT, 0)};
            }
        }

        /** Sends {@code descriptor} (none if negative) with one byte of data. */
        void sendDescriptor(int descriptor, byte data) throws IOException {
            ScmRights.send(state, fd, descriptor, data, "the hand-over peer");
        }

        /**
         * Receives one byte, and the descriptor sent with it if any (close-on-exec): {byte, fd},
         * fd -1 when none came.
         */
        int[] receiveDescriptor() throws IOException {
            int[] received = ScmRights.receive(state, fd, "the serving process");
            if (received[0] < 0) {
                throw new EOFException("the serving process closed the connection");
            }
            return received;
        }

        InputStream in() {
            return new InputStream() {
                @Override
                public int read() throws IOException {
                    byte[] one = new byte[1];
                    return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
                }

                @Override
                public int read(byte[] b, int off, int len) throws IOException {
                    if (len == 0) {
                        return 0;
                    }
                    long n;
                    do {
                        n = Libc.read(state, fd, buffer, Math.min(len, buffer.byteSize()));
                    } while (n == -Errno.EINTR);
                    if (n < 0) {
                        throw new ErrnoException("read from the hand-over socket", (int) -n);
                    }
                    if (n == 0) {
                        return -1;
                    }
                    MemorySegment.copy(buffer, ValueLayout.JAVA_BYTE, 0, b, off, (int) n);
                    return (int) n;
                }
            };
        }

        OutputStream out() {
            return new OutputStream() {
                @Override
                public void write(int b) throws IOException {
                    write(new byte[]{(byte) b}, 0, 1);
                }

                @Override
                public void write(byte[] b, int off, int len) throws IOException {
                    while (len > 0) {
                        int piece = (int) Math.min(len, buffer.byteSize());
                        MemorySegment.copy(b, off, buffer, ValueLayout.JAVA_BYTE, 0, piece);
                        long n;
                        do {
                            n = Libc.write(state, fd, buffer, piece);
                        } while (n == -Errno.EINTR);
                        if (n < 0) {
                            throw new ErrnoException("write to the hand-over socket", (int) -n);
                        }
                        off += (int) n; // a short write: the rest goes round again
                        len -= (int) n;
                    }
                }
            };
        }

        @Override
        public void close() {
            HandOverSocket.close(fd);
            arena.close();
        }
    }
}

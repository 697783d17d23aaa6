package castore.fuse.transport;

import castore.fuse.api.Errno;
import castore.fuse.sys.ErrnoException;
import castore.fuse.sys.Libc;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Mounting as an ordinary user through the setuid helper fusermount3: it opens /dev/fuse, mounts,
 * and sends the descriptor back over a Unix socket (SCM_RIGHTS) named by {@code _FUSE_COMMFD}.
 * The child is started with posix_spawnp, because ProcessBuilder closes every descriptor above 2
 * in the child and so cannot hand it the socket.
 */
final class Fusermount {
    static final String PROGRAM = "fusermount3";
    private static final int CHILD_SOCKET_FD = 3;
    private static final int STDERR = 2;


    private Fusermount() {
    }

    /** The -o options fusermount3 passes on to the kernel (it adds fd, rootmode, user_id, group_id). */
    static String options(MountOptions options) {
        StringBuilder sb = new StringBuilder("ro,nosuid,nodev,fsname=").append(options.fsName());
        if (!options.subtype().isEmpty()) {
            sb.append(",subtype=").append(options.subtype());
        }
        if (options.defaultPermissions()) {
            sb.append(",default_permissions");
        }
        if (options.allowOther()) {
            sb.append(",allow_other");
        }
        return sb.toString();
    }

    /** Mounts through fusermount3 and returns the /dev/fuse descriptor it passed back. */
    static int mount(Path mountpoint, MountOptions options) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = Libc.newCallState(arena);
            MemorySegment pair = arena.allocate(ValueLayout.JAVA_INT, 2);
            check("socketpair", Libc.socketpair(state, Libc.AF_UNIX, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC, 0, pair));
            int ours = pair.getAtIndex(ValueLayout.JAVA_INT, 0);
            int theirs = pair.getAtIndex(ValueLayout.JAVA_INT, 1);
            MemorySegment errPipe = arena.allocate(ValueLayout.JAVA_INT, 2);
            int r = Libc.pipe2(state, errPipe, Libc.O_CLOEXEC);
            if (r < 0) {
                Libc.close(state, ours);
                Libc.close(state, theirs);
                throw new ErrnoException("pipe2", -r);
            }
            int errRead = errPipe.getAtIndex(ValueLayout.JAVA_INT, 0);
            int errWrite = errPipe.getAtIndex(ValueLayout.JAVA_INT, 1);
            int pid;
            try {
                pid = Libc.spawn(List.of(PROGRAM, "-o", options(options), "--", mountpoint.toString()),
                        environment(), new int[][]{{theirs, CHILD_SOCKET_FD}, {errWrite, STDERR}});
            } catch (ErrnoException e) {
                Libc.close(state, ours);
                Libc.close(state, errRead);
                throw e.errno() == Errno.ENOENT
                        ? new IOException(PROGRAM + " not found on PATH (install the fuse3 package)", e) : e;
            } finally {
                // Only the child holds these now, so we see EOF when it exits.
                Libc.close(state, theirs);
                Libc.close(state, errWrite);
            }
            int fd = -1;
            String received = "";
            try {
                fd = receiveFd(state, ours);
            } catch (ErrnoException e) {
                received = "; " + e.getMessage(); // still reap the child and close what we hold
            } finally {
                Libc.close(state, ours);
            }
            String stderr;
            try {
                stderr = readAll(arena, state, errRead).trim();
            } finally {
                Libc.close(state, errRead);
            }
            int status = waitFor(state, arena, pid);
            if (fd < 0 || status != 0) {
                if (fd >= 0) {
                    Libc.close(state, fd);
                }
                if (status == 0) {
                    detachQuietly(mountpoint); // mounted, but its descriptor never reached us
                }
                throw new IOException(PROGRAM + " could not mount " + mountpoint + " (exit status " + status + ")"
                        + (stderr.isEmpty() ? "" : ": " + stderr) + received);
            }
            return fd;
        }
    }

    /** Detaches the mount with {@code fusermount3 -u -z}. */
    static void unmount(Path mountpoint) throws IOException {
        Process p = new ProcessBuilder(PROGRAM, "-u", "-z", "--", mountpoint.toString())
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        try {
            int status = p.waitFor();
            if (status != 0) {
                throw new IOException(PROGRAM + " -u " + mountpoint + " failed (exit status " + status + "): " + out);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while unmounting " + mountpoint, e);
        }
    }

    private static void detachQuietly(Path mountpoint) {
        try {
            unmount(mountpoint);
        } catch (IOException e) {
            // Nothing more to do: the mount error is reported; `fusermount3 -u` detaches it by hand.
        }
    }

    private static List<String> environment() {
        List<String> env = new ArrayList<>();
        for (Map.Entry<String, String> e : System.getenv().entrySet()) {
            if (!e.getKey().equals("_FUSE_COMMFD")) {
                env.add(e.getKey() + "=" + e.getValue());
            }
        }
        env.add("_FUSE_COMMFD=" + CHILD_SOCKET_FD);
        return env;
    }

    /** Receives one descriptor sent with SCM_RIGHTS; -1 if the peer closed without sending one. */
    private static int receiveFd(MemorySegment state, int socket) throws IOException {
        return ScmRights.receive(state, socket, PROGRAM)[1];
    }

    private static String readAll(Arena arena, MemorySegment state, int fd) {
        MemorySegment buf = arena.allocate(4096);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        long n;
        while ((n = Libc.read(state, fd, buf, buf.byteSize())) != 0) {
            if (n == -Errno.EINTR) {
                continue;
            }
            if (n < 0) {
                break;
            }
            out.writeBytes(buf.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE));
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    /** Waits for the child; its exit status, or 128 + signal. */
    private static int waitFor(MemorySegment state, Arena arena, int pid) throws IOException {
        MemorySegment status = arena.allocate(ValueLayout.JAVA_INT);
        int r;
        do {
            r = Libc.waitpid(state, pid, status, 0);
        } while (r == -Errno.EINTR);
        if (r < 0) {
            throw new ErrnoException("waitpid " + PROGRAM, -r);
        }
        int s = status.get(ValueLayout.JAVA_INT, 0);
        return (s & 0x7f) == 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f);
    }

    private static void check(String call, int result) throws ErrnoException {
        if (result < 0) {
            throw new ErrnoException(call, -result);
        }
    }
}

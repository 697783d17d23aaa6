package castore.fuse.transport;

import castore.fuse.api.FileSystem;
import castore.fuse.api.InitInfo;
import castore.fuse.server.FuseServer;
import castore.fuse.sys.ErrnoException;
import castore.fuse.sys.Libc;
import sun.misc.Signal;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A mounted FUSE filesystem served from /dev/fuse by reader threads. {@link #close()} unmounts and
 * waits for the threads; {@link #awaitUnmount()} blocks until the mount goes away (close, an outside
 * {@code umount}/{@code fusermount3 -u}, or a signal after {@link #unmountOnSignals()}).
 *
 * <p>Unmounting never touches the mountpoint's files (a stat of the mount from a thread the
 * daemon needs would deadlock): it is one umount2(MNT_DETACH) call, or {@code fusermount3 -u -z}
 * for a mount made by fusermount3. A shutdown hook does the same if the JVM exits while mounted.
 * If the process dies without unmounting, the mountpoint answers ENOTCONN until detached with
 * {@code umount -l MOUNTPOINT} (root) or {@code fusermount3 -u -z MOUNTPOINT}.
 */
public final class FuseMount implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("castore.fuse");
    /** How long close() waits for the kernel to end the connection after detaching. */
    private static final long CLOSE_WAIT_MILLIS = 10_000;
    /** How long mount() waits for the kernel's INIT to be answered. */
    private static final long INIT_WAIT_MILLIS = 30_000;

    private final Path mountpoint;
    private final boolean viaFusermount;
    private final FuseServer server;
    private final Session session;
    private final AtomicBoolean unmountRequested = new AtomicBoolean();
    /** SIGINT and SIGTERM received (see {@link #unmountOnSignals}). */
    private final AtomicInteger signals = new AtomicInteger();
    private final Thread shutdownHook;

    private FuseMount(Path mountpoint, boolean viaFusermount, FuseServer server, Session session) {
        this.mountpoint = mountpoint;
        this.viaFusermount = viaFusermount;
        this.server = server;
        this.session = session;
        this.shutdownHook = new Thread(this::unmountQuietly, "fuse-unmount-at-exit");
    }

    /**
     * Mounts {@code fs} read-only (ro, nosuid, nodev) on {@code mountpoint} and starts serving it.
     * Returns once the kernel's INIT is answered and {@link FileSystem#init} has run.
     *
     * @throws IOException with a one-line reason: no such directory, not a directory, a stale
     *                     mount, no /dev/fuse, no permission, fusermount3 missing or refusing
     */
    public static FuseMount mount(Path mountpoint, FileSystem fs, MountOptions options) throws IOException {
        Path mp = mountpoint.toAbsolutePath().normalize();
        checkMountpoint(mp);
        if (fs.checksPermissions()) {
            options = options.withDefaultPermissions(false);
        }
        boolean viaFusermount = switch (options.method()) {
            case AUTO -> Libc.geteuid() != 0;
            case SYSCALL -> false;
            case FUSERMOUNT -> true;
        };
        int pageSize = Libc.pageSize();
        if (options.maxWrite() % pageSize != 0) {
            throw new IllegalArgumentException("maxWrite " + options.maxWrite() + " is not a multiple of the page size "
                    + pageSize);
        }
        FuseServer server = new FuseServer(fs, new FuseServer.Config(options.maxWrite(), pageSize,
                options.maxBackground(), options.debug()), Session.newBufferPool(options.maxWrite()));
        int fd = viaFusermount ? Fusermount.mount(mp, options) : SyscallMount.mount(mp, options);
        Session session;
        try {
            session = Session.start(fd, server, options, "fuse-" + mp.getFileName());
        } catch (IOException | RuntimeException e) {
            try {
                unmount(mp, viaFusermount);
            } catch (IOException unmountFailure) {
                e.addSuppressed(unmountFailure);
            }
            throw e;
        }
        FuseMount mount = new FuseMount(mp, viaFusermount, server, session);
        Runtime.getRuntime().addShutdownHook(mount.shutdownHook);
        mount.awaitInit();
        return mount;
    }

    /**
     * The kernel queues INIT as it mounts and a reader answers it at once; wait for that so a
     * refused INIT fails the mount here rather than every later access.
     */
    private void awaitInit() throws IOException {
        try {
            server.initialized().get(INIT_WAIT_MILLIS, TimeUnit.MILLISECONDS);
        } catch (ExecutionException | TimeoutException e) {
            throw closeAfter(new IOException("mounting " + mountpoint + " failed: "
                    + (e instanceof TimeoutException ? "the kernel sent no INIT" : e.getCause().getMessage())));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw closeAfter(new InterruptedIOException("interrupted while mounting " + mountpoint));
        }
    }

    private IOException closeAfter(IOException failure) {
        try {
            close();
        } catch (RuntimeException e) {
            failure.addSuppressed(e);
        }
        return failure;
    }

    private static void checkMountpoint(Path mp) throws IOException {
        BasicFileAttributes attrs;
        try {
            attrs = Files.readAttributes(mp, BasicFileAttributes.class);
        } catch (NoSuchFileException e) {
            throw new IOException("mountpoint " + mp + " does not exist");
        } catch (IOException e) {
            throw new IOException("mountpoint " + mp + " is not accessible: " + e.getMessage()
                    + " (a stale FUSE mount? detach it with: umount -l " + mp + "  or  fusermount3 -u -z " + mp + ")");
        }
        if (!attrs.isDirectory()) {
            throw new IOException("mountpoint " + mp + " is not a directory");
        }
    }

    private static void unmount(Path mp, boolean viaFusermount) throws IOException {
        if (viaFusermount) {
            Fusermount.unmount(mp);
        } else {
            SyscallMount.unmount(mp);
        }
    }

    public Path mountpoint() {
        return mountpoint;
    }

    /** What INIT negotiated (answered before {@link #mount} returns). */
    public InitInfo initInfo() {
        return server.initInfo();
    }

    /** How many requests the kernel has sent this mount so far. */
    public long requestsReceived() {
        return server.requestsReceived();
    }

    /**
     * Sends the filesystem one request through the kernel and waits for its answer: a statfs(2)
     * of the mountpoint, which the kernel never answers from a cache (one STATFS request, served
     * by {@link FileSystem#statfs} like any other). For warming up this transport's own code
     * (reading requests, writing replies), which only the kernel can drive. Never call it from a
     * thread the mount needs to answer it.
     *
     * @throws IOException if statfs fails (ENOTCONN: the connection is gone)
     */
    public void roundTrip() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            int r = Libc.statfs(Libc.newCallState(arena), arena.allocateFrom(mountpoint.toString()),
                    arena.allocate(Libc.STATFS_SIZE, 8));
            if (r < 0) {
                throw new ErrnoException("statfs " + mountpoint, -r);
            }
        }
    }

    /** How often a reader stuck on a quick request lost the turn to another: for tests. */
    long turnBypasses() {
        return session.bypasses.sum();
    }

    /** The server, for tests that look at protocol counters. */
    FuseServer server() {
        return server;
    }

    /** Whether the mount is gone and every reader has stopped. */
    public boolean isUnmounted() {
        return session.isTerminated();
    }

    /** Blocks until the filesystem is unmounted and every reader has stopped. */
    public void awaitUnmount() throws InterruptedException {
        session.awaitTermination();
    }

    /**
     * On SIGINT or SIGTERM, unmount (from a thread of its own) instead of dying: a thread blocked in
     * {@link #awaitUnmount()} returns and the program can exit 0. Replaces the JVM's handlers for
     * these two signals (so shutdown hooks no longer run for them); call it once, for one mount.
     *
     * <p>A mount that files are still open on (or a working directory is in) is detached by the
     * first signal but stays alive in the kernel, serving them, until they close: a second signal
     * then ends the process at once (exit status 128 + the signal's number), and those files get
     * ENOTCONN. Before, every later signal was ignored and only SIGKILL stopped such a mount.
     */
    public FuseMount unmountOnSignals() {
        for (String name : new String[]{"INT", "TERM"}) {
            Signal.handle(new Signal(name), this::onSignal);
        }
        return this;
    }

    private void onSignal(Signal signal) {
        if (signals.incrementAndGet() == 1 || !unmountRequested.get()) {
            requestUnmount(); // the first, or a retry of an unmount that failed
            return;
        }
        LOG.log(System.Logger.Level.WARNING, "SIG{0} again: stopping now; files still open on {1} get ENOTCONN",
                signal.getName(), mountpoint);
        Runtime.getRuntime().halt(128 + signal.getNumber());
    }

    /**
     * Starts the unmount and returns at once, without waiting for the readers: safe from a
     * signal handler or a shutdown hook. Only the first call that succeeds does anything: after
     * a failed one (fusermount3 refused, say) the next call tries again.
     */
    public void requestUnmount() {
        if (unmountRequested.compareAndSet(false, true) && !session.isTerminated()) {
            try {
                unmount(mountpoint, viaFusermount);
            } catch (IOException e) {
                // Already gone (unmounted from outside) is fine; anything else is worth a line.
                if (!session.isTerminated()) {
                    LOG.log(System.Logger.Level.WARNING, "unmounting {0} failed: {1}", mountpoint, e.getMessage());
                    unmountRequested.set(false);
                }
            }
        }
    }

    private void unmountQuietly() {
        try {
            requestUnmount();
        } catch (RuntimeException e) {
            // In a shutdown hook: nothing left to tell.
        }
    }

    /**
     * Unmounts (lazily, never touching the mountpoint's files), stops the readers and waits for
     * them, then the filesystem's {@code destroy()} has run. If files on the mount are still
     * open, the kernel keeps the detached mount alive and this returns after a grace period while
     * the readers go on serving those files.
     *
     * @throws UncheckedIOException if a reader stopped for another reason than unmounting
     */
    @Override
    public void close() {
        requestUnmount();
        try {
            if (!session.awaitTermination(CLOSE_WAIT_MILLIS)) {
                LOG.log(System.Logger.Level.WARNING, "{0} is detached but still in use; serving it until those files close",
                        mountpoint);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (IllegalStateException shuttingDown) {
            // The hook is running or has run: fine.
        }
        Throwable failure = session.failure();
        if (failure != null) {
            throw new UncheckedIOException(failure instanceof IOException io ? io : new IOException(failure));
        }
    }
}

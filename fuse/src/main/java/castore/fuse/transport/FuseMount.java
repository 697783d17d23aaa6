package castore.fuse.transport;

import castore.fuse.api.FileSystem;
import castore.fuse.api.InitInfo;
import castore.fuse.server.FuseServer;
import castore.fuse.sys.ErrnoException;
import castore.fuse.sys.Libc;
import sun.misc.Signal;

import java.io.DataInputStream;
import java.io.DataOutputStream;
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
import java.util.concurrent.atomic.AtomicLong;

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
    /** A SIGINT or SIGTERM this soon after the first is the same request delivered twice. */
    private static final long SAME_SIGNAL_NANOS = 250_000_000L;
    /** How long mount() waits for the kernel's INIT to be answered. */
    private static final long INIT_WAIT_MILLIS = 30_000;
    /** How long a hand-over waits for the readers to stop, and then for requests in flight to end. */
    private static final long HAND_OVER_WAIT_MILLIS = 10_000;
    private static final long HAND_OVER_MAGIC = 0x43415354_4f564552L; // "CASTOVER"
    private static final int HAND_OVER_VERSION = 1;
    private static final byte READY = 'K';
    private static final byte REFUSED = 'E';

    private final Path mountpoint;
    private final boolean viaFusermount;
    private final FuseServer server;
    private final Session session;
    private final AtomicBoolean unmountRequested = new AtomicBoolean();
    /** When the first SIGINT or SIGTERM came (System.nanoTime; 0: none yet; see {@link #unmountOnSignals}). */
    private final AtomicLong firstSignalNanos = new AtomicLong();
    private final Thread shutdownHook;
    /** Listens for a process that takes this mount over (see {@link #acceptTakeOvers}); null: not listening. */
    private volatile HandOverSocket handOverSocket;
    /**
     * The take-over socket {@link #mount} bound before mounting, which {@link #acceptTakeOvers}
     * then listens on; null once taken, or if it could not be bound for another reason than a
     * process serving the path.
     */
    private volatile HandOverSocket reservedSocket;
    /** The pid of the process this mount was handed to; 0 while this process serves it. */
    private volatile int handedTo;
    /** The pid of the process this mount was taken over from; 0 if this process mounted it. */
    private volatile int takenFrom;
    /** How long the hand-over kept requests waiting: from pausing the readers to the new process's answer. */
    private volatile long handOverPauseNanos;

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
     * @throws MountpointServedException if another process serves a mount at that path (see
     *                     {@link #acceptTakeOvers}): mounting over it would hide that mount
     *                     under a second one on the same path
     * @throws IOException with a one-line reason: no such directory, not a directory, a stale
     *                     mount, no /dev/fuse, no permission, fusermount3 missing or refusing
     */
    public static FuseMount mount(Path mountpoint, FileSystem fs, MountOptions options) throws IOException {
        Path mp = mountpoint.toAbsolutePath().normalize();
        checkMountpoint(mp);
        HandOverSocket reserved = reserveHandOverSocket(mp);
        try {
            FuseMount mount = mountChecked(mp, fs, options);
            mount.reservedSocket = reserved;
            return mount;
        } catch (IOException | RuntimeException e) {
            if (reserved != null) {
                reserved.close();
            }
            throw e;
        }
    }

    /**
     * Binds the take-over socket of {@code mp} before mounting: a process already bound to it
     * serves a mount there (its socket lives as long as it does), and two mounts started at once
     * cannot both pass. That process may also serve a mount detached from the path (unmounted
     * while files on it were open), which leaves the path free: so the mount is refused only if
     * {@code mp} is a mount's root now. Null if the socket is not bound here: the mount goes on,
     * and {@link #acceptTakeOvers} reports it.
     */
    private static HandOverSocket reserveHandOverSocket(Path mp) throws MountpointServedException {
        try {
            return HandOverSocket.listen(mp);
        } catch (ErrnoException e) {
            if (e.errno() == castore.fuse.api.Errno.EADDRINUSE && isMountRoot(mp)) {
                throw new MountpointServedException(mp);
            }
            return null;
        } catch (IOException e) {
            return null;
        }
    }

    /** Whether {@code mp} is the root of a mount: on another device than its parent (or not known). */
    private static boolean isMountRoot(Path mp) {
        Path parent = mp.getParent();
        try {
            return parent == null || !Files.getAttribute(mp, "unix:dev").equals(Files.getAttribute(parent, "unix:dev"));
        } catch (IOException | RuntimeException e) {
            return true;
        }
    }

    private static FuseMount mountChecked(Path mp, FileSystem fs, MountOptions options) throws IOException {
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
     * Takes over the mount at {@code mountpoint} from the process serving it (which must have
     * called {@link #acceptTakeOvers}): receives its /dev/fuse descriptor, what INIT negotiated
     * and {@code fs}'s state (see {@link FileSystem#handOverState}), and serves from then on;
     * that process then ends without unmounting. Requests that arrive meanwhile wait in the
     * kernel. If this fails before serving, the other process goes on serving.
     *
     * @throws IOException with a one-line reason: nothing serves that path, the other process
     *                     refused (another user, a filesystem that cannot be handed over, requests
     *                     that did not end), or {@code fs} could not take the state
     */
    public static FuseMount takeOver(Path mountpoint, FileSystem fs, MountOptions options) throws IOException {
        Path mp = mountpoint.toAbsolutePath().normalize();
        try (HandOverSocket.Peer peer = HandOverSocket.connect(mp)) {
            DataOutputStream out = new DataOutputStream(peer.out());
            try {
                out.writeLong(HAND_OVER_MAGIC);
                out.writeInt(HAND_OVER_VERSION);
                out.writeInt((int) ProcessHandle.current().pid());
                out.flush();
            } catch (IOException refusedFirst) {
                // The other process may answer and close before reading (another user): its answer says why.
            }
            int[] first = peer.receiveDescriptor();
            DataInputStream in = new DataInputStream(peer.in());
            if (first[0] != READY || first[1] < 0) {
                if (first[1] >= 0) {
                    DevFuse.close(first[1]);
                }
                String reason = first[0] == REFUSED ? in.readUTF() : "it answered with no descriptor";
                throw new IOException("taking over " + mp + " failed: " + reason);
            }
            int fd = first[1];
            try {
                InitInfo info = new InitInfo(in.readInt(), in.readInt(), in.readLong(), in.readLong(), in.readInt(), in.readInt());
                boolean viaFusermount = in.readBoolean();
                int pid = in.readInt();
                byte[] state = new byte[in.readInt()];
                in.readFully(state);
                // The kernel's max_write is the first process's: requests are read into buffers that size.
                MountOptions adopted = options.withMaxWrite(info.maxWrite());
                FuseServer server = new FuseServer(fs, new FuseServer.Config(info.maxWrite(), Libc.pageSize(),
                        adopted.maxBackground(), adopted.debug()), Session.newBufferPool(info.maxWrite()));
                try {
                    server.adopt(info, Session.channel(fd), state);
                } catch (IOException | RuntimeException e) {
                    out.writeByte(REFUSED);
                    out.writeUTF("the new process could not take the state: " + e.getMessage());
                    out.flush();
                    server.close(0); // ends the page-cache pusher's thread too
                    throw new IOException("taking over " + mp + " failed: " + e.getMessage(), e);
                }
                out.writeByte(READY);
                out.flush();
                // The other process now closes its descriptors and exits; the connection lives on in ours.
                Session session = Session.start(fd, server, adopted, "fuse-" + mp.getFileName());
                FuseMount mount = new FuseMount(mp, viaFusermount, server, session);
                mount.takenFrom = pid;
                Runtime.getRuntime().addShutdownHook(mount.shutdownHook);
                return mount;
            } catch (IOException | RuntimeException e) {
                DevFuse.close(fd);
                throw e;
            }
        }
    }

    /**
     * Lets another process take this mount over ({@link #takeOver}): listens on a Unix socket
     * named after the mountpoint, from a thread of its own, until the mount ends. A hand-over
     * pauses this mount's readers, waits for the requests in flight, passes the descriptor and
     * the filesystem's state, and once the new process says it serves, ends this session without
     * unmounting ({@link #awaitUnmount} returns and {@link #handedTo} gives that process's pid).
     * Only a process of this one's user, or root, may take over.
     *
     * @throws IOException if the socket cannot listen (another process listens for this path)
     */
    public FuseMount acceptTakeOvers() throws IOException {
        HandOverSocket socket = reservedSocket;
        reservedSocket = null;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (socket == null) {
            try {
                socket = HandOverSocket.listen(mountpoint);
            } catch (ErrnoException e) {
                // Taken over: the process before closes its socket once this one serves, a moment later.
                if (takenFrom == 0 || e.errno() != castore.fuse.api.Errno.EADDRINUSE || System.nanoTime() - deadline > 0) {
                    throw e;
                }
                try {
                    Thread.sleep(20);
                } catch (InterruptedException interrupted) {
                    Thread.currentThread().interrupt();
                    throw new java.io.InterruptedIOException("interrupted while listening for take-overs");
                }
            }
        }
        handOverSocket = socket;
        HandOverSocket listening = socket;
        Thread.ofPlatform().daemon(true).name("fuse-hand-over").start(() -> {
            while (!session.isTerminated() && handedTo == 0) {
                try (HandOverSocket.Peer peer = listening.accept()) {
                    handOver(peer);
                } catch (IOException e) {
                    if (listening != handOverSocket || session.isTerminated()) {
                        return; // closed
                    }
                    LOG.log(System.Logger.Level.WARNING, "a take-over of {0} failed: {1}", mountpoint, e.getMessage());
                }
            }
        });
        return this;
    }

    /** The pid of the process this mount was taken over from ({@link #takeOver}); 0 if this one mounted it. */
    public int takenFrom() {
        return takenFrom;
    }

    /** The pid of the process this mount was handed over to; 0 if it was not. */
    public int handedTo() {
        return handedTo;
    }

    /** How long the hand-over kept requests waiting (this process stopped, the new one not yet serving). */
    public java.time.Duration handOverPause() {
        return java.time.Duration.ofNanos(handOverPauseNanos);
    }

    private void handOver(HandOverSocket.Peer peer) throws IOException {
        int[] credentials = peer.credentials();
        DataInputStream in = new DataInputStream(peer.in());
        DataOutputStream out = new DataOutputStream(peer.out());
        // Before reading anything: another user's peer gets its answer and nothing it sends is waited for.
        if (credentials[0] != Libc.geteuid() && credentials[0] != 0) {
            refuse(peer, out, "uid " + credentials[0] + " may not take over a mount of uid " + Libc.geteuid());
            return;
        }
        if (in.readLong() != HAND_OVER_MAGIC) {
            return; // not ours: say nothing
        }
        int version = in.readInt();
        int pid = in.readInt();
        if (version != HAND_OVER_VERSION) {
            refuse(peer, out, "hand-over version " + version + " asked, this process speaks " + HAND_OVER_VERSION);
            return;
        }
        if (unmountRequested.get()) {
            refuse(peer, out, "the mount is being unmounted");
            return;
        }
        boolean paused;
        long pausedAt = System.nanoTime();
        try {
            paused = session.pause(this::wakeQuietly, HAND_OVER_WAIT_MILLIS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            paused = false;
        }
        if (!paused) {
            refuse(peer, out, "its readers did not stop within " + HAND_OVER_WAIT_MILLIS + " ms");
            return;
        }
        boolean done = false;
        try {
            byte[] state;
            try {
                state = server.pauseForHandOver(HAND_OVER_WAIT_MILLIS);
            } catch (IOException e) {
                refuse(peer, out, e.getMessage());
                return;
            }
            InitInfo info = server.initInfo();
            peer.sendDescriptor(session.masterFd(), READY);
            out.writeInt(info.major());
            out.writeInt(info.minor());
            out.writeLong(info.kernelFlags());
            out.writeLong(info.negotiatedFlags());
            out.writeInt(info.maxReadahead());
            out.writeInt(info.maxWrite());
            out.writeBoolean(viaFusermount);
            out.writeInt((int) ProcessHandle.current().pid());
            out.writeInt(state.length);
            out.write(state);
            out.flush();
            int answer = in.read();
            if (answer != READY) {
                String reason = answer == REFUSED ? in.readUTF() : "it closed the connection";
                LOG.log(System.Logger.Level.WARNING, "pid {0} did not take over {1} ({2}); serving it again", pid, mountpoint, reason);
                return;
            }
            handOverPauseNanos = System.nanoTime() - pausedAt;
            done = true;
        } finally {
            if (!done) {
                server.resumeAfterHandOver();
                session.resume();
            }
        }
        handedTo = pid;
        session.endHandedOver();
        try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (IllegalStateException shuttingDown) {
            // the hook finds the session ended and does nothing
        }
        stopAcceptingTakeOvers();
    }

    private void stopAcceptingTakeOvers() {
        for (HandOverSocket socket : new HandOverSocket[]{handOverSocket, reservedSocket}) {
            if (socket != null) {
                socket.close();
            }
        }
        handOverSocket = null;
        reservedSocket = null;
    }

    private static void refuse(HandOverSocket.Peer peer, DataOutputStream out, String reason) throws IOException {
        peer.sendDescriptor(-1, REFUSED);
        out.writeUTF(reason);
        out.flush();
    }

    /** A request through the kernel, so that the reader waiting in read(2) gets one and notices the pause. */
    private void wakeQuietly() {
        try {
            roundTrip();
        } catch (IOException e) {
            // the mount is going away: the readers see that themselves
        }
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
     * ENOTCONN. A signal within a quarter second of the first is taken for the same one sent
     * twice (as timeout(1) does) and changes nothing.
     */
    public FuseMount unmountOnSignals() {
        for (String name : new String[]{"INT", "TERM"}) {
            Signal.handle(new Signal(name), this::onSignal);
        }
        return this;
    }

    private void onSignal(Signal signal) {
        long now = System.nanoTime();
        boolean first = firstSignalNanos.compareAndSet(0, now);
        if (first || !unmountRequested.get()) {
            requestUnmount(); // the first, or a retry of an unmount that failed
            return;
        }
        if (now - firstSignalNanos.get() < SAME_SIGNAL_NANOS) {
            // One stop sent twice: timeout(1) signals the process and then its whole group, a
            // shell may pass Ctrl-C on. Halting here would leave a mount that no open file keeps
            // alive not connected, its unmount still under way.
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
        if (handedTo != 0) {
            return; // the mount is another process's now
        }
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
        stopAcceptingTakeOvers();
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

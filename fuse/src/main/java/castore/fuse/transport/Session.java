package castore.fuse.transport;

import castore.fuse.api.BackingFiles;
import castore.fuse.api.Errno;
import castore.fuse.server.BufferPool;
import castore.fuse.server.Channel;
import castore.fuse.server.FuseServer;
import castore.fuse.server.ReadTurn;
import castore.fuse.server.ReplyBuffer;
import castore.fuse.sys.Libc;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.LockSupport;

/**
 * The serving side of one mount: a reader platform thread per /dev/fuse channel (the mount's own
 * fd plus clones), each with one reusable request buffer and reply buffer. Only the reader holding
 * the turn ({@link ReadTurn}) waits in read(2); the others wait for the turn. With every reader in
 * read(2), each request woke the reader that had waited longest while the one that had just
 * replied was about to read again, so a run of quick requests from one process cost half a
 * context switch more each than it does now that the replying reader takes the next one itself.
 * A request is read into native memory (read(2) blocks, so it must be a normal downcall, which cannot take a heap array)
 * and copied in one piece to a heap array to be decoded; replies are encoded on the heap and
 * written from there by a critical write(2) (docs/fuse.md, "Codecs"). When every
 * reader has seen ENODEV (unmounted), the last one ends the server and closes the descriptors:
 * only then, so a late reply from a virtual thread can never hit a reused descriptor number.
 */
final class Session {
    private static final System.Logger LOG = System.getLogger("castore.fuse");
    private static final int ALIGNMENT = 4096;
    /** How long a reader may serve a request with the turn before a waiting reader takes over. */
    private static final long STUCK_NANOS = TimeUnit.MILLISECONDS.toNanos(20);
    /** The watch sleeps after this long without requests, until the next one wakes it. */
    private static final long IDLE_NANOS = TimeUnit.SECONDS.toNanos(1);

    private final FuseServer server;
    private final List<Integer> fds = new ArrayList<>();
    private final AtomicInteger liveReaders = new AtomicInteger();
    /** The turn to read: one permit, held by the reader in (or about to enter) read(2). Not fair: the reader that just replied takes it back before a waiting one wakes. */
    private final Semaphore turn = new Semaphore(1);
    /** Whether this process may run on more than one CPU (read once, at start: taskset, cpusets). */
    private final boolean severalCpus = CpuSet.allowedCpus() > 1;
    private final List<Reader> readers = new CopyOnWriteArrayList<>();
    /** Gives the turn to a waiting reader when its holder is stuck on a request (see {@link #watchTurn}). */
    private volatile Thread turnWatch;
    private volatile boolean turnWatchParked;
    /** Holders bypassed by {@link #watchTurn} so far: tests that count serving threads need a round with none. */
    final LongAdder bypasses = new LongAdder();
    /** When the latest request started being served with the turn (System.nanoTime). */
    private volatile long lastRequest;
    private volatile boolean ended;
    private final CountDownLatch terminated = new CountDownLatch(1);
    private final int readBufferSize;
    private final int replyBufferSize;
    private final String name;
    private volatile Throwable failure;
    /** A hand-over under way: readers stop taking requests and wait (see {@link #pause}). */
    private volatile boolean paused;
    /** The hand-over is done: waiting readers end, leaving the connection to the new process. */
    private volatile boolean handedOver;
    /** Guards {@link #pausedReaders}; readers wait on it while paused. */
    private final Object pauseLock = new Object();
    private int pausedReaders;

    private Session(FuseServer server, int readBufferSize, int replyBufferSize, String name) {
        this.server = server;
        this.readBufferSize = readBufferSize;
        this.replyBufferSize = replyBufferSize;
        this.name = name;
    }

    /**
     * Starts serving the mounted connection {@code master}: its reader at once (the kernel's
     * INIT is waiting), then {@code threads - 1} readers on clones. On failure the caller still
     * owns the mount and must unmount it; the descriptors are closed once the readers stop.
     */
    static Session start(int master, FuseServer server, MountOptions options, String name) throws IOException {
        Session session = new Session(server, FuseServer.readBufferSize(options.maxWrite()),
                FuseServer.replyBufferSize(options.maxWrite()), name);
        // start's own hold on the session: an unmount before the clones exist must not let the
        // first reader end it and close the master descriptor, whose number the clones are made from.
        session.liveReaders.incrementAndGet();
        try {
            session.startReader(master, 0);
            for (int i = 1; i < options.threads(); i++) {
                session.startReader(DevFuse.cloneOf(master), i);
            }
        } finally {
            if (session.liveReaders.decrementAndGet() == 0) {
                session.end();
            }
        }
        return session;
    }

    static BufferPool newBufferPool(int maxWrite) {
        int size = FuseServer.replyBufferSize(maxWrite);
        return new BufferPool(() -> new ReplyBuffer(new byte[size], Libc.newCallState(Arena.ofAuto())));
    }

    private void startReader(int fd, int index) {
        synchronized (fds) {
            fds.add(fd);
        }
        liveReaders.incrementAndGet();
        Reader reader = new Reader();
        readers.add(reader);
        Thread.ofPlatform().name(name + "-reader-" + index).daemon(true).start(() -> read(fd, reader));
        if (index == 1) {
            turnWatch = Thread.ofPlatform().name(name + "-turn-watch").daemon(true).start(this::watchTurn);
        }
    }

    /**
     * A request the filesystem called quick ({@code mayBlock} false) may still block: a disk that
     * stalls, a fetch slower than the latency history said. Its reader holds the turn meanwhile,
     * so every other request would wait for it. This watch looks every 10 ms while requests come
     * in (sleeping when the mount is idle, woken by the next request): a holder serving one
     * request for more than 20 ms is bypassed, the turn goes to a waiting reader, and the bypassed
     * one gives up its own claim when it is done, so one reader reads again.
     */
    private void watchTurn() {
        while (!ended) {
            long now = System.nanoTime();
            for (Reader r : readers) {
                if (turn.hasQueuedThreads() && r.bypassIfStuck(now - STUCK_NANOS)) {
                    bypasses.increment();
                    turn.release();
                }
            }
            if (now - lastRequest > IDLE_NANOS) {
                turnWatchParked = true;
                if (now - lastRequest > IDLE_NANOS && !ended) {
                    LockSupport.park(this);
                }
                turnWatchParked = false;
            } else {
                LockSupport.parkNanos(this, STUCK_NANOS / 2);
            }
        }
    }

    /** One reader's hold on the turn: passed while it serves a request that may take long. */
    private final class Reader implements ReadTurn {
        private static final int IDLE = 0;
        private static final int SERVING = 1;
        private static final int BYPASSED = 2;

        private boolean holding;
        /**
         * SERVING while it serves a request holding the turn; BYPASSED once the watch has given
         * that turn to another reader (then this one no longer owns it). Moves SERVING -> IDLE
         * (this reader) or SERVING -> BYPASSED (the watch), so the turn is released exactly once.
         */
        private final AtomicInteger state = new AtomicInteger(IDLE);
        /** When it started serving the current request. */
        volatile long servingSince;

        void take() {
            if (!holding) {
                turn.acquireUninterruptibly();
                holding = true;
            }
        }

        /** Releases the turn if this reader still owns it. */
        void giveUp() {
            boolean owned = holding && state.getAndSet(IDLE) != BYPASSED;
            holding = false;
            if (owned) {
                turn.release();
            }
        }

        void startServing() {
            long now = System.nanoTime();
            servingSince = now;
            lastRequest = now;
            state.set(SERVING);
            if (turnWatchParked) {
                LockSupport.unpark(turnWatch);
            }
        }

        void doneServing() {
            if (state.getAndSet(IDLE) == BYPASSED) {
                holding = false; // the watch gave this reader's turn to the one that took over
            }
        }

        /** The watch's side: true if the turn was taken from this reader, stuck since before {@code limit}. */
        boolean bypassIfStuck(long limit) {
            return servingSince - limit < 0 && state.compareAndSet(SERVING, BYPASSED);
        }

        @Override
        public boolean pass() {
            // Only a reader waiting for the turn can take it: one serving a request is not free.
            if (!holding || !turn.hasQueuedThreads()) {
                return false;
            }
            giveUp();
            return true;
        }

        @Override
        public boolean passForWork() {
            return severalCpus && pass();
        }
    }

    private void read(int fd, Reader reader) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = Libc.newCallState(arena);
            var buffers = new ReaderBuffers(arena.allocate(readBufferSize, ALIGNMENT), new byte[readBufferSize], state,
                    new ReplyBuffer(new byte[replyBufferSize], state), new DeviceChannel(fd));
            // One request per call: the JIT compiles a loop that never returns only on the stack
            // (OSR), after about 60,000 turns under C1, so a fresh mount's first walk ran this
            // loop's body in the interpreter; serveNext is compiled after a few hundred calls
            // (the warm-up's round trips make them).
            while (serveNext(fd, reader, buffers)) {
                // next request
            }
        } catch (Throwable t) {
            LOG.log(System.Logger.Level.ERROR, "FUSE reader failed", t);
            failure = t;
        } finally {
            reader.giveUp();
            if (liveReaders.decrementAndGet() == 0) {
                end();
            }
        }
    }

    /** A reader's own buffers: the native one read(2) fills, its heap copy, errno, the reply. */
    private record ReaderBuffers(MemorySegment in, byte[] request, MemorySegment state, ReplyBuffer reply, Channel channel) {
    }

    /** Takes the turn, reads one request and serves it; false when this reader ends. */
    private boolean serveNext(int fd, Reader reader, ReaderBuffers b) throws InterruptedException {
        reader.take();
        if (paused) {
            reader.giveUp();
            return waitWhilePaused(); // false: handed over, the new process reads from here on
        }
        long n = Libc.readOrMinusOne(fd, b.in(), readBufferSize);
        if (n < 0) {
            // Failed: read again with errno captured. After a passing failure (a request
            // interrupted before it was read, a signal) that read waits for the next request;
            // ENODEV (unmounted) and the other failures repeat, and say which they are.
            n = Libc.read(b.state(), fd, b.in(), readBufferSize);
        }
        if (n >= 0) {
            MemorySegment.copy(b.in(), ValueLayout.JAVA_BYTE, 0, b.request(), 0, (int) n);
            reader.startServing();
            try {
                server.handle(b.request(), (int) n, b.channel(), b.reply(), reader);
            } finally {
                reader.doneServing();
            }
            return true;
        }
        if (n == -Errno.ENODEV) {
            return false; // unmounted: the normal end (the next reader sees it in turn)
        }
        if (n != -Errno.EINTR && n != -Errno.EAGAIN && n != -Errno.ENOENT) {
            // ENOENT: the request was interrupted before we read it; EINTR/EAGAIN: try again.
            LOG.log(System.Logger.Level.ERROR, "reading /dev/fuse failed: {0}; this reader stops", Errno.name((int) -n));
            failure = new IOException("reading /dev/fuse: " + Errno.name((int) -n));
            return false;
        }
        return true;
    }

    /** Waits while paused; false once the mount was handed over (the reader then ends). */
    private boolean waitWhilePaused() throws InterruptedException {
        synchronized (pauseLock) {
            pausedReaders++;
            pauseLock.notifyAll();
            try {
                while (paused && !handedOver) {
                    pauseLock.wait();
                }
            } finally {
                pausedReaders--;
            }
            return !handedOver;
        }
    }

    /**
     * Stops every reader from taking requests, for a hand-over: each reader finishes what it
     * serves and waits. The one waiting in read(2) only notices once it has read a request, so
     * {@code wake} is run (on a thread of its own, one at a time) to send one through the kernel
     * until every reader waits. Requests the kernel queues meanwhile stay queued for whoever
     * reads next. False (and nothing paused) if that took longer than {@code timeoutMillis}.
     */
    boolean pause(Runnable wake, long timeoutMillis) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        Thread waking = null;
        synchronized (pauseLock) {
            paused = true;
            while (pausedReaders < liveReaders.get()) {
                if (System.nanoTime() - deadline > 0 || ended) {
                    paused = false;
                    pauseLock.notifyAll();
                    return false;
                }
                if (waking == null || !waking.isAlive()) {
                    // A platform thread: the wake-up blocks in a system call until a reader answers it.
                    waking = Thread.ofPlatform().daemon(true).name(name + "-hand-over-wake").start(wake);
                }
                pauseLock.wait(10);
            }
            return true;
        }
    }

    /** Lets paused readers take requests again (a hand-over that failed). */
    void resume() {
        synchronized (pauseLock) {
            paused = false;
            pauseLock.notifyAll();
        }
    }

    /**
     * Ends a paused session without unmounting: the readers stop, the server closes, and this
     * process's descriptors close (the connection lives on in the process it was handed to).
     */
    void endHandedOver() {
        synchronized (pauseLock) {
            handedOver = true;
            pauseLock.notifyAll();
        }
    }

    /** The descriptor the mount was made with (the one INIT came on). */
    int masterFd() {
        synchronized (fds) {
            return fds.getFirst();
        }
    }

    /** A channel for replies and notifications on {@code fd}. */
    static Channel channel(int fd) {
        return new DeviceChannel(fd);
    }

    /** Replies and notifications on one /dev/fuse descriptor; a short write is EIO. */
    private record DeviceChannel(int fd) implements Channel {
        @Override
        public int write(ReplyBuffer buffer, int length) {
            return result(Libc.writeCritical(buffer.callState(), fd, buffer.segment(), length), length);
        }

        @Override
        public int notify(MemorySegment message, int length, MemorySegment callState) {
            return result(Libc.write(callState, fd, message, length), length);
        }

        @Override
        public BackingFiles backingFiles() {
            return new DeviceBackingFiles(fd);
        }

        private static int result(long written, int length) {
            return written < 0 ? (int) written : written == length ? 0 : -Errno.EIO;
        }
    }

    private void end() {
        ended = true;
        Thread watch = turnWatch;
        if (watch != null) {
            LockSupport.unpark(watch);
        }
        Runnable closeDescriptors = () -> {
            synchronized (fds) {
                fds.forEach(DevFuse::close);
                fds.clear();
            }
        };
        try {
            // The descriptors close when no request is left to reply on them (at once, unless
            // one still runs on a virtual thread past the wait: then when it ends).
            server.close(10_000, closeDescriptors);
        } catch (RuntimeException | Error e) {
            closeDescriptors.run();
            throw e;
        } finally {
            terminated.countDown();
        }
    }

    boolean isTerminated() {
        return terminated.getCount() == 0;
    }

    void awaitTermination() throws InterruptedException {
        terminated.await();
    }

    boolean awaitTermination(long millis) throws InterruptedException {
        return terminated.await(millis, TimeUnit.MILLISECONDS);
    }

    /** Why a reader stopped other than by unmount, if one did. */
    Throwable failure() {
        return failure;
    }
}

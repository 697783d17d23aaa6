package castore.ingest;

import castore.ingest.posix.Posix;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * One import or export run: a walker thread hands per-file work to a bounded pool. The first
 * failure wins and stops the rest; {@link #finish()} waits for every task and closes every
 * descriptor still open, so a failed run leaks nothing.
 */
final class TreeWork implements AutoCloseable {

    /** Per-file work that may fail with an IOException. */
    interface Task {
        void run() throws IOException;
    }

    private final ExecutorService pool;
    private final Semaphore permits;
    private final int maxInFlight;
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private final Set<DirFd> openDirectories = ConcurrentHashMap.newKeySet();

    TreeWork(int threads, int maxInFlight, String threadName) {
        AtomicInteger counter = new AtomicInteger();
        ThreadFactory factory = r -> {
            Thread t = new Thread(r, threadName + "-" + counter.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
        this.pool = Executors.newFixedThreadPool(threads, factory);
        this.maxInFlight = maxInFlight;
        this.permits = new Semaphore(maxInFlight);
    }

    /** Runs {@code task} on the pool, waiting while {@code maxInFlight} tasks are queued or running. */
    void submit(Task task) throws IOException {
        try {
            permits.acquire();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted");
        }
        pool.execute(() -> {
            try {
                if (failure.get() == null) {
                    task.run();
                }
            } catch (Throwable t) {
                fail(t);
            } finally {
                permits.release();
            }
        });
    }

    void fail(Throwable t) {
        failure.compareAndSet(null, t);
    }

    boolean failed() {
        return failure.get() != null;
    }

    /** Waits until no task is queued or running, closes leftover descriptors, rethrows the first failure. */
    void finish() throws IOException {
        permits.acquireUninterruptibly(maxInFlight);
        permits.release(maxInFlight);
        for (DirFd d : openDirectories) {
            d.forceClose();
        }
        Throwable t = failure.get();
        if (t != null) {
            throw rethrow(t);
        }
    }

    static IOException rethrow(Throwable t) {
        return switch (t) {
            case IOException io -> io;
            case UncheckedIOException u -> u.getCause();
            case RuntimeException r -> throw r;
            case Error e -> throw e;
            default -> new IOException(t);
        };
    }

    @Override
    public void close() {
        pool.shutdownNow();
    }

    /** Opens a directory descriptor owned by this run, with one reference held by the caller. */
    DirFd directory(int fd, byte[] path) {
        DirFd d = new DirFd(fd, path);
        openDirectories.add(d);
        return d;
    }

    /**
     * A directory descriptor shared by the walker and the file tasks that open files relative
     * to it; closed when the last user releases it.
     */
    final class DirFd {
        final int fd;
        final byte[] path;
        private final AtomicInteger refs = new AtomicInteger(1);

        private DirFd(int fd, byte[] path) {
            this.fd = fd;
            this.path = path;
        }

        DirFd retain() {
            refs.incrementAndGet();
            return this;
        }

        void release() {
            if (refs.decrementAndGet() == 0 && openDirectories.remove(this)) {
                Posix.close(fd);
            }
        }

        private void forceClose() {
            if (openDirectories.remove(this)) {
                Posix.close(fd);
            }
        }
    }
}

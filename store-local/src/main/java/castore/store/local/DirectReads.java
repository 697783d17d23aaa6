package castore.store.local;

import java.util.concurrent.Executor;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * A store's threads for {@link DirectStream} loads, and the cap on the buffer memory its streams
 * hold. The threads wait for the disk most of the time (a load is one O_DIRECT pread and a
 * hash); they end after a few idle seconds, so an idle mount keeps none. Streams beyond the cap
 * read through the page cache as before.
 */
final class DirectReads implements Executor {
    /** Loads in flight at most, over all streams: enough to keep a disk busy with 256 KiB reads. */
    static final int THREADS = 4;
    /** Buffer memory all streams of the store may hold together (about 14 streams of 4 MiB). */
    static final long MAX_BUFFERS = 64L << 20;

    private final ThreadPoolExecutor pool;
    private final AtomicLong held = new AtomicLong();
    /** Chunks loaded with O_DIRECT, and through the page cache (a file system without it, a pack being written). */
    final LongAdder direct = new LongAdder();
    final LongAdder buffered = new LongAdder();

    DirectReads() {
        AtomicInteger names = new AtomicInteger();
        pool = new ThreadPoolExecutor(THREADS, THREADS, 5, TimeUnit.SECONDS, new LinkedBlockingQueue<>(), task -> {
            Thread t = new Thread(task, "castore-direct-read-" + names.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        pool.allowCoreThreadTimeOut(true);
    }

    @Override
    public void execute(Runnable load) {
        pool.execute(load);
    }

    /** Takes {@code bytes} of the cap for a stream's buffers; false if that would exceed it. */
    boolean reserve(long bytes) {
        while (true) {
            long now = held.get();
            if (now + bytes > MAX_BUFFERS) {
                return false;
            }
            if (held.compareAndSet(now, now + bytes)) {
                return true;
            }
        }
    }

    void release(long bytes) {
        held.addAndGet(-bytes);
    }

    /** Buffer memory held by streams now (for tests). */
    long held() {
        return held.get();
    }

    /** Refuses further loads; those queued still run (their streams wait for them). */
    void shutdown() {
        pool.shutdown();
    }
}

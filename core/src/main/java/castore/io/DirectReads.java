package castore.io;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * A store's (or cache's) threads for {@link DirectStream} loads, and the cap on the buffer memory
 * its streams hold. The threads wait for the disk most of the time (a load is one O_DIRECT pread
 * of a chunk or a span of them, and a check of each chunk); they end after a few idle seconds, so an idle mount keeps none, and
 * the streams left alone by then give their buffers back. Readers refused
 * by the cap read through the page cache as before.
 */
public final class DirectReads implements Executor {
    /** Loads in flight at most, over all streams: enough to keep a disk busy with reads of up to 4 MiB. */
    public static final int THREADS = 4;
    /**
     * Buffer memory all streams of the store may reserve together: 8 streams of 6 span buffers
     * of 4 MiB. A stream allocates its buffers as its window needs them (4 or 5 in a steady
     * stream), and gives them back when it ends.
     */
    public static final long MAX_BUFFERS = 192L << 20;

    private final ThreadPoolExecutor pool;
    private final AtomicLong held = new AtomicLong();
    /** Readers' streams holding buffers, so that a reader refused by the cap can take idle ones' room. */
    private final Set<DirectStreams> owners = ConcurrentHashMap.newKeySet();
    /** How long a stream must have been left alone before another reader may take its buffers. */
    static final long IDLE_NANOS = 500_000_000L;
    /** Chunks loaded with O_DIRECT, and through the page cache (a file system without it, a file being written): for tests. */
    public final LongAdder direct = new LongAdder();
    public final LongAdder buffered = new LongAdder();
    /** Loads that read a span of several chunks with one read ({@link DirectStream.Loader#loadSpan}): for tests. */
    public final LongAdder spans = new LongAdder();

    /** {@code name}: the threads' name prefix. */
    public DirectReads(String name) {
        this(name, 5_000);
    }

    /** With the threads' idle time before they end given (tests shorten it). */
    DirectReads(String name, long idleMillis) {
        AtomicInteger names = new AtomicInteger();
        pool = new ThreadPoolExecutor(THREADS, THREADS, idleMillis, TimeUnit.MILLISECONDS, new LinkedBlockingQueue<>(), worker -> {
            Thread t = new Thread(() -> {
                try {
                    worker.run();
                } finally {
                    reclaimIdle();
                }
            }, name + "-" + names.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        pool.allowCoreThreadTimeOut(true);
    }

    /**
     * When a thread ends, no load has run for its idle time: streams left alone since give their
     * buffers back, so a mount that has stopped reading holds none (a reader that goes on later
     * gets a new stream). Without this, buffers stayed with each open reader until it closed or
     * another reader needed the room: 24 MiB per stream.
     */
    private void reclaimIdle() {
        try {
            for (DirectStreams owner : owners) {
                owner.reclaimIdle(IDLE_NANOS);
            }
        } catch (RuntimeException | Error e) {
            // best effort: the buffers go when their readers close
        }
    }

    @Override
    public void execute(Runnable load) {
        pool.execute(load);
    }

    /**
     * Takes {@code bytes} of the cap for a stream's buffers; if that would exceed it, first closes
     * streams left alone for a while (at the end of their file, or whose reader stopped) to make
     * room. False if there is still none.
     */
    public boolean reserve(long bytes) {
        if (tryReserve(bytes)) {
            return true;
        }
        for (DirectStreams owner : owners) {
            owner.reclaimIdle(IDLE_NANOS);
            if (tryReserve(bytes)) {
                return true;
            }
        }
        return false;
    }

    void register(DirectStreams owner) {
        owners.add(owner);
    }

    void unregister(DirectStreams owner) {
        owners.remove(owner);
    }

    private boolean tryReserve(long bytes) {
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

    public void release(long bytes) {
        held.addAndGet(-bytes);
    }

    /** Buffer memory held by streams now (for tests). */
    public long held() {
        return held.get();
    }

    /** Refuses further loads; those queued still run (their streams wait for them). */
    public void shutdown() {
        pool.shutdown();
    }
}

package castore.io;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
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
 * of a chunk or a span of them, and a hash of each chunk); they end after a few idle seconds, so an idle mount keeps none. Readers refused
 * by the cap read through the page cache as before.
 */
public final class DirectReads implements Executor {
    /** Loads in flight at most, over all streams: enough to keep a disk busy with reads of up to 1 MiB. */
    public static final int THREADS = 4;
    /**
     * Buffer memory all streams of the store may reserve together: 16 streams of 8 buffers of
     * 1 MiB. A stream allocates its buffers as its window needs them, about 4 when its chunks are
     * read in spans, all 8 only when they lie apart.
     */
    public static final long MAX_BUFFERS = 128L << 20;

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
    /** Chunks read at random with O_DIRECT into a scratch buffer ({@link #takeScratch}): for tests. */
    public final LongAdder scratch = new LongAdder();

    /** Bytes of one scratch buffer: a chunk of up to 1 MiB rounded out to {@link DirectStream#ALIGN} at both ends. */
    public static final int SCRATCH_BYTES = (1 << 20) + 2 * DirectStream.ALIGN;
    /** Scratch buffers in existence at most: one per read served at once is plenty. */
    static final int MAX_SCRATCH = 16;
    private final ConcurrentLinkedQueue<MemorySegment> scratchBuffers = new ConcurrentLinkedQueue<>();
    private final AtomicInteger scratchMade = new AtomicInteger();

    /** {@code name}: the threads' name prefix. */
    public DirectReads(String name) {
        AtomicInteger names = new AtomicInteger();
        pool = new ThreadPoolExecutor(THREADS, THREADS, 5, TimeUnit.SECONDS, new LinkedBlockingQueue<>(), task -> {
            Thread t = new Thread(task, name + "-" + names.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        pool.allowCoreThreadTimeOut(true);
    }

    @Override
    public void execute(Runnable load) {
        pool.execute(load);
    }

    /**
     * An aligned buffer of {@link #SCRATCH_BYTES} for one O_DIRECT read on the caller's thread (a
     * chunk read at random: no stream, no read-ahead), to {@link #giveBack} after; null if
     * {@link #MAX_SCRATCH} are in use (the caller then reads through the page cache). Buffers
     * are freed by the garbage collector once this is unreachable, so one still in use when the
     * store closes stays valid.
     */
    public MemorySegment takeScratch() {
        MemorySegment buffer = scratchBuffers.poll();
        if (buffer != null) {
            return buffer;
        }
        if (scratchMade.incrementAndGet() > MAX_SCRATCH) {
            scratchMade.decrementAndGet();
            return null;
        }
        return Arena.ofAuto().allocate(SCRATCH_BYTES, DirectStream.ALIGN);
    }

    /** Returns a buffer of {@link #takeScratch}; nothing may read or write it afterwards. */
    public void giveBack(MemorySegment buffer) {
        scratchBuffers.add(buffer);
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

package castore.fs;

/**
 * The recent latency of one kind of store access, to decide whether a request that needs one is
 * worth handing to a virtual thread ({@link castore.fuse.api.FileSystem#mayBlock}). A local store
 * with its data in the page cache answers in microseconds, less than the hand-off costs; a remote
 * store or a cold disk takes milliseconds, which must not hold a reader thread. One slow access
 * is enough to switch hand-offs on; a run of fast ones switches them off again.
 */
final class FetchLatency {
    /** Accesses slower than this on average are worth a hand-off. */
    static final long SLOW_NANOS = 100_000;

    /** Exponentially weighted moving average, weight 1/8; races lose a sample, which is harmless. */
    private volatile long averageNanos;

    /** Times {@code access}; failures are timed too (a timeout is slow). */
    <T, E extends Exception> T time(Access<T, E> access) throws E {
        long start = System.nanoTime();
        try {
            return access.run();
        } finally {
            long elapsed = System.nanoTime() - start;
            long average = averageNanos;
            averageNanos = average + (elapsed - average) / 8;
        }
    }

    boolean slow() {
        return averageNanos > SLOW_NANOS;
    }

    interface Access<T, E extends Exception> {
        T run() throws E;
    }
}

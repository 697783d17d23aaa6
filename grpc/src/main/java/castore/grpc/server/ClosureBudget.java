package castore.grpc.server;

import java.util.concurrent.atomic.AtomicLong;

/**
 * The bytes of Directories that all closure puts being checked may hold at once. Each put is
 * limited on its own (--max-closure), but many at once, or one on a small heap, ran the daemon
 * out of memory, and a daemon whose heap runs out exits (the launcher's
 * -XX:+ExitOnOutOfMemoryError). A put past the budget is refused with RESOURCE_EXHAUSTED instead,
 * and the bytes of a put come back when it is stored, refused or abandoned.
 */
final class ClosureBudget {
    /**
     * Three fifths of the heap: a Directory is held at about its encoded size while its closure
     * is checked, and a 128 MiB closure fits a 256 MiB heap
     * (DaemonProcessTest.aLargeClosureIsHeldAtAboutItsEncodedSize), two of them do not.
     */
    static long limitFor(long maxHeap) {
        return Math.max(1, maxHeap / 5 * 3);
    }

    private final long limit;
    private final AtomicLong held = new AtomicLong();

    ClosureBudget(long limit) {
        if (limit <= 0) {
            throw new IllegalArgumentException("closure budget must be positive");
        }
        this.limit = limit;
    }

    /** Three fifths of this JVM's heap ({@link #limitFor}). */
    static ClosureBudget ofHeap() {
        return new ClosureBudget(limitFor(Runtime.getRuntime().maxMemory()));
    }

    long limit() {
        return limit;
    }

    long held() {
        return held.get();
    }

    /** Takes {@code bytes} if they fit beside what is held; false (nothing taken) if not. */
    boolean take(long bytes) {
        long before = held.getAndAccumulate(bytes, (now, more) -> now + more > limit ? now : now + more);
        return before + bytes <= limit;
    }

    void give(long bytes) {
        held.addAndGet(-bytes);
    }
}

package castore.service;

import java.io.IOException;
import java.time.Duration;
import java.util.OptionalLong;
import java.util.function.Consumer;

/**
 * Commits a long-running writer's {@link UncommittedWrites} once writes pause for {@code idle},
 * and at the latest {@code longest} after the oldest uncommitted one, so that a kill or a power
 * loss loses at most that window of acknowledged writes. Committing after every write would be
 * durable at once, but each commit closes the open packs, and a client that uploads file by file
 * would leave a pack per file; this way an upload makes a few packs.
 */
public final class IdleCommitter implements AutoCloseable {
    /** The daemon's: a pause of a second ends a burst of uploads. */
    public static final Duration IDLE = Duration.ofSeconds(1);
    /** The daemon's: under writes that never pause, a commit every 30 s (a few packs a minute). */
    public static final Duration LONGEST = Duration.ofSeconds(30);
    private static final long POLL_MILLIS = 100;

    private final UncommittedWrites writes;
    private final long idleNanos;
    private final long longestNanos;
    private final Consumer<String> problems;
    private final Thread thread;
    private volatile boolean closed;
    /** The last failure reported: the same one is not reported again at every retry. */
    private String lastProblem;

    public IdleCommitter(UncommittedWrites writes, Duration idle, Duration longest, Consumer<String> problems) {
        this.writes = writes;
        this.idleNanos = idle.toNanos();
        this.longestNanos = longest.toNanos();
        this.problems = problems;
        this.thread = Thread.ofPlatform().daemon().name("castore-idle-commit").start(this::run);
    }

    private void run() {
        while (!closed) {
            try {
                Thread.sleep(POLL_MILLIS);
            } catch (InterruptedException e) {
                return; // closed
            }
            if (due(writes, System.nanoTime(), idleNanos, longestNanos)) {
                try {
                    writes.commit();
                    lastProblem = null;
                } catch (IOException | RuntimeException e) {
                    // A full disk, say: the writes stay pending and the next round tries again.
                    String problem = "commit failed (retried while writes are pending): " + e.getMessage();
                    if (!problem.equals(lastProblem)) {
                        lastProblem = problem;
                        problems.accept(problem);
                    }
                }
            }
        }
    }

    /** Whether a commit is due at {@code now}: writes are pending, and they paused or waited long enough. */
    static boolean due(UncommittedWrites writes, long now, long idleNanos, long longestNanos) {
        OptionalLong since = writes.uncommittedSince();
        return since.isPresent() && (now - writes.lastWrite() >= idleNanos || now - since.getAsLong() >= longestNanos);
    }

    /** Stops committing (the store's own close commits what is left). */
    @Override
    public void close() throws InterruptedException {
        closed = true;
        thread.interrupt();
        thread.join();
    }
}

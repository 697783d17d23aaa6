package castore.service;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

@Timeout(60)
class IdleCommitterTest {
    /** Writes whose times the test sets; commit clears them, or fails while {@code failing}. */
    static final class Writes implements UncommittedWrites {
        volatile long since = Long.MIN_VALUE;
        volatile long last;
        volatile String failing;
        final AtomicInteger commits = new AtomicInteger();

        void wrote(long now) {
            if (since == Long.MIN_VALUE) {
                since = now;
            }
            last = now;
        }

        @Override
        public OptionalLong uncommittedSince() {
            return since == Long.MIN_VALUE ? OptionalLong.empty() : OptionalLong.of(since);
        }

        @Override
        public long lastWrite() {
            return last;
        }

        @Override
        public void commit() throws IOException {
            commits.incrementAndGet();
            if (failing != null) {
                throw new IOException(failing);
            }
            since = Long.MIN_VALUE;
        }
    }

    private static final long SECOND = 1_000_000_000L;

    /** The daemon's rule: a pause of a second, or 30 s since the oldest uncommitted write. */
    private static boolean due(Writes writes, long now) {
        return IdleCommitter.due(writes, now, SECOND, 30 * SECOND);
    }

    @Test
    void dueOncePendingWritesPauseOrWaitedTheLongest() throws Exception {
        Writes writes = new Writes();
        long t = 1_000 * SECOND;
        assertThat(due(writes, t)).as("nothing pending").isFalse();
        writes.wrote(t);
        assertThat(due(writes, t + SECOND / 2)).as("writes still coming").isFalse();
        assertThat(due(writes, t + SECOND)).as("a pause of a second").isTrue();
        // Writes that never pause: due 30 s after the oldest.
        for (long at = t; at < t + 30 * SECOND; at += SECOND / 2) {
            writes.wrote(at);
            assertThat(due(writes, at + SECOND / 4)).isFalse();
        }
        writes.wrote(t + 30 * SECOND);
        assertThat(due(writes, t + 30 * SECOND)).isTrue();
    }

    @Test
    void commitsWhenWritesPauseAndReportsAFailureOnceWhileRetrying() throws Exception {
        Writes writes = new Writes();
        List<String> problems = new CopyOnWriteArrayList<>();
        try (IdleCommitter committer = new IdleCommitter(writes, Duration.ofMillis(50), Duration.ofSeconds(30), problems::add)) {
            writes.wrote(System.nanoTime());
            awaitTrue(() -> writes.uncommittedSince().isEmpty());
            assertThat(writes.commits.get()).isEqualTo(1);

            writes.failing = "No space left on device";
            writes.wrote(System.nanoTime());
            awaitTrue(() -> writes.commits.get() >= 4); // retried at every round
            assertThat(problems).containsExactly("commit failed (retried while writes are pending): No space left on device");
            assertThat(writes.uncommittedSince()).isPresent();

            writes.failing = null;
            awaitTrue(() -> writes.uncommittedSince().isEmpty());
            assertThat(problems).hasSize(1);
        }
        int after = writes.commits.get();
        writes.wrote(System.nanoTime());
        Thread.sleep(300);
        assertThat(writes.commits.get()).as("no commit after close").isEqualTo(after);
    }

    private static void awaitTrue(java.util.function.BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + 30 * SECOND;
        while (!condition.getAsBoolean()) {
            assertThat(System.nanoTime()).as("timed out").isLessThan(deadline);
            Thread.sleep(10);
        }
    }
}

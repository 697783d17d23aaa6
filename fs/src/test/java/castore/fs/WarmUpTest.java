package castore.fs;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The mount's warm-up: a synthetic tree served through the real request path, then nothing left. */
class WarmUpTest {
    @TempDir
    Path tmp;

    /** 3 passes over 24 directories of 100 files, each file looked up, stat and read. */
    private static final int FULL_RUN_AT_LEAST = 3 * 24 * 100 * 3;

    private final List<String> problems = new CopyOnWriteArrayList<>();

    private FsOptions options() {
        return FsOptions.defaults().withProblems(problems::add);
    }

    @Test
    void servesTheWholeSyntheticTreeAndDeletesItsScratchStore() throws Exception {
        try (WarmUp warmUp = WarmUp.start(options(), tmp, () -> 0)) {
            assertThat(warmUp.await(Duration.ofMinutes(2))).isTrue();
            assertThat(warmUp.failure()).isNull();
            assertThat(warmUp.steppedAside()).isFalse();
            assertThat(warmUp.requests()).isGreaterThan(FULL_RUN_AT_LEAST);
        }
        assertThat(problems).isEmpty();
        try (var left = Files.list(tmp)) {
            assertThat(left).as("the scratch store is gone").isEmpty();
        }
    }

    @Test
    void followsTheMountsOptions() throws Exception {
        try (WarmUp warmUp = WarmUp.start(options().withXattrs(false).withFeedKernelCache(false).withReadAheadBytes(0)
                .withZeroMessageOpens(false), tmp, () -> 0)) {
            assertThat(warmUp.await(Duration.ofMinutes(2))).isTrue();
            assertThat(warmUp.failure()).isNull();
        }
        assertThat(problems).isEmpty();
    }

    @Test
    void stepsAsideOnceTheMountGetsBusy() throws Exception {
        AtomicLong mountRequests = new AtomicLong(1000);
        try (WarmUp warmUp = WarmUp.start(options(), tmp, mountRequests::get)) {
            mountRequests.addAndGet(WarmUp.STEP_ASIDE_AFTER); // a few requests: it goes on
            awaitRequests(warmUp);
            mountRequests.incrementAndGet();
            assertThat(warmUp.await(Duration.ofMinutes(1))).isTrue();
            assertThat(warmUp.steppedAside()).isTrue();
            assertThat(warmUp.failure()).isNull();
            assertThat(warmUp.requests()).as("ended early").isLessThan(FULL_RUN_AT_LEAST);
        }
        assertThat(problems).isEmpty();
        try (var left = Files.list(tmp)) {
            assertThat(left).isEmpty();
        }
    }

    @Test
    void closeStopsItMidwayAndDeletesTheScratchStore() throws Exception {
        WarmUp warmUp = WarmUp.start(options(), tmp, () -> 0);
        awaitRequests(warmUp);
        warmUp.close();
        assertThat(warmUp.await(Duration.ZERO)).as("ended by close").isTrue();
        assertThat(warmUp.failure()).isNull();
        assertThat(warmUp.steppedAside()).isFalse();
        assertThat(warmUp.requests()).as("ended early").isLessThan(FULL_RUN_AT_LEAST);
        assertThat(problems).isEmpty();
        try (var left = Files.list(tmp)) {
            assertThat(left).isEmpty();
        }
    }

    @Test
    void aScratchParentItCannotUseEndsItWithOneProblemLine() throws Exception {
        Path notADirectory = Files.writeString(tmp.resolve("file"), "x");
        try (WarmUp warmUp = WarmUp.start(options(), notADirectory, () -> 0)) {
            assertThat(warmUp.await(Duration.ofMinutes(1))).isTrue();
            assertThat(warmUp.failure()).isNotNull();
        }
        assertThat(problems).singleElement().asString()
                .startsWith("warm-up stopped (the mount is unaffected): ").contains(notADirectory.toString());
        assertThat(Files.readString(notADirectory)).isEqualTo("x");
    }

    private static void awaitRequests(WarmUp warmUp) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofMinutes(1).toNanos();
        while (warmUp.requests() == 0 && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        assertThat(warmUp.requests()).as("requests served").isPositive();
    }
}

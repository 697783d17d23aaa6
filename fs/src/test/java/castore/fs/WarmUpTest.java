package castore.fs;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
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
    void followsTheMountsOptionsAndGivesBackEveryHandle() throws Exception {
        // Opens answered with handles (no zero-message opens; a listable root opens directories
        // with handle 0), no xattrs: the warm-up's own check fails it if any inode or open file
        // outlives the forgets at the end of a pass.
        long withDefaults;
        try (WarmUp warmUp = WarmUp.start(options(), tmp, () -> 0)) {
            assertThat(warmUp.await(Duration.ofMinutes(2))).isTrue();
            withDefaults = warmUp.requests();
        }
        try (WarmUp warmUp = WarmUp.start(options().withXattrs(false).withListRoot(true).withReadAheadBytes(0)
                .withZeroMessageOpens(false), tmp, () -> 0)) {
            assertThat(warmUp.await(Duration.ofMinutes(2))).isTrue();
            assertThat(warmUp.failure()).isNull();
            // Fewer xattr requests, more OPEN/RELEASE and OPENDIR/RELEASEDIR pairs: a different count.
            assertThat(warmUp.requests()).isGreaterThan(FULL_RUN_AT_LEAST).isNotEqualTo(withDefaults);
        }
        assertThat(problems).isEmpty();
    }

    @Test
    void deletesScratchStoresOfThisUsersKilledProcessesOnly() throws Exception {
        Process gone = new ProcessBuilder("true").start();
        gone.waitFor();
        Path abandoned = Files.createDirectory(tmp.resolve("castore-warm-up-abandoned"));
        Files.writeString(abandoned.resolve("owner.pid"), Long.toString(gone.pid()));
        Files.createDirectories(abandoned.resolve("store/packs"));
        Path live = Files.createDirectory(tmp.resolve("castore-warm-up-live"));
        Files.writeString(live.resolve("owner.pid"), Long.toString(ProcessHandle.current().pid()));
        Path unknown = Files.createDirectory(tmp.resolve("castore-warm-up-unknown"));
        Path stranger = Files.createDirectory(tmp.resolve("something-else"));
        Files.writeString(stranger.resolve("owner.pid"), Long.toString(gone.pid()));
        try (WarmUp warmUp = WarmUp.start(options(), tmp, () -> 0)) {
            assertThat(warmUp.await(Duration.ofMinutes(2))).isTrue();
            assertThat(warmUp.failure()).isNull();
        }
        assertThat(abandoned).doesNotExist();
        assertThat(live).isDirectory();
        assertThat(unknown).isDirectory();
        assertThat(stranger.resolve("owner.pid")).exists();
    }

    @Test
    void stepsAsideOnceTheMountGetsBusy() throws Exception {
        // The mount's counter as the warm-up reads it: 1000 at the start, 64 more for its next
        // 20 checks (it goes on), then 65 more (it steps aside).
        AtomicLong reads = new AtomicLong();
        LongSupplier mountRequests = () -> {
            long n = reads.getAndIncrement();
            return 1000 + (n == 0 ? 0 : n <= 20 ? WarmUp.STEP_ASIDE_AFTER : WarmUp.STEP_ASIDE_AFTER + 1);
        };
        try (WarmUp warmUp = WarmUp.start(options(), tmp, mountRequests)) {
            assertThat(warmUp.await(Duration.ofMinutes(1))).isTrue();
            assertThat(reads.get()).as("checks made").isEqualTo(22);
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

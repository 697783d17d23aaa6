package castore.fs;

import static castore.fs.CastoreFileSystemTest.REQ;
import static castore.fs.CastoreFileSystemTest.ROOT;
import static castore.fs.CastoreFileSystemTest.assertErrno;
import static castore.fs.CastoreFileSystemTest.bytes;
import static org.assertj.core.api.Assertions.assertThat;

import castore.fuse.api.Entry;
import castore.fuse.api.Errno;
import castore.fuse.api.FuseException;
import castore.model.Name;
import castore.model.Node;
import castore.service.RootService;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import castore.service.memory.MemoryRootService;
import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Names in the mount root answered from memory within the root TTL and refreshed in the
 * background while in use (RootAnswers), through the filesystem's lookups.
 */
class RootAnswersTest {
    final MemoryBlobService blobs = new MemoryBlobService();
    final MemoryDirectoryService directories = new MemoryDirectoryService();
    final CountingRoots roots = new CountingRoots();
    final Trees trees = new Trees(blobs, directories, roots);
    final List<String> problems = new CopyOnWriteArrayList<>();
    final List<CastoreFileSystem> mounted = new CopyOnWriteArrayList<>();

    /** A catalog that counts who asks it, and can be made to fail. */
    static final class CountingRoots implements RootService {
        final MemoryRootService inner = new MemoryRootService();
        /** Who asked for which name, one entry per call, so that counts taken together agree. */
        record Ask(String thread, Name name) {
            boolean byRefresher() {
                return thread.equals("castore-root-refresh");
            }
        }

        final List<Ask> asks = new CopyOnWriteArrayList<>();
        volatile boolean failing;
        /** A name whose answers take this long. */
        volatile Name slowName;
        volatile long slowMillis;

        @Override
        public Optional<Node> get(Name name) throws IOException {
            asks.add(new Ask(Thread.currentThread().getName(), name));
            if (name.equals(slowName)) {
                try {
                    Thread.sleep(slowMillis);
                } catch (InterruptedException e) {
                    throw new IOException("interrupted");
                }
            }
            if (failing) {
                throw new IOException("catalog unreachable");
            }
            return inner.get(name);
        }

        @Override
        public void put(Name name, Node node) throws IOException {
            inner.put(name, node);
        }

        @Override
        public boolean remove(Name name) throws IOException {
            return inner.remove(name);
        }

        @Override
        public Stream<Node.NamedNode> list() throws IOException {
            return inner.list();
        }

        long askedByLookups() {
            return asks.stream().filter(a -> !a.byRefresher()).count();
        }

        long askedByRefresher() {
            return asks.stream().filter(Ask::byRefresher).count();
        }

        long askedFor(String name) {
            return asks.stream().filter(a -> a.name().equals(Name.of(name))).count();
        }
    }

    CastoreFileSystem mount(Duration ttl) {
        var fs = new CastoreFileSystem(blobs, directories, roots, FsOptions.defaults().withRootTtl(ttl).withProblems(problems::add));
        mounted.add(fs);
        return fs;
    }

    @AfterEach
    void unmount() {
        mounted.forEach(CastoreFileSystem::destroy);
    }

    static Entry lookup(CastoreFileSystem fs, String name) throws FuseException {
        return fs.lookup(REQ, ROOT, bytes(name));
    }

    static void sleep(long millis) throws InterruptedException {
        Thread.sleep(millis);
    }

    @Test
    void aNameLookedUpAgainWithinTheTtlIsAnsweredFromMemoryForWhatIsLeftOfIt() throws Exception {
        trees.root("app", trees.file("1"));
        var fs = mount(Duration.ofSeconds(30));
        long ttl = TimeUnit.SECONDS.toNanos(30);

        Entry first = lookup(fs, "app");
        assertThat(first.entryValidNanos()).as("counted from when the catalog was asked")
                .isLessThanOrEqualTo(ttl).isGreaterThan(ttl - TimeUnit.SECONDS.toNanos(1));
        sleep(50);
        Entry again = lookup(fs, "app");
        assertThat(again.nodeId()).isEqualTo(first.nodeId());
        assertThat(again.entryValidNanos()).as("what is left of the TTL")
                .isLessThanOrEqualTo(ttl - TimeUnit.MILLISECONDS.toNanos(50))
                .isGreaterThan(ttl - TimeUnit.SECONDS.toNanos(1));
        assertThat(roots.askedByLookups()).isEqualTo(1);
    }

    @Test
    void namesInUseAreRefreshedInTheBackgroundSoTheirLookupsNeverWait() throws Exception {
        trees.root("app", trees.file("1"));
        trees.root("idle", trees.file("2"));
        var fs = mount(Duration.ofSeconds(2));

        lookup(fs, "app");
        long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(4500);
        while (System.nanoTime() < end) {
            Entry e = lookup(fs, "app");
            assertThat(e.entryValidNanos()).isPositive().isLessThanOrEqualTo(TimeUnit.SECONDS.toNanos(2));
            sleep(200);
        }
        assertThat(roots.askedByLookups()).as("only the first lookup asked the catalog").isEqualTo(1);
        assertThat(roots.askedByRefresher()).as("asked again once its answer was a second old").isBetween(2L, 6L);
        assertThat(roots.askedFor("idle")).as("a name never looked up is never asked for").isZero();
    }

    @Test
    void aRepointedRootIsNeverHandedOutPastTheTtlAfterTheChange() throws Exception {
        trees.root("app", trees.dir("v", trees.file("1")));
        long ttl = TimeUnit.MILLISECONDS.toNanos(600);
        var fs = mount(Duration.ofNanos(ttl));
        Entry old = lookup(fs, "app");

        sleep(150);
        trees.root("app", trees.dir("v", trees.file("2")));
        long changed = System.nanoTime();
        long deadline = changed + ttl + TimeUnit.SECONDS.toNanos(5);
        Entry now = old;
        while (now.nodeId() == old.nodeId() && System.nanoTime() < deadline) {
            long at = System.nanoTime();
            now = lookup(fs, "app");
            if (now.nodeId() == old.nodeId()) {
                // The kernel would keep this answer until at + validity: never past the TTL after the change.
                assertThat(at + now.entryValidNanos()).isLessThanOrEqualTo(changed + ttl);
            }
            sleep(20);
        }
        assertThat(now.nodeId()).as("the new tree is seen").isNotEqualTo(old.nodeId());
        assertThat(CastoreFileSystemTest.read(fs, fs.lookup(REQ, now.nodeId(), bytes("v")).nodeId(), 0, 10)).isEqualTo("2");
    }

    @Test
    void aRootRemovedFromTheCatalogIsGoneWithinTheTtl() throws Exception {
        trees.root("app", trees.file("1"));
        var fs = mount(Duration.ofMillis(400));
        lookup(fs, "app");
        roots.remove(Name.of("app"));
        sleep(450);
        assertThat(lookup(fs, "app").isNegative()).isTrue();
    }

    @Test
    void whenTheCatalogFailsAnswersGoStaleAndLookupsReportIt() throws Exception {
        trees.root("app", trees.file("1"));
        long ttl = TimeUnit.MILLISECONDS.toNanos(400);
        var fs = mount(Duration.ofNanos(ttl));
        lookup(fs, "app");
        roots.failing = true;
        long failingSince = System.nanoTime();
        long firstError = 0;
        while (firstError == 0 && System.nanoTime() - failingSince < TimeUnit.SECONDS.toNanos(5)) {
            long started = System.nanoTime();
            try {
                lookup(fs, "app");
                // The last good answer was had before the failures began: never handed out a TTL after.
                assertThat(started - failingSince).as("a lookup answered from a stale answer").isLessThan(ttl);
                sleep(20);
            } catch (FuseException e) {
                assertThat(e.errno()).isEqualTo(Errno.EIO);
                firstError = System.nanoTime();
            }
        }
        assertThat(firstError).as("lookups fail once the last good answer is a TTL old").isPositive();
        assertThat(problems).anyMatch(p -> p.contains("catalog unreachable"));

        roots.failing = false;
        assertThat(lookup(fs, "app").isNegative()).as("back without remounting").isFalse();
    }

    @Test
    void aSlowAnswerHoldsUpNoOtherName() throws Exception {
        trees.root("app", trees.file("1"));
        trees.root("slow", trees.file("2"));
        var fs = mount(Duration.ofMillis(1600)); // refreshed at 800-1200 ms old (ticks of TTL/4): 400-800 ms of slack
        lookup(fs, "app");
        lookup(fs, "slow");
        roots.slowName = Name.of("slow");
        roots.slowMillis = 8000;
        long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(4500);
        while (System.nanoTime() < end) {
            lookup(fs, "app");
            sleep(50);
        }
        // One snapshot: the refresher goes on asking while the counts are taken.
        List<CountingRoots.Ask> asks = List.copyOf(roots.asks);
        long appRefreshes = asks.stream().filter(a -> a.byRefresher() && a.name().equals(Name.of("app"))).count();
        // Both were due together first; every later refresh of 'app' came while 'slow' hung.
        assertThat(appRefreshes).as("'app' kept fresh while 'slow' hangs").isGreaterThanOrEqualTo(2);
        assertThat(asks.stream().filter(a -> !a.byRefresher()).count()).as("no lookup of 'app' waited").isEqualTo(2);
        roots.slowMillis = 0;
    }

    @Test
    void anAnswerIsOnlyReplacedByOneAskedForLater() throws Exception {
        var first = trees.file("1");
        var second = trees.file("2");
        var answers = new RootAnswers(roots, TimeUnit.SECONDS.toNanos(30));
        try {
            long now = System.nanoTime();
            answers.record(Name.of("app"), Optional.of(second), now);
            answers.record(Name.of("app"), Optional.of(first), now - 1000); // asked earlier, answered later
            assertThat(answers.fresh(Name.of("app"), now).node()).isEqualTo(second);
            answers.record(Name.of("app"), Optional.of(first), now + 1000);
            assertThat(answers.fresh(Name.of("app"), now + 2000).node()).isEqualTo(first);
        } finally {
            answers.close();
        }
    }

    @Test
    void aZeroTtlAsksTheCatalogOnEveryLookup() throws Exception {
        trees.root("app", trees.file("1"));
        var fs = mount(Duration.ZERO);
        for (int i = 0; i < 3; i++) {
            assertThat(lookup(fs, "app").entryValidNanos()).isZero();
        }
        assertThat(roots.askedByLookups()).isEqualTo(3);
        assertThat(roots.askedByRefresher()).isZero();
    }

    @Test
    void aTtlUnder200MsKeepsNothing() throws Exception {
        trees.root("app", trees.file("1"));
        var fs = mount(Duration.ofMillis(100));
        for (int i = 0; i < 3; i++) {
            assertThat(lookup(fs, "app").entryValidNanos()).isEqualTo(TimeUnit.MILLISECONDS.toNanos(100));
        }
        assertThat(roots.askedByLookups()).isEqualTo(3);
        sleep(300);
        assertThat(roots.askedByRefresher()).isZero();
    }

    @Test
    void namesUnusedForFourTtlsAreDroppedAndNoLongerAskedFor() throws Exception {
        trees.root("app", trees.file("1"));
        var answers = new RootAnswers(roots, TimeUnit.MILLISECONDS.toNanos(200));
        try {
            answers.record(Name.of("app"), roots.get(Name.of("app")), System.nanoTime());
            awaitStopped(answers);
            long refreshed = roots.askedByRefresher();
            assertThat(refreshed).as("refreshed while recently used").isPositive();
            assertThat(answers.size()).as("dropped once unused for 800 ms").isZero();
            sleep(400);
            assertThat(roots.askedByRefresher()).as("no longer asked for").isEqualTo(refreshed);
        } finally {
            answers.close();
        }
    }

    @Test
    void theRefresherRunsOnlyWhileNamesAreKeptAndStopsWithTheSession() throws Exception {
        trees.root("app", trees.file("1"));
        var answers = new RootAnswers(roots, TimeUnit.MILLISECONDS.toNanos(200));
        try {
            assertThat(answers.refreshing()).as("nothing kept yet").isFalse();
            answers.record(Name.of("app"), roots.get(Name.of("app")), System.nanoTime());
            assertThat(answers.refreshing()).isTrue();
            awaitStopped(answers);
            assertThat(answers.size()).as("unused, dropped").isZero();

            answers.record(Name.of("app"), roots.get(Name.of("app")), System.nanoTime());
            assertThat(answers.refreshing()).as("started again").isTrue();
        } finally {
            answers.close();
        }
        awaitStopped(answers);
        answers.record(Name.of("app"), roots.get(Name.of("app")), System.nanoTime());
        assertThat(answers.refreshing()).as("closed: nothing starts").isFalse();
        assertThat(answers.size()).isZero();
    }

    /** Until the refresher has stopped and the last refresh it started has asked the catalog. */
    private static void awaitStopped(RootAnswers answers) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while ((answers.refreshing() || answers.refreshesInFlight() > 0) && System.nanoTime() < deadline) {
            sleep(10);
        }
        assertThat(answers.refreshing()).isFalse();
        assertThat(answers.refreshesInFlight()).isZero();
    }
}

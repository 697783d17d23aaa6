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
        /** Answers kept beyond the mount (as a cache directory keeps them): {@link #lastKnown}. */
        final java.util.Map<Name, Node> keptElsewhere = new java.util.concurrent.ConcurrentHashMap<>();
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
        public Optional<Node> lastKnown(Name name) {
            return Optional.ofNullable(keptElsewhere.get(name));
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
    void whenTheCatalogFailsANameKeepsItsLastAnswerUntilTheCatalogAnswersAgain() throws Exception {
        trees.root("app", trees.dir("v", trees.file("1")));
        trees.root("never-asked", trees.file("2"));
        long ttl = TimeUnit.MILLISECONDS.toNanos(400);
        var fs = mount(Duration.ofNanos(ttl));
        Entry before = lookup(fs, "app");
        roots.failing = true;
        sleep(2 * TimeUnit.NANOSECONDS.toMillis(ttl)); // the answer is stale, and the refresher has failed
        assertThat(problems).as("said once").containsExactly("the root catalog cannot be asked (catalog unreachable);"
                + " root names it answered before keep their last answer until it answers again");

        long asked = roots.askedByLookups();
        for (int i = 0; i < 5; i++) {
            Entry stale = lookup(fs, "app");
            assertThat(stale.nodeId()).as("the last answer").isEqualTo(before.nodeId());
            assertThat(stale.entryValidNanos()).as("for a TTL at a time").isEqualTo(ttl);
            assertThat(CastoreFileSystemTest.read(fs, fs.lookup(REQ, stale.nodeId(), bytes("v")).nodeId(), 0, 10)).isEqualTo("1");
        }
        assertThat(roots.askedByLookups()).as("lookups do not wait for a failing catalog").isEqualTo(asked);
        assertErrno(Errno.EIO, () -> lookup(fs, "never-asked"));
        assertThat(problems).anyMatch(p -> p.equals("root service failed: catalog unreachable"));

        trees.root("app", trees.dir("v", trees.file("3"))); // re-pointed while the catalog could not be asked
        roots.failing = false;
        long back = System.nanoTime();
        Entry now = before;
        while (now.nodeId() == before.nodeId() && System.nanoTime() - back < TimeUnit.SECONDS.toNanos(5)) {
            sleep(20);
            now = lookup(fs, "app");
        }
        assertThat(now.nodeId()).as("the catalog's new answer, without remounting").isNotEqualTo(before.nodeId());
        assertThat(CastoreFileSystemTest.read(fs, fs.lookup(REQ, now.nodeId(), bytes("v")).nodeId(), 0, 10)).isEqualTo("3");
        assertThat(problems).contains("the root catalog answers again");
        assertThat(lookup(fs, "never-asked").isNegative()).isFalse();
    }

    @Test
    void aLookupThatFindsTheCatalogFailingGetsTheLastAnswerAndLaterOnesDoNotWait() throws Exception {
        trees.root("app", trees.file("1"));
        var fs = mount(Duration.ofMillis(300));
        Entry before = lookup(fs, "app");
        roots.failing = true;
        roots.slowName = Name.of("app");
        roots.slowMillis = 500; // a failing catalog takes its time (a connection timeout)
        sleep(350); // stale; the refresher's ask (from 150 ms) has not failed yet
        Entry stale = lookup(fs, "app"); // asks, and gets the last answer when the ask fails
        assertThat(stale.nodeId()).isEqualTo(before.nodeId());
        assertThat(roots.askedByLookups()).isEqualTo(2);
        for (int i = 0; i < 3; i++) {
            long t = System.nanoTime();
            assertThat(lookup(fs, "app").nodeId()).isEqualTo(before.nodeId());
            assertThat(System.nanoTime() - t).as("known to be failing: no wait").isLessThan(TimeUnit.MILLISECONDS.toNanos(400));
        }
        assertThat(roots.askedByLookups()).isEqualTo(2);
    }

    @Test
    void aMountThatFindsTheCatalogFailingFromTheStartUsesTheAnswersKeptBeyondIt() throws Exception {
        trees.root("app", trees.dir("v", trees.file("new")));
        roots.keptElsewhere.put(Name.of("app"), trees.dir("v", trees.file("old")));
        long ttl = TimeUnit.MILLISECONDS.toNanos(400);
        var fs = mount(Duration.ofNanos(ttl));
        roots.failing = true;
        Entry kept = lookup(fs, "app");
        assertThat(kept.entryValidNanos()).isEqualTo(ttl);
        assertThat(CastoreFileSystemTest.read(fs, fs.lookup(REQ, kept.nodeId(), bytes("v")).nodeId(), 0, 10)).isEqualTo("old");
        long asked = roots.askedByLookups();
        assertThat(lookup(fs, "app").nodeId()).isEqualTo(kept.nodeId());
        assertThat(roots.askedByLookups()).as("known to be failing: not asked again").isEqualTo(asked);
        assertErrno(Errno.EIO, () -> lookup(fs, "unknown"));

        roots.failing = false;
        long back = System.nanoTime();
        Entry now = kept;
        while (now.nodeId() == kept.nodeId() && System.nanoTime() - back < TimeUnit.SECONDS.toNanos(5)) {
            sleep(20);
            now = lookup(fs, "app");
        }
        assertThat(CastoreFileSystemTest.read(fs, fs.lookup(REQ, now.nodeId(), bytes("v")).nodeId(), 0, 10))
                .as("the catalog's answer once it answers").isEqualTo("new");
    }

    @Test
    void aMountWhoseStoreDidNotAnswerAtFirstUsesTheKeptAnswersWithoutAskingUntilTheCatalogAnswers() throws Exception {
        trees.root("app", trees.dir("v", trees.file("new")));
        trees.root("other", trees.file("x"));
        roots.keptElsewhere.put(Name.of("app"), trees.dir("v", trees.file("old")));
        var fs = mount(Duration.ofMillis(400));
        fs.storeDidNotAnswer();
        Entry kept = lookup(fs, "app");
        assertThat(roots.askedByLookups()).as("not asked: the store did not answer the mount's first questions").isZero();
        assertThat(CastoreFileSystemTest.read(fs, fs.lookup(REQ, kept.nodeId(), bytes("v")).nodeId(), 0, 10)).isEqualTo("old");

        // A name with no kept answer is asked for; the catalog answers, and that ends the presumption.
        assertThat(lookup(fs, "other").isNegative()).isFalse();
        assertThat(roots.askedByLookups()).isEqualTo(1);
        Entry now = lookup(fs, "app");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (now.nodeId() == kept.nodeId() && System.nanoTime() < deadline) {
            sleep(20);
            now = lookup(fs, "app");
        }
        assertThat(CastoreFileSystemTest.read(fs, fs.lookup(REQ, now.nodeId(), bytes("v")).nodeId(), 0, 10)).isEqualTo("new");
        assertThat(problems).as("the mount said the store did not answer; now that it does, this says so")
                .containsExactly("the root catalog answers again");
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
    void namesUnusedForFourTtlsAreNoLongerAskedForButKeepTheirLastAnswer() throws Exception {
        trees.root("app", trees.file("1"));
        var answers = new RootAnswers(roots, TimeUnit.MILLISECONDS.toNanos(200));
        try {
            answers.record(Name.of("app"), roots.get(Name.of("app")), System.nanoTime());
            awaitStopped(answers);
            long refreshed = roots.askedByRefresher();
            assertThat(refreshed).as("refreshed while recently used").isPositive();
            sleep(400);
            assertThat(roots.askedByRefresher()).as("no longer asked for").isEqualTo(refreshed);
            assertThat(answers.fresh(Name.of("app"), System.nanoTime())).as("stale").isNull();
            assertThat(answers.lastKnownWhileFailing(Name.of("app"), System.nanoTime())).as("the catalog has not failed").isNull();

            roots.failing = true;
            RootAnswers.Answer last = answers.failed(Name.of("app"), System.nanoTime(), new IOException("gone"));
            assertThat(last).isNotNull();
            assertThat(last.node()).isEqualTo(roots.inner.get(Name.of("app")).orElseThrow());
            assertThat(answers.refreshing()).as("in use again: asked for until the catalog answers").isTrue();
            roots.failing = false;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (answers.failing() && System.nanoTime() < deadline) {
                sleep(10);
            }
            assertThat(answers.failing()).as("the refresher found the catalog back").isFalse();
        } finally {
            answers.close();
        }
    }

    @Test
    void pastTheLimitNamesOutOfUseAreDropped() throws Exception {
        var answers = new RootAnswers(roots, TimeUnit.MILLISECONDS.toNanos(200));
        try {
            Node node = trees.file("1");
            for (int i = 0; i < RootAnswers.MAX_KEPT; i++) {
                roots.put(Name.of("n" + i), node); // in the catalog: refreshes keep them
                answers.record(Name.of("n" + i), Optional.of(node), System.nanoTime());
            }
            assertThat(answers.size()).isEqualTo(RootAnswers.MAX_KEPT);
            awaitStopped(answers); // every name out of use
            answers.record(Name.of("new"), Optional.of(node), System.nanoTime());
            assertThat(answers.size()).isEqualTo(1);
        } finally {
            answers.close();
        }
    }

    @Test
    void theRefresherRunsOnlyWhileNamesAreInUseAndStopsWithTheSession() throws Exception {
        trees.root("app", trees.file("1"));
        var answers = new RootAnswers(roots, TimeUnit.MILLISECONDS.toNanos(200));
        try {
            assertThat(answers.refreshing()).as("nothing kept yet").isFalse();
            answers.record(Name.of("app"), roots.get(Name.of("app")), System.nanoTime());
            assertThat(answers.refreshing()).isTrue();
            awaitStopped(answers);
            assertThat(answers.size()).as("out of use, its last answer kept").isEqualTo(1);

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

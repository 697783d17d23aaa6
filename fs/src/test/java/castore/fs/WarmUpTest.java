package castore.fs;

import static org.assertj.core.api.Assertions.assertThat;

import castore.model.B3Digest;
import castore.service.BackendWarmUp;
import castore.service.BlobReader;
import castore.service.BlobWriter;
import castore.service.Store;
import castore.service.ScratchLayer;
import castore.service.StoreOptions;
import castore.service.Stores;
import castore.service.cache.CacheConfig;
import castore.service.cache.CachingDirectoryService;
import castore.service.cache.StoreCache;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.LongSupplier;
import java.util.function.LongUnaryOperator;
import java.util.stream.Collectors;
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
        try (WarmUp warmUp = WarmUp.start(options(), tmp, Duration.ZERO, () -> 0)) {
            assertThat(warmUp.await(Duration.ofMinutes(2))).isTrue();
            assertThat(warmUp.failure()).isNull();
            assertThat(warmUp.steppedAside()).isFalse();
            assertThat(warmUp.requests()).isGreaterThan(FULL_RUN_AT_LEAST);
        }
        assertThat(problems).isEmpty();
        assertNoScratchLeft("the scratch store is gone");
    }

    @Test
    void collectsItsGarbageOnceAtTheEndAndPutsTheFlagBack() throws Exception {
        var vm = java.lang.management.ManagementFactory.getPlatformMXBean(com.sun.management.HotSpotDiagnosticMXBean.class);
        String ratio = vm.getVMOption("MaxHeapFreeRatio").getValue();
        long before = fullCollections();
        try (WarmUp warmUp = WarmUp.start(options(), tmp, Duration.ZERO, () -> 0)) {
            assertThat(warmUp.await(Duration.ofMinutes(2))).isTrue();
            assertThat(warmUp.requests()).isGreaterThan(FULL_RUN_AT_LEAST);
        }
        // One collection at its end, so the mount's first burst allocates into an empty young
        // generation; the heap its allocations grew stays for that burst (a plain System.gc()
        // would shrink it back to what it holds), and the JVM's own setting is put back.
        assertThat(fullCollections()).as("full collections during an idle run").isEqualTo(before + 1);
        assertThat(vm.getVMOption("MaxHeapFreeRatio").getValue()).isEqualTo(ratio);
    }

    /**
     * The heap is kept for the whole warm-up, not only its last collection: a concurrent cycle
     * the warm-up starts (the code cache's growth does) shrank it at its remark.
     */
    @Test
    void theHeapIsKeptWhileItRuns() throws Exception {
        var vm = java.lang.management.ManagementFactory.getPlatformMXBean(com.sun.management.HotSpotDiagnosticMXBean.class);
        String ratio = vm.getVMOption("MaxHeapFreeRatio").getValue();
        try (WarmUp warmUp = WarmUp.start(options(), tmp, Duration.ZERO, () -> 0)) {
            while (warmUp.requests() == 0) { // serving its synthetic tree, far from its closing collection
                assertThat(warmUp.await(Duration.ofMillis(1))).as("ended before it served a request").isFalse();
            }
            assertThat(vm.getVMOption("MaxHeapFreeRatio").getValue()).as("while it serves").isEqualTo("100");
            assertThat(warmUp.await(Duration.ofMinutes(2))).isTrue();
            assertThat(warmUp.requests()).isGreaterThan(FULL_RUN_AT_LEAST);
        }
        assertThat(vm.getVMOption("MaxHeapFreeRatio").getValue()).isEqualTo(ratio);
    }

    @Test
    void itsCollectionGivesNoHeapBackWhereAPlainOneDoes() {
        var heap = java.lang.management.ManagementFactory.getMemoryMXBean();
        long grown = growHeap();
        try (WarmUp.KeptHeap kept = WarmUp.KeptHeap.keep()) {
            kept.collect();
        }
        assertThat(heap.getHeapMemoryUsage().getCommitted()).as("committed after the warm-up's collection").isGreaterThanOrEqualTo(grown);
        grown = growHeap();
        System.gc();
        assertThat(heap.getHeapMemoryUsage().getCommitted()).as("committed after a plain collection (what the test tells apart)")
                .isLessThan(grown);
    }

    /** Holds 512 MiB until the heap has grown to hold it, lets it go, and returns the heap's committed size. */
    private static long growHeap() {
        byte[][] held = new byte[512][];
        for (int i = 0; i < held.length; i++) {
            held[i] = new byte[1 << 20];
        }
        long committed = java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getCommitted();
        assertThat(held[held.length - 1]).hasSize(1 << 20);
        return committed;
    }

    /** Stop-the-world full collections so far (G1's "Old Generation" collector; System.gc() is one). */
    private static long fullCollections() {
        return java.lang.management.ManagementFactory.getGarbageCollectorMXBeans().stream()
                .filter(gc -> gc.getName().contains("Old") || gc.getName().contains("MarkSweep"))
                .mapToLong(java.lang.management.GarbageCollectorMXBean::getCollectionCount).sum();
    }

    @Test
    void followsTheMountsOptionsAndGivesBackEveryHandle() throws Exception {
        // Opens answered with handles (no zero-message opens; a listable root opens directories
        // with handle 0), no xattrs: the warm-up's own check fails it if any inode or open file
        // outlives the forgets at the end of a pass.
        long withDefaults;
        try (WarmUp warmUp = WarmUp.start(options(), tmp, Duration.ZERO, () -> 0)) {
            assertThat(warmUp.await(Duration.ofMinutes(2))).isTrue();
            assertThat(warmUp.failure()).isNull();
            withDefaults = warmUp.requests();
        }
        try (WarmUp warmUp = WarmUp.start(options().withXattrs(false).withListRoot(true).withReadAheadBytes(0)
                .withZeroMessageOpens(false), tmp, Duration.ZERO, () -> 0)) {
            assertThat(warmUp.await(Duration.ofMinutes(2))).isTrue();
            assertThat(warmUp.failure()).isNull();
            // Fewer xattr requests, more OPEN/RELEASE and OPENDIR/RELEASEDIR pairs: a different count.
            assertThat(warmUp.requests()).isGreaterThan(FULL_RUN_AT_LEAST).isNotEqualTo(withDefaults);
        }
        assertThat(problems).isEmpty();
    }

    @Test
    void deletesScratchStoresOfKilledProcessesOnly() throws Exception {
        FileTime anHourAgo = FileTime.from(Instant.now().minus(Duration.ofHours(1)));
        // Its process is gone: the owner file is not locked.
        Path abandoned = scratchDirectory("castore-warm-up-abandoned", anHourAgo);
        Files.createDirectories(abandoned.resolve("store/packs"));
        // A live one: its owner file is locked (here by this JVM, through another channel).
        Path live = scratchDirectory("castore-warm-up-live", anHourAgo);
        // Just made by a warm-up that has not locked it yet.
        Path new_ = scratchDirectory("castore-warm-up-new", FileTime.from(Instant.now()));
        Path unknown = Files.createDirectory(tmp.resolve("castore-warm-up-unknown"));
        Path stranger = scratchDirectory("something-else", anHourAgo);
        try (FileChannel liveOwner = FileChannel.open(live.resolve("owner.pid"), StandardOpenOption.WRITE);
             FileLock lock = liveOwner.lock()) {
            try (WarmUp warmUp = WarmUp.start(options(), tmp, Duration.ZERO, () -> 0)) {
                assertThat(warmUp.await(Duration.ofMinutes(2))).isTrue();
                assertThat(warmUp.failure()).isNull();
            }
        }
        assertThat(abandoned).doesNotExist();
        assertThat(live).isDirectory();
        assertThat(new_).isDirectory();
        assertThat(unknown).isDirectory();
        assertThat(stranger.resolve("owner.pid")).exists();
    }

    private Path scratchDirectory(String name, FileTime ownerFileTime) throws Exception {
        Path dir = Files.createDirectory(tmp.resolve(name));
        Path owner = Files.writeString(dir.resolve("owner.pid"), "12345");
        Files.setLastModifiedTime(owner, ownerFileTime);
        return dir;
    }

    @Test
    void stepsAsideOnceTheMountGetsBusy() throws Exception {
        // The mount's counter as the warm-up reads it: unchanged until the warm-up has served
        // 1,000 requests, then 16 more (it goes on), then 17 more once it has served 2,000.
        AtomicReference<WarmUp> started = new AtomicReference<>();
        LongSupplier mountRequests = byServed(started,
                served -> 1000 + (served > 2_000 ? WarmUp.STEP_ASIDE_AFTER + 1 : served > 1_000 ? WarmUp.STEP_ASIDE_AFTER : 0));
        try (WarmUp warmUp = WarmUp.start(options(), tmp, Duration.ZERO, mountRequests)) {
            started.set(warmUp);
            assertThat(warmUp.await(Duration.ofMinutes(1))).isTrue();
            assertThat(warmUp.steppedAside()).isTrue();
            assertThat(warmUp.failure()).isNull();
            assertThat(warmUp.requests()).as("stepped aside while serving").isBetween(2_000L, (long) FULL_RUN_AT_LEAST);
        }
        assertThat(problems).isEmpty();
        assertNoScratchLeft("the scratch store is gone");
    }

    @Test
    void runsTheStoresBackendWarmUpsAfterTheTreeUntilTheMountGetsBusy() throws Exception {
        AtomicLong mountRequests = new AtomicLong();
        AtomicLong treeRequestsWhenBackendBegan = new AtomicLong(-1);
        AtomicReference<WarmUp> started = new AtomicReference<>();
        CountDownLatch backendRunning = new CountDownLatch(1);
        BackendWarmUp backend = stop -> {
            treeRequestsWhenBackendBegan.set(started.get().requests());
            backendRunning.countDown();
            while (!stop.getAsBoolean()) {
                Thread.sleep(1);
            }
        };
        try (WarmUp warmUp = WarmUp.start(options(), tmp, Duration.ZERO, mountRequests::get, List.of(backend), null)) {
            started.set(warmUp);
            assertThat(backendRunning.await(2, java.util.concurrent.TimeUnit.MINUTES)).isTrue();
            assertThat(treeRequestsWhenBackendBegan.get()).as("the synthetic tree served first").isGreaterThan(FULL_RUN_AT_LEAST);
            mountRequests.addAndGet(WarmUp.STEP_ASIDE_AFTER + 1); // the mount gets busy
            assertThat(warmUp.await(Duration.ofSeconds(30))).isTrue();
            assertThat(warmUp.steppedAside()).isTrue();
            assertThat(warmUp.failure()).isNull();
        }
        assertThat(problems).isEmpty();
        assertNoScratchLeft("the scratch store is gone");
    }

    @Test
    void sendsItsRoundTripsToTheMountAfterTheTreeAndBeforeTheBackendsWithoutSteppingAside() throws Exception {
        // The mount counts each round trip as a request, as a real mount does.
        AtomicLong mountRequests = new AtomicLong(7);
        AtomicLong roundTrips = new AtomicLong();
        AtomicLong treeRequestsAtFirstRoundTrip = new AtomicLong(-1);
        AtomicLong roundTripsWhenBackendBegan = new AtomicLong(-1);
        AtomicReference<WarmUp> started = new AtomicReference<>();
        WarmUp.MountRoundTrip roundTrip = () -> {
            if (roundTrips.getAndIncrement() == 0) {
                treeRequestsAtFirstRoundTrip.set(started.get().requests());
            }
            mountRequests.incrementAndGet();
        };
        BackendWarmUp backend = stop -> roundTripsWhenBackendBegan.set(roundTrips.get());
        try (WarmUp warmUp = WarmUp.start(options(), tmp, Duration.ZERO, mountRequests::get, List.of(backend), roundTrip)) {
            started.set(warmUp);
            assertThat(warmUp.await(Duration.ofMinutes(2))).isTrue();
            assertThat(warmUp.failure()).isNull();
            assertThat(warmUp.steppedAside()).as("its own requests are not the mount getting busy").isFalse();
        }
        assertThat(roundTrips.get()).isEqualTo(WarmUp.ROUND_TRIPS);
        assertThat(treeRequestsAtFirstRoundTrip.get()).as("the synthetic tree served first").isGreaterThan(FULL_RUN_AT_LEAST);
        assertThat(roundTripsWhenBackendBegan.get()).as("the backends after them").isEqualTo(WarmUp.ROUND_TRIPS);
        assertThat(problems).isEmpty();
        assertNoScratchLeft("the scratch store is gone");
    }

    @Test
    void realRequestsDuringTheRoundTripsMakeItStepAside() throws Exception {
        AtomicLong mountRequests = new AtomicLong();
        AtomicLong roundTrips = new AtomicLong();
        AtomicLong backendRuns = new AtomicLong();
        WarmUp.MountRoundTrip roundTrip = () -> {
            if (roundTrips.incrementAndGet() == 300) {
                mountRequests.addAndGet(WarmUp.STEP_ASIDE_AFTER + 1); // someone else uses the mount
            }
            mountRequests.incrementAndGet();
        };
        try (WarmUp warmUp = WarmUp.start(options(), tmp, Duration.ZERO, mountRequests::get,
                List.of(stop -> backendRuns.incrementAndGet()), roundTrip)) {
            assertThat(warmUp.await(Duration.ofMinutes(2))).isTrue();
            assertThat(warmUp.steppedAside()).isTrue();
            assertThat(warmUp.failure()).isNull();
        }
        assertThat(roundTrips.get()).as("stopped at its next check, before every hundredth").isEqualTo(300);
        assertThat(backendRuns.get()).isZero();
        assertThat(problems).isEmpty();
    }

    @Test
    void aRoundTripThatFailsIsReportedUnlessTheWarmUpIsClosing() throws Exception {
        WarmUp.MountRoundTrip broken = () -> {
            throw new IOException("statfs /mnt: Transport endpoint is not connected (ENOTCONN)");
        };
        try (WarmUp warmUp = WarmUp.start(options(), tmp, Duration.ZERO, () -> 0, List.of(), broken)) {
            assertThat(warmUp.await(Duration.ofMinutes(2))).isTrue();
            assertThat(warmUp.failure()).hasMessageContaining("ENOTCONN");
        }
        assertThat(problems).singleElement().asString().contains("the mount is unaffected").contains("statfs /mnt");
        problems.clear();

        // The mount goes away as the warm-up is closed: its failing round trip is no problem to report.
        CountDownLatch inRoundTrip = new CountDownLatch(1);
        CountDownLatch stopAsked = new CountDownLatch(1);
        WarmUp.MountRoundTrip gone = () -> {
            inRoundTrip.countDown();
            try {
                stopAsked.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            throw new IOException("statfs /mnt: ENOTCONN");
        };
        WarmUp warmUp = WarmUp.start(options(), tmp, Duration.ZERO, () -> 0, List.of(), gone);
        assertThat(inRoundTrip.await(2, java.util.concurrent.TimeUnit.MINUTES)).isTrue();
        warmUp.requestStop();
        stopAsked.countDown();
        warmUp.close();
        assertThat(warmUp.await(Duration.ZERO)).isTrue();
        assertThat(warmUp.failure()).isNull();
        assertThat(problems).isEmpty();
        assertNoScratchLeft("the scratch store is gone");
    }

    /**
     * A mount over a cache: the synthetic tree is served through a scratch cache like the mount's
     * (a disk tier in the scratch directory, a memory tier of two Directories), so every load
     * after a Directory's first comes from the cache, nearly all from its disk tier.
     */
    @Test
    void aMountOverACacheServesTheSyntheticTreeThroughAScratchCacheLikeIt() throws Exception {
        Path mountCache = tmp.resolve("mount-cache");
        AtomicReference<Store> scratch = new AtomicReference<>();
        try (Store mounted = StoreCache.wrap(Stores.open("memory://", StoreOptions.DEFAULT), CacheConfig.onDisk(mountCache, 1L << 30))) {
            Map<Path, Long> mountCacheBefore = filesAndSizes(mountCache);
            ScratchLayer cache = mounted.scratchLayers().getFirst();
            ScratchLayer watched = (store, directory) -> {
                assertThat(directory).as("the scratch cache lives in the warm-up's scratch directory").startsWith(tmp);
                Store layered = cache.over(store, directory);
                scratch.set(layered);
                return layered;
            };
            Path scratchParent = Files.createDirectories(tmp.resolve("scratch"));
            try (WarmUp warmUp = WarmUp.start(options(), scratchParent, Duration.ZERO, () -> 0, List.of(), null, List.of(watched))) {
                assertThat(warmUp.await(Duration.ofMinutes(2))).isTrue();
                assertThat(warmUp.failure()).isNull();
                assertThat(warmUp.requests()).isGreaterThan(FULL_RUN_AT_LEAST);
            }
            assertThat(scratch.get()).as("the synthetic tree was served through the layer").isNotNull();
            var directories = (CachingDirectoryService) scratch.get().directories();
            // 25 Directories, loaded 275 times by the filesystem: the cache fetched each once.
            assertThat(directories.fetches()).isBetween(1L, 30L);
            assertThat(StoreCache.configOf(scratch.get()).orElseThrow().memoryLimit()).isLessThan(1L << 20);
            assertThat(filesAndSizes(mountCache)).as("the mount's own cache is never touched").isEqualTo(mountCacheBefore);
            assertThat(scratchParent).isEmptyDirectory();
        }
        assertThat(problems).isEmpty();
    }

    /** A mount over a remote store without --cache has a cache in memory only: so has the warm-up's, and the tree is served whole. */
    @Test
    void aMountOverAMemoryOnlyCacheServesTheSyntheticTreeThroughOneToo() throws Exception {
        AtomicReference<Store> scratch = new AtomicReference<>();
        try (Store mounted = StoreCache.wrap(Stores.open("memory://", StoreOptions.DEFAULT), CacheConfig.memoryOnly())) {
            ScratchLayer cache = mounted.scratchLayers().getFirst();
            ScratchLayer watched = (store, directory) -> {
                Store layered = cache.over(store, directory);
                scratch.set(layered);
                return layered;
            };
            try (WarmUp warmUp = WarmUp.start(options(), tmp, Duration.ZERO, () -> 0, List.of(), null, List.of(watched))) {
                assertThat(warmUp.await(Duration.ofMinutes(2))).isTrue();
                assertThat(warmUp.failure()).isNull();
                assertThat(warmUp.requests()).isGreaterThan(FULL_RUN_AT_LEAST);
            }
            assertThat(StoreCache.configOf(scratch.get()).orElseThrow().directory()).as("memory only, as the mount's").isEmpty();
            // Its memory tier holds two Directories: the rest are fetched again from the scratch store.
            assertThat(((CachingDirectoryService) scratch.get().directories()).fetches()).isGreaterThan(30L);
        }
        assertThat(problems).isEmpty();
        assertNoScratchLeft("the scratch store is gone");
    }

    @Test
    void aScratchLayerThatCannotBeMadeIsReportedAndTheWarmUpEnds() throws Exception {
        ScratchLayer broken = (store, directory) -> {
            throw new IOException("no room for a scratch cache");
        };
        try (WarmUp warmUp = WarmUp.start(options(), tmp, Duration.ZERO, () -> 0, List.of(), null, List.of(broken))) {
            assertThat(warmUp.await(Duration.ofMinutes(2))).isTrue();
            assertThat(warmUp.failure()).hasMessageContaining("no room for a scratch cache");
            assertThat(warmUp.requests()).isZero();
        }
        assertThat(problems).singleElement().asString().contains("the mount is unaffected").contains("no room for a scratch cache");
        assertNoScratchLeft("the scratch store is gone");
    }

    @Test
    void aBackendWarmUpThatFailsIsReportedAndTheWarmUpEnds() throws Exception {
        BackendWarmUp broken = stop -> {
            throw new IllegalStateException("synthetic backend broke");
        };
        try (WarmUp warmUp = WarmUp.start(options(), tmp, Duration.ZERO, () -> 0, List.of(broken), null)) {
            assertThat(warmUp.await(Duration.ofMinutes(2))).isTrue();
            assertThat(warmUp.failure()).hasMessageContaining("synthetic backend broke");
        }
        assertThat(problems).singleElement().asString().contains("the mount is unaffected").contains("synthetic backend broke");
        assertNoScratchLeft("the scratch store is gone");
    }

    @Test
    void beginsOnlyOnceTheMountHasBeenIdleLongEnough() throws Exception {
        AtomicLong mountRequests = new AtomicLong();
        // Idle means 3 s without a request: a test thread stalled that long on a busy machine is unlikely.
        try (WarmUp warmUp = WarmUp.start(options(), tmp, Duration.ofSeconds(3), mountRequests::get)) {
            // A busy mount: a request every 10 ms for 1.5 s.
            for (int i = 0; i < 150; i++) {
                Thread.sleep(10);
                mountRequests.incrementAndGet();
            }
            assertThat(warmUp.begun()).as("begun while the mount was busy").isFalse();
            assertThat(warmUp.requests()).isZero();
            assertNoScratchLeft("no scratch store yet");
            assertThat(warmUp.await(Duration.ofMinutes(2))).isTrue();
            assertThat(warmUp.begun()).isTrue();
            assertThat(warmUp.failure()).isNull();
            assertThat(warmUp.requests()).isGreaterThan(FULL_RUN_AT_LEAST);
        }
    }

    @Test
    void closedWhileWaitingForAnIdleMountItEndsAtOnce() throws Exception {
        WarmUp warmUp = WarmUp.start(options(), tmp, Duration.ofHours(1), () -> 0);
        long start = System.nanoTime();
        warmUp.close();
        assertThat(warmUp.await(Duration.ZERO)).isTrue();
        assertThat(System.nanoTime() - start).as("not the hour it was waiting for").isLessThan(Duration.ofSeconds(30).toNanos());
        assertThat(warmUp.begun()).isFalse();
        assertThat(warmUp.failure()).isNull();
        assertNoScratchLeft("the scratch store is gone");
    }

    @Test
    void closeStopsItMidwayAndDeletesTheScratchStore() throws Exception {
        // The warm-up waits in its check of the mount's counter once it has served 500 requests,
        // until the test has asked it to stop: it ends midway whatever the machine's speed.
        CountDownLatch midway = new CountDownLatch(1);
        CountDownLatch stopAsked = new CountDownLatch(1);
        AtomicReference<WarmUp> started = new AtomicReference<>();
        LongSupplier mountRequests = byServed(started, served -> {
            if (served > 500) {
                midway.countDown();
                try {
                    stopAsked.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            return 0;
        });
        WarmUp warmUp = WarmUp.start(options(), tmp, Duration.ZERO, mountRequests);
        started.set(warmUp);
        assertThat(midway.await(1, java.util.concurrent.TimeUnit.MINUTES)).isTrue();
        warmUp.requestStop();
        stopAsked.countDown();
        warmUp.close();
        assertThat(warmUp.await(Duration.ZERO)).as("ended by close").isTrue();
        assertThat(warmUp.failure()).isNull();
        assertThat(warmUp.steppedAside()).isFalse();
        assertThat(warmUp.requests()).as("ended early").isBetween(500L, (long) FULL_RUN_AT_LEAST);
        assertThat(problems).isEmpty();
        assertNoScratchLeft("the scratch store is gone");
    }

    @Test
    void aScratchParentItCannotUseEndsItWithOneProblemLine() throws Exception {
        Path notADirectory = Files.writeString(tmp.resolve("file"), "x");
        try (WarmUp warmUp = WarmUp.start(options(), notADirectory, Duration.ZERO, () -> 0)) {
            assertThat(warmUp.await(Duration.ofMinutes(1))).isTrue();
            assertThat(warmUp.failure()).isNotNull();
        }
        assertThat(problems).singleElement().asString()
                .startsWith("warm-up stopped (the mount is unaffected): ").contains(notADirectory.toString());
        assertThat(Files.readString(notADirectory)).isEqualTo("x");
    }

    @Test
    void itsLongFileIsReadAheadOnTheScratchStoresDirectReadThreadsAsAMountsBigFilesAre() throws Exception {
        String address = "local://" + tmp.resolve("store").toUri().getRawPath() + "?fsync=false";
        try (Store store = WarmUp.openScratchStore(address)) {
            byte[] data = new byte[WarmUp.STREAM_FILE_BYTES];
            new Random(3).nextBytes(data);
            B3Digest digest;
            try (BlobWriter writer = store.blobs().create()) {
                writer.write(data, 0, data.length);
                digest = writer.finish();
            }
            // Threads of other stores some earlier test closed may still be ending: only a new one counts.
            Set<Thread> before = threadsNamed("castore-direct-read");
            // From start to end in 128 KiB reads, as the warm-up's simulated kernel asks.
            try (BlobReader reader = store.blobs().open(digest).orElseThrow()) {
                ByteBuffer buffer = ByteBuffer.allocate(128 << 10);
                long position = 0;
                for (int n; (n = reader.read(position, buffer.clear())) > 0; ) {
                    assertThat(buffer.flip()).isEqualTo(ByteBuffer.wrap(data, (int) position, n));
                    position += n;
                }
                assertThat(position).isEqualTo(data.length);
            }
            assertThat(threadsNamed("castore-direct-read")).as("this store's read-ahead threads").isNotEmpty()
                    .anyMatch(t -> !before.contains(t));
        }
    }

    private static Set<Thread> threadsNamed(String prefix) {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().startsWith(prefix)).collect(Collectors.toSet());
    }

    /**
     * A mount's request counter as a function of how many requests the warm-up in {@code started}
     * has served (0 before it is set): tests make the mount "busy" at a point of the warm-up's work.
     */
    private static LongSupplier byServed(AtomicReference<WarmUp> started, LongUnaryOperator count) {
        return () -> {
            WarmUp w = started.get();
            return count.applyAsLong(w == null ? 0 : w.requests());
        };
    }

    private static Map<Path, Long> filesAndSizes(Path directory) throws IOException {
        try (var files = Files.walk(directory)) {
            return files.filter(Files::isRegularFile).collect(Collectors.toMap(f -> f, f -> f.toFile().length()));
        }
    }

    private void assertNoScratchLeft(String what) throws Exception {
        try (var left = Files.list(tmp)) {
            assertThat(left).as(what).isEmpty();
        }
    }
}

package castore.fs;

import castore.fuse.server.KernelSimulator;
import castore.io.FileTrees;
import castore.io.LowPriority;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.Name;
import castore.model.SymlinkNode;
import castore.service.BackendWarmUp;
import castore.service.BlobWriter;
import castore.service.ClosurePutter;
import castore.service.ScratchLayer;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import com.sun.management.HotSpotDiagnosticMXBean;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.UserPrincipal;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.LongSupplier;
import java.util.stream.IntStream;

/**
 * The mount's JIT warm-up. A fresh JVM runs a mount's first few thousand requests in the
 * interpreter while it compiles their code: a cold {@code find} over 63k entries takes a quarter
 * longer on a fresh mount than on one that has served before (docs/performance.md, "Session 9").
 * Once the mount has been idle a while, this serves a synthetic tree from a scratch store through
 * the same {@code FuseServer} and {@link CastoreFileSystem} code (walks, lookups, stats, reads,
 * xattrs, forgets), all on one platform thread at the lowest CPU priority (the scratch store's
 * read-ahead threads, which that thread starts, inherit it), so the JIT compiles the request path
 * while the mount is idle and real requests find it compiled. Then it sends the mount itself
 * requests through the kernel ({@link MountRoundTrip}: statfs of the mountpoint) for the
 * /dev/fuse transport's own code, which the simulator does not run, and then runs the warm-ups
 * the mounted store's backends offer ({@link BackendWarmUp}: S3's runs the AWS SDK on an
 * in-memory S3).
 *
 * <p>It reads nothing of the mounted store (its round trips ask the filesystem for statfs only).
 * The scratch store (about 16 MiB) lives in a temporary directory that the warm-up deletes when
 * it ends, is closed, fails, or the JVM exits; one left by a process that was killed is deleted
 * by the next warm-up of the same user. A failure ends the warm-up with one line to the mount's
 * problem log and changes nothing else.
 */
public final class WarmUp implements AutoCloseable {
    /** One mount's negotiated max_write: READs of up to 1 MiB. */
    private static final int MAX_WRITE = 1 << 20;
    private static final int DIRECTORIES = 24;
    private static final int FILES_PER_DIRECTORY = 100;
    private static final int DISTINCT_SMALL_BLOBS = 600;
    private static final int PASSES = 3;
    /** Walks of names only after the passes: with them, each directory is loaded 3 + 8 times, 275 loads in all. */
    private static final int NAME_WALKS = 8;
    /**
     * Requests sent to the mount through the kernel: past C1's threshold (about 200 calls) for
     * the transport's reading and replying methods. Without them a cold walk of a fresh mount
     * compiled 33 of those methods as it went, with them 6 (docs/performance.md, "Session 24").
     */
    static final int ROUND_TRIPS = 1000;
    /** Multi-chunk files (2-3 MiB: several chunks of 128-512 KiB). */
    private static final int BIG_FILES = 2;
    /**
     * A file of about 24 chunks, read from start to end twice per pass in the kernel's 128 KiB
     * READs: a local store serves a stream over a blob of more than 12 chunks from its O_DIRECT
     * read-ahead (castore.io.DirectStream), whose code a mount's first cold GiB otherwise
     * compiles as it goes (C1 was 140-160 ms of a cold 1 GiB read: docs/performance.md, "Session 15").
     */
    static final int STREAM_FILE_BYTES = 6 << 20;
    private static final int STREAM_READS = 2;
    /** Random 4 KiB reads per big file and pass: each may load a whole chunk. */
    private static final int RANDOM_READS = 20;
    /** Directories d0 to d5 nest, each in the one before. */
    private static final int CHAIN = 6;
    private static final String ROOT = "warm-up";
    private static final String SCRATCH_PREFIX = "castore-warm-up-";
    /** In the scratch directory, locked while the warm-up uses it (its pid inside, for people): a later warm-up tells an abandoned one by it. */
    private static final String OWNER_FILE = "owner.pid";
    /** How long an exiting JVM waits for the warm-up to stop and delete its scratch store. */
    private static final long EXIT_WAIT_MILLIS = 2_000;
    private static final String BLOB_XATTR = "user.tvix.castore.blob.digest";
    private static final String DIRECTORY_XATTR = "user.tvix.castore.directory.digest";
    private static final String SYNTHETIC_PROBLEM = "the synthetic filesystem reported: ";

    /** Real requests after which the warm-up steps aside: real work then compiles the code itself. */
    static final int STEP_ASIDE_AFTER = 16;
    /** How often the warm-up looks at the mount's request count while it waits for the mount to be idle. */
    private static final long IDLE_POLL_MILLIS = 50;

    private final FsOptions options;
    /**
     * The layers over the mounted store's backend (its cache, if it has one: {@link Store#scratchLayers()}).
     * The synthetic tree is served through layers like them, kept in the scratch directory, so
     * their request path (a cache's disk tier reads, Directory decoding, streams over fetched
     * chunks) is compiled too: a warm walk of a fresh mount over a cached daemon compiled about 30
     * of the cache's methods as it went (docs/performance.md, Remote mount, "Session 43" and "Session 44").
     */
    private final List<ScratchLayer> layers;
    /** The mounted store's own warm-ups (its backends' request paths), run after the synthetic tree. */
    private final List<BackendWarmUp> backends;
    /** Sends the mount one request through the kernel; null: none (no mount, as in the AOT training). */
    private final MountRoundTrip roundTrip;
    /** Round trips begun so far: the mount counts them as requests, and they must not make the warm-up step aside. */
    private volatile long ownRequests;
    private final Path scratchParent;
    private final LongSupplier mountRequests;
    private final Duration idleBefore;
    /** The mount's request count when the warm-up began to serve (after the idle wait). */
    private volatile long requestsAtStart;
    private final CountDownLatch done = new CountDownLatch(1);
    private final Thread thread;
    private volatile boolean stopping;
    private volatile Throwable failure;
    /** Requests the synthetic filesystem received, once its session has ended. */
    private volatile long requests;
    private volatile Path scratch;
    /** The first problem the synthetic filesystem reported (it must report none). */
    private final AtomicReference<String> syntheticProblem = new AtomicReference<>();
    private volatile KernelSimulator kernel;
    private volatile boolean steppedAside;
    private volatile boolean begun;

    private WarmUp(FsOptions options, Path scratchParent, Duration idleBefore, LongSupplier mountRequests,
                   List<BackendWarmUp> backends, MountRoundTrip roundTrip, List<ScratchLayer> layers) {
        this.options = options;
        this.layers = List.copyOf(layers);
        this.backends = List.copyOf(backends);
        this.roundTrip = roundTrip;
        this.scratchParent = scratchParent;
        this.mountRequests = mountRequests;
        this.idleBefore = idleBefore;
        this.thread = Thread.ofPlatform().name("castore-warm-up").daemon().unstarted(this::run);
    }

    /**
     * Runs when the JVM exits while the warm-up still runs (an exit close() never sees): asks it
     * to stop and gives it a moment to delete its scratch store. One it could not delete keeps its
     * owner file, and the next warm-up deletes it (only the warm-up's thread deletes: another
     * deleting under it could see the store's directories made again, without that file).
     */
    private final Thread exitHook = new Thread(() -> {
        stopping = true;
        try {
            done.await(EXIT_WAIT_MILLIS, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }, "castore-warm-up-exit");

    /**
     * Starts warming up the code a mount with {@code options} runs (listing the mount root, xattrs,
     * read-ahead and open mode as they are set there), with its scratch store in a new directory
     * under {@code scratchParent}, once the mount has been idle for {@code idleBefore}: its
     * request count, as told by {@code mountRequests}, unchanged that long. A mount used at once
     * is never slowed by it. It steps aside (ends early) once the mount has received more than
     * {@value #STEP_ASIDE_AFTER} requests since it began: from then on the mount's own requests
     * get the JIT's attention, and a warm-up would only compete with them. It leaves the heap
     * its allocations grew to the mount's first requests (no collection of its own).
     */
    public static WarmUp start(FsOptions options, Path scratchParent, Duration idleBefore, LongSupplier mountRequests) {
        return start(options, scratchParent, idleBefore, mountRequests, List.of(), null);
    }

    /**
     * As above, then sends the mount {@value #ROUND_TRIPS} requests through {@code roundTrip}
     * (none if it is null), which count in {@code mountRequests} but not as the mount getting
     * busy, then runs each of {@code backends} (the mounted store's {@link Store#warmUps()}) on
     * the same thread, until it ends or the warm-up is stopped or steps aside.
     */
    public static WarmUp start(FsOptions options, Path scratchParent, Duration idleBefore, LongSupplier mountRequests,
                               List<BackendWarmUp> backends, MountRoundTrip roundTrip) {
        return start(options, scratchParent, idleBefore, mountRequests, backends, roundTrip, List.of());
    }

    /**
     * As above, for a mounted store with {@code layers} over its backend ({@link Store#scratchLayers()}):
     * the synthetic tree is served through layers like them.
     */
    public static WarmUp start(FsOptions options, Path scratchParent, Duration idleBefore, LongSupplier mountRequests,
                               List<BackendWarmUp> backends, MountRoundTrip roundTrip, List<ScratchLayer> layers) {
        WarmUp warmUp = new WarmUp(options, scratchParent, idleBefore, mountRequests, backends, roundTrip, layers);
        Runtime.getRuntime().addShutdownHook(warmUp.exitHook);
        warmUp.thread.start();
        return warmUp;
    }

    /** Waits for the warm-up to end; true if it ended within {@code timeout}. */
    public boolean await(Duration timeout) throws InterruptedException {
        return done.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** What ended the warm-up early, or null (still running, finished, or stopped by {@link #close()}). */
    public Throwable failure() {
        return failure;
    }

    /** True if it ended early because the mount got busy. */
    public boolean steppedAside() {
        return steppedAside;
    }

    /** FUSE requests the synthetic filesystem's server has received so far. */
    public long requests() {
        KernelSimulator k = kernel;
        return k == null ? requests : k.requestsServed();
    }

    /**
     * Stops the warm-up at its next request and waits up to 10 s for it to delete its scratch
     * store. (One it could not delete in time, on a CPU busy with other work, keeps its owner file
     * and is deleted by the next warm-up.)
     */
    @Override
    public void close() throws InterruptedException {
        requestStop();
        try {
            done.await(10, TimeUnit.SECONDS);
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(exitHook);
            } catch (IllegalStateException exiting) {
                // the JVM is exiting: the hook runs anyway
            }
        }
    }

    private void run() {
        FileChannel owner = null;
        try {
            LowPriority.lowerCurrentThread();
            awaitIdleMount();
            LowPriority.beforeWork(); // carriers may have retired while the mount was busy
            Path directory = Files.createTempDirectory(scratchParent, SCRATCH_PREFIX);
            scratch = directory;
            // Locked while this process uses the directory: the kernel drops the lock when the
            // process dies, whatever pid namespace the next warm-up looks from.
            owner = FileChannel.open(directory.resolve(OWNER_FILE), StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
            owner.lock();
            owner.write(ByteBuffer.wrap(Long.toString(ProcessHandle.current().pid()).getBytes(StandardCharsets.US_ASCII)));
            deleteAbandoned(scratchParent, directory);
            // A local store whatever the mount's store is: the filesystem's and the local store's code
            // are what every mount runs. (A scratch gRPC server and client cost 2.5 s of CPU for 8% on
            // a remote mount's first GiB: docs/performance.md, "Session 9".)
            String address = "local://" + directory.resolve("store").toUri().getRawPath() + "?fsync=false";
            try (KeptHeap heap = KeptHeap.keep()) {
                try (Store store = openScratch(address, directory)) {
                    List<SyntheticDirectory> tree = fill(store);
                    serve(store, tree);
                }
                roundTrips();
                // A backend whose client code is heavy to compile (S3: the AWS SDK) warms it on its own
                // synthetic data, never the mounted store's.
                for (BackendWarmUp backend : backends) {
                    checkStopping();
                    backend.warmUp(this::mustStop);
                }
                checkStopping();
                heap.collect();
            }
        } catch (Stopped stopped) {
            // closed, or the mount got busy: nothing to report
        } catch (Throwable t) {
            failure = t;
            String problem = syntheticProblem.get();
            String why = problem != null ? SYNTHETIC_PROBLEM + problem
                    : t.getMessage() != null ? t.getMessage() : t.toString();
            options.problems().accept("warm-up stopped (the mount is unaffected): " + why);
        } finally {
            if (owner != null) {
                try {
                    owner.close(); // releases the lock
                } catch (IOException ignored) {
                    // the directory goes next anyway
                }
            }
            Path left = scratch;
            if (left != null && !FileTrees.deleteAsFarAsPossible(left)) {
                options.problems().accept("warm-up: could not delete its scratch store " + left);
            }
            scratch = null;
            done.countDown();
        }
    }

    /**
     * The heap kept at its size while open: MaxHeapFreeRatio (a manageable flag, set through
     * HotSpotDiagnosticMXBean) raised to 100, and put back at close. For the whole warm-up, not
     * only its closing collection: a concurrent cycle during it (the code cache's growth starts
     * one) shrank the heap at its remark, 384 to 120 MB in a remote mount, and the mount's first
     * workload then paid young collections and a concurrent cycle of its own (a warm read of
     * 50,000 files over gRPC: 270 ms of GC threads against 130 over S3, whose remark had left
     * 176 MB; docs/performance.md, "Session 36"). Where the flag cannot be set, nothing is kept
     * and {@link #collect} does nothing (a full collection then would shrink the heap).
     */
    static final class KeptHeap implements AutoCloseable {
        private final HotSpotDiagnosticMXBean vm;
        private final String ratio;

        private KeptHeap(HotSpotDiagnosticMXBean vm, String ratio) {
            this.vm = vm;
            this.ratio = ratio;
        }

        static KeptHeap keep() {
            HotSpotDiagnosticMXBean vm = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class);
            try {
                String ratio = vm.getVMOption("MaxHeapFreeRatio").getValue();
                vm.setVMOption("MaxHeapFreeRatio", "100");
                return new KeptHeap(vm, ratio);
            } catch (IllegalArgumentException | SecurityException notSettable) {
                return new KeptHeap(vm, null);
            }
        }

        /**
         * Collects the warm-up's garbage while the mount is idle, keeping the heap at its size:
         * the mount's first burst of requests then allocates into an empty young generation, in
         * memory already touched. Left alone, that burst filled the rest of a young generation
         * the warm-up had nearly filled, and paid a young collection (13-28 ms) or about 6k first
         * touches of fresh heap pages in a cold find of 63k entries (166-201 ms; 149-150 with
         * this, docs/performance.md "Session 31"). A plain System.gc() shrinks the heap to what it
         * holds (G1 gives back all above MaxHeapFreeRatio free), and that burst then paid young
         * collections copying its new inodes (a cold lstat of 63k entries spent 490-730 ms of
         * user CPU instead of 330-440, session 9). The launcher's G1PeriodicGCInterval still
         * gives the memory back once the mount has been idle that long.
         */
        void collect() {
            if (ratio != null) {
                System.gc();
            }
        }

        @Override
        public void close() {
            if (ratio != null) {
                vm.setVMOption("MaxHeapFreeRatio", ratio);
            }
        }
    }

    /**
     * The scratch store, opened as a mount opens its store (direct reads on): sequential readers
     * of its long file then take the O_DIRECT read-ahead path a mount's big files take.
     */
    static Store openScratchStore(String address) throws IOException {
        return Stores.open(address, StoreOptions.DEFAULT.withDirectReads(true));
    }

    /** The scratch store at {@code address}, behind layers like the mounted store's (their files under {@code directory}). */
    private Store openScratch(String address, Path directory) throws IOException {
        return Store.layeredLike(layers, openScratchStore(address), directory.resolve("layers"));
    }

    /** Asks the warm-up to stop at its next check, without waiting. */
    void requestStop() {
        stopping = true;
    }

    /** Returns once the mount's request count has not changed for {@link #idleBefore}; Stopped if closed meanwhile. */
    private void awaitIdleMount() throws InterruptedException {
        long seen = mountRequests.getAsLong();
        long quietSince = System.nanoTime();
        while (System.nanoTime() - quietSince < idleBefore.toNanos()) {
            if (stopping) {
                throw new Stopped();
            }
            Thread.sleep(IDLE_POLL_MILLIS);
            long now = mountRequests.getAsLong();
            if (now != seen) {
                seen = now;
                quietSince = System.nanoTime();
            }
        }
        requestsAtStart = seen;
        begun = true;
    }

    /** True once the warm-up has begun (the mount was idle long enough). */
    public boolean begun() {
        return begun;
    }

    /**
     * Deletes scratch directories of warm-ups that ended without cleaning up (their process was
     * killed): those beside {@code own}, owned by the same user, whose owner file is more than a
     * minute old (not one being set up) and not locked. Others' directories, live ones, and ones
     * without an owner file are left alone. {@code own} itself is never opened: closing any
     * descriptor of a file drops the process's POSIX locks on it.
     */
    private static void deleteAbandoned(Path parent, Path own) {
        try (DirectoryStream<Path> dirs = Files.newDirectoryStream(parent, SCRATCH_PREFIX + "*")) {
            UserPrincipal user = Files.getOwner(own, LinkOption.NOFOLLOW_LINKS);
            long setUpBefore = System.currentTimeMillis() - 60_000;
            for (Path dir : dirs) {
                try {
                    Path ownerFile = dir.resolve(OWNER_FILE);
                    if (dir.equals(own) || !Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)
                            || !Files.getOwner(dir, LinkOption.NOFOLLOW_LINKS).equals(user)
                            || !Files.isRegularFile(ownerFile, LinkOption.NOFOLLOW_LINKS)
                            || Files.getLastModifiedTime(ownerFile, LinkOption.NOFOLLOW_LINKS).toMillis() > setUpBefore) {
                        continue;
                    }
                    boolean abandoned;
                    try (FileChannel channel = FileChannel.open(ownerFile, StandardOpenOption.WRITE);
                         FileLock lock = channel.tryLock()) {
                        abandoned = lock != null;
                    } catch (OverlappingFileLockException ours) {
                        abandoned = false; // this JVM's own warm-up
                    }
                    if (abandoned) {
                        FileTrees.deleteAsFarAsPossible(dir);
                    }
                } catch (IOException | UncheckedIOException e) {
                    // not ours to judge: leave it
                }
            }
        } catch (IOException | UncheckedIOException e) {
            // nothing to sweep
        }
    }

    // ---- the synthetic tree ----

    /** A directory of the synthetic tree: its path below the root and its entries by kind. */
    private record SyntheticDirectory(List<String> path, List<String> files, List<String> symlinks, List<String> bigFiles,
                                      List<String> streamFiles) { }

    /**
     * Stores the tree: {@value #DIRECTORIES} directories (some nested) of {@value #FILES_PER_DIRECTORY}
     * small files each (0 B to 48 KiB, many distinct contents, some identical), a few symlinks,
     * two multi-chunk files and one long file ({@value #STREAM_FILE_BYTES} bytes) at the top;
     * registers it as root {@value #ROOT}.
     */
    private List<SyntheticDirectory> fill(Store store) throws IOException {
        Random random = new Random(20261126);
        List<B3Digest> digests = new ArrayList<>();
        List<Integer> sizes = new ArrayList<>();
        for (int i = 0; i < DISTINCT_SMALL_BLOBS; i++) {
            if (i % 50 == 0) {
                checkStopping();
            }
            int size = switch (i % 8) {
                case 0 -> random.nextInt(64);
                case 1, 2, 3, 4, 5 -> random.nextInt(4096);
                case 6 -> 4096 + random.nextInt(12 * 1024);
                default -> 16 * 1024 + random.nextInt(32 * 1024);
            };
            digests.add(putBlob(store, bytes(random, size)));
            sizes.add(size);
        }
        List<SyntheticDirectory> tree = new ArrayList<>();
        ClosurePutter closure = store.directories().putClosure();
        Directory.Builder top = Directory.builder();
        // d0 holds d1, which holds d2, ... down to d5; d6 and up sit in the top directory.
        // Built deepest first, as a closure is put: leaves before their parents.
        Directory child = null;
        for (int d = DIRECTORIES - 1; d >= 0; d--) {
            checkStopping();
            var files = new ArrayList<String>();
            var symlinks = new ArrayList<String>();
            Directory.Builder builder = Directory.builder();
            for (int f = 0; f < FILES_PER_DIRECTORY; f++) {
                String name = "file-" + f + (f % 3 == 0 ? ".txt" : ".dat");
                int blob = random.nextInt(DISTINCT_SMALL_BLOBS);
                builder.add(name, new FileNode(digests.get(blob), sizes.get(blob), f % 17 == 0));
                files.add(name);
            }
            for (int l = 0; l < 4; l++) {
                String name = "link-" + l;
                // Three to files of the directory, one dangling.
                builder.add(name, SymlinkNode.of(l == 3 ? "../no-such-target" : files.get(3 * l + 1)));
                symlinks.add(name);
            }
            boolean inChain = d < CHAIN;
            if (child != null) {
                builder.add("d" + (d + 1), node(child));
            }
            Directory directory = builder.build();
            closure.put(directory);
            List<String> path = inChain ? IntStream.rangeClosed(0, d).mapToObj(i -> "d" + i).toList() : List.of("d" + d);
            tree.add(new SyntheticDirectory(path, files, symlinks, List.of(), List.of()));
            child = inChain && d > 0 ? directory : null;
            if (!inChain || d == 0) {
                top.add("d" + d, node(directory));
            }
        }
        var bigFiles = new ArrayList<String>();
        for (int b = 0; b < BIG_FILES; b++) {
            checkStopping();
            byte[] data = bytes(random, (2 << 20) + random.nextInt(1 << 20));
            String name = "big-" + b + ".bin";
            top.add(name, new FileNode(putBlob(store, data), data.length, false));
            bigFiles.add(name);
        }
        checkStopping();
        byte[] stream = bytes(random, STREAM_FILE_BYTES);
        top.add("stream.bin", new FileNode(putBlob(store, stream), stream.length, false));
        Directory topDirectory = top.build();
        closure.put(topDirectory);
        closure.finish();
        tree.add(new SyntheticDirectory(List.of(), List.of(), List.of(), bigFiles, List.of("stream.bin")));
        store.roots().put(Name.of(ROOT), node(topDirectory));
        return tree;
    }

    private static DirectoryNode node(Directory directory) {
        return new DirectoryNode(directory.digest(), directory.size());
    }

    private static B3Digest putBlob(Store store, byte[] data) throws IOException {
        try (BlobWriter writer = store.blobs().create()) {
            writer.write(data, 0, data.length);
            return writer.finish();
        }
    }

    private static byte[] bytes(Random random, int size) {
        byte[] b = new byte[size];
        random.nextBytes(b);
        return b;
    }

    // ---- the requests ----

    private void serve(Store store, List<SyntheticDirectory> tree) throws IOException {
        // The mount's options, but: no prefetch hook, nothing told of accesses (a read trace is
        // the workload's), problems collected (the synthetic store has none), and no page-cache
        // push (its copying thread would run at normal priority).
        FsOptions here = options.withRootEntered(root -> { }).withAccessed(node -> { }).withFeedKernelCache(false)
                .withProblems(line -> syntheticProblem.compareAndSet(null, line));
        var fs = new CastoreFileSystem(store, here);
        try (KernelSimulator simulator = KernelSimulator.start(fs, MAX_WRITE)) {
            kernel = simulator;
            Random random = new Random(7);
            for (int pass = 0; pass < PASSES; pass++) {
                var lookups = new HashMap<Long, Long>();
                simulator.getattr(1);
                if (options.listRoot()) {
                    simulator.readDirectory(1, 4096);
                }
                simulator.statfs(1);
                long top = lookup(simulator, lookups, 1, ROOT);
                for (SyntheticDirectory directory : tree) {
                    long node = top;
                    for (String component : directory.path()) {
                        node = lookup(simulator, lookups, node, component);
                    }
                    serveDirectory(simulator, lookups, node, directory, random);
                }
                forgetAll(simulator, lookups, pass % 2 == 0);
                requireNothingHeld(fs);
            }
            // Walks of names only: the passes load each directory once per pass, under the JIT's
            // threshold, so a cold find over thousands of directories compiled the loading and
            // decoding of a directory as it went (docs/performance.md, Mount, "Session 23").
            for (int walk = 0; walk < NAME_WALKS; walk++) {
                var lookups = new HashMap<Long, Long>();
                long top = lookup(simulator, lookups, 1, ROOT);
                for (SyntheticDirectory directory : tree) {
                    checkStopping();
                    long node = top;
                    for (String component : directory.path()) {
                        node = lookup(simulator, lookups, node, component);
                    }
                    for (long found : simulator.readDirectoryPlus(node, 4096)) {
                        lookups.merge(found, 1L, Long::sum);
                    }
                    simulator.readDirectory(node, 4096);
                }
                forgetAll(simulator, lookups, walk % 2 == 0);
                requireNothingHeld(fs);
            }
            simulator.destroy();
            throwIfSyntheticProblem(); // one reported during the last directory

        } finally {
            KernelSimulator k = kernel;
            if (k != null) {
                requests = k.requestsServed();
            }
            kernel = null;
        }
    }

    /** Everything given back: the filesystem must hold nothing (as after drop_caches). */
    private static void requireNothingHeld(CastoreFileSystem fs) {
        if (fs.inodeCount() != 0 || fs.openFileCount() != 0) {
            throw new IllegalStateException("the synthetic filesystem still holds " + fs.inodeCount()
                    + " inodes and " + fs.openFileCount() + " open files after every lookup was forgotten");
        }
    }

    /** What a walk, a stat of every entry and a read of every file send for one directory. */
    private void serveDirectory(KernelSimulator kernel, Map<Long, Long> lookups, long node, SyntheticDirectory directory,
                                Random random) throws IOException {
        checkStopping();
        kernel.getattr(node);
        for (long found : kernel.readDirectoryPlus(node, 4096)) {
            lookups.merge(found, 1L, Long::sum);
        }
        kernel.readDirectory(node, 4096);
        if (options.xattrs()) {
            kernel.getxattr(node, DIRECTORY_XATTR, 0);
            kernel.getxattr(node, DIRECTORY_XATTR, 256);
        }
        kernel.access(node, 4 | 1);
        if (kernel.lookup(node, "no-such-name") != 0) {
            throw new IllegalStateException("a name that is not there was found");
        }
        for (int f = 0; f < directory.files().size(); f++) {
            checkStopping();
            long file = lookup(kernel, lookups, node, directory.files().get(f));
            kernel.getattr(file);
            if (f % 2 == 0) {
                kernel.readFile(file, 128 << 10);
            }
            if (options.xattrs() && random.nextInt(4) == 0) {
                kernel.listxattr(file, 0);
                kernel.listxattr(file, 256);
                kernel.getxattr(file, BLOB_XATTR, 256);
            }
        }
        for (String name : directory.symlinks()) {
            kernel.readlink(lookup(kernel, lookups, node, name));
        }
        for (String name : directory.bigFiles()) {
            checkStopping();
            long file = lookup(kernel, lookups, node, name);
            long size = kernel.readFile(file, MAX_WRITE);
            checkStopping();
            kernel.readFile(file, 128 << 10);
            for (int batch = 0; batch < RANDOM_READS / 20; batch++) {
                checkStopping();
                long[] offsets = new long[20];
                for (int i = 0; i < offsets.length; i++) {
                    offsets[i] = random.nextLong(size) & ~4095L;
                }
                kernel.readAt(file, offsets, 4096);
            }
        }
        for (String name : directory.streamFiles()) {
            long file = lookup(kernel, lookups, node, name);
            for (int r = 0; r < STREAM_READS; r++) {
                checkStopping();
                kernel.readFile(file, 128 << 10);
            }
        }
    }

    private long lookup(KernelSimulator kernel, Map<Long, Long> lookups, long parent, String name) throws IOException {
        long node = kernel.lookup(parent, name);
        if (node == 0) {
            throw new IllegalStateException("synthetic entry " + name + " not found");
        }
        lookups.merge(node, 1L, Long::sum);
        return node;
    }

    /** Gives back every lookup, as the kernel does when it drops its caches: one FORGET each, or in batches. */
    private void forgetAll(KernelSimulator kernel, Map<Long, Long> lookups, boolean batched) throws IOException {
        if (!batched) {
            for (var e : lookups.entrySet()) {
                kernel.forget(e.getKey(), e.getValue());
            }
            return;
        }
        long[] nodes = new long[256];
        long[] counts = new long[256];
        int n = 0;
        for (var e : lookups.entrySet()) {
            nodes[n] = e.getKey();
            counts[n++] = e.getValue();
            if (n == nodes.length) {
                kernel.batchForget(nodes, counts);
                n = 0;
            }
        }
        if (n > 0) {
            kernel.batchForget(Arrays.copyOf(nodes, n), Arrays.copyOf(counts, n));
        }
    }

    private void checkStopping() {
        throwIfSyntheticProblem();
        if (mustStop()) {
            throw new Stopped();
        }
    }

    /**
     * Sends the mount its round trips, each counted before it is sent (so the mount's count of
     * requests never runs ahead of the warm-up's own).
     */
    private void roundTrips() throws IOException {
        if (roundTrip == null) {
            return;
        }
        for (int i = 0; i < ROUND_TRIPS; i++) {
            if (i % 100 == 0) {
                checkStopping();
            }
            ownRequests++; // only this thread writes it
            try {
                roundTrip.run();
            } catch (IOException e) {
                if (stopping) {
                    throw new Stopped(); // the mount is going away: not a problem to report
                }
                throw e;
            }
        }
    }

    /** True once the warm-up is asked to stop or the mount has got busy (then it has stepped aside). */
    private boolean mustStop() {
        if (stopping) {
            return true;
        }
        if (mountRequests.getAsLong() - requestsAtStart - ownRequests > STEP_ASIDE_AFTER) {
            steppedAside = true;
            return true;
        }
        return false;
    }

    private void throwIfSyntheticProblem() {
        String problem = syntheticProblem.get();
        if (problem != null) {
            throw new IllegalStateException(SYNTHETIC_PROBLEM + problem);
        }
    }

    /**
     * Sends the mount one request through the kernel and waits for its answer (a mount's
     * {@code FuseMount::roundTrip}: a statfs of the mountpoint). Exactly one request each: the
     * warm-up does not take them for the mount getting busy.
     */
    @FunctionalInterface
    public interface MountRoundTrip {
        void run() throws IOException;
    }

    /** Thrown out of the work when {@link #close()} asks it to stop or the mount got busy. */
    private static final class Stopped extends RuntimeException {
        Stopped() {
            super(null, null, false, false);
        }
    }
}

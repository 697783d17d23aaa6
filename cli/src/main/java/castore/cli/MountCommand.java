package castore.cli;

import castore.fs.CastoreFileSystem;
import castore.fs.CopyAhead;
import castore.fs.FsOptions;
import castore.fs.PlainCopies;
import castore.fs.ReadTrace;
import castore.fs.WarmUp;
import castore.model.B3Digest;
import castore.model.DirectoryNode;
import castore.model.InvalidDataException;
import castore.model.Node;
import castore.service.cache.CacheConfig;
import castore.service.cache.Prefetcher;
import castore.fuse.transport.FuseMount;
import castore.fuse.transport.MountOptions;
import castore.fuse.transport.MountpointServedException;
import castore.service.Store;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code castore mount}: serves the store read-only at a mountpoint, in the foreground, until it
 * is unmounted (umount, fusermount3 -u) or the process gets SIGINT/SIGTERM; then exits 0.
 */
@Command(name = "mount", sortOptions = false,
        description = {
            "Mount the store read-only at MOUNTPOINT: every root is an entry of MOUNTPOINT, fetched lazily "
                    + "and cached by the kernel. Runs in the foreground and prints one line once the mount is "
                    + "ready; Ctrl-C, SIGTERM or an unmount (umount / fusermount3 -u) ends it with exit code 0.",
            "If the process is killed, detach the stale mount with 'umount -l MOUNTPOINT' or "
                    + "'fusermount3 -uz MOUNTPOINT'."})
final class MountCommand implements Callable<Integer> {
    private static final long MAX_READ_AHEAD = 64L << 20;

    @Mixin
    StoreMixin store;

    @Option(names = "--list-root", description = "Allow listing MOUNTPOINT itself (streams every root name). "
            + "Without it, listing the mount root fails with EPERM; roots are reached by name.")
    boolean listRoot;

    @Option(names = "--no-cache-push", description = "After a random read, do not push the rest of the chunk read "
            + "into the kernel's page cache (it is pushed by default: later reads nearby then need no request).")
    boolean noCachePush;

    /** The warm-up begins once the mount has had no request for this long (docs/filesystem.md, "Warm-up"). */
    private static final Duration WARM_UP_WHEN_IDLE_FOR = Duration.ofSeconds(1);
    /** How long the ready line waits for the store's first answers (StoreContact); past it the mount is ready anyway. */
    private static final Duration CONTACT_PATIENCE = Duration.ofSeconds(2);

    @Option(names = "--no-warm-up", description = "Do not warm up: by default, once the mount has been idle for a second, "
            + "castore serves a small synthetic tree to itself at the lowest CPU priority (0.4-1.3 s of CPU depending on "
            + "the host, a 16 MiB store in a temporary directory), so its code is compiled before the first real requests; "
            + "without it, a fresh mount's first walk runs about a quarter slower.")
    boolean noWarmUp;

    @Option(names = "--no-xattr", description = "Do not serve the user.tvix.castore.*.digest extended attributes.")
    boolean noXattr;

    @Option(names = "--root-ttl", paramLabel = "DURATION", defaultValue = "1s", converter = DurationConverter.class,
            description = "How long the kernel may cache root names (roots can be added or re-pointed while "
                    + "mounted), e.g. 1s, 500ms, 0. Names in use are asked for again in the background every "
                    + "half of it. Default: ${DEFAULT-VALUE}. Content below a root never changes and is cached "
                    + "without limit. While the store cannot be asked, names keep their last answer (with --cache, "
                    + "also from earlier mounts); under 200ms nothing is kept.")
    Duration rootTtl;

    @Option(names = "--threads", paramLabel = "N", defaultValue = "4",
            description = "Threads reading requests from the kernel (1-64). Default: ${DEFAULT-VALUE}.")
    int threads;

    @Option(names = "--read-ahead", paramLabel = "SIZE", defaultValue = "1M",
            description = "Read-ahead window for sequential readers while the store is slow (remote, or a cold "
                    + "disk): up to three windows are fetched ahead in the background, e.g. 4M; 0 turns it off. "
                    + "Default: ${DEFAULT-VALUE}.")
    String readAhead = "1M";

    @Option(names = "--allow-other", description = "Let other users (root included) use the mount. "
            + "As an ordinary user this needs user_allow_other in /etc/fuse.conf.")
    boolean allowOther;

    @Option(names = "--prefetch", description = "Over a remote (cached) store: when a root is first entered, fetch "
            + "its whole tree into the cache in the background (directories, and file contents with --cache). "
            + "With --passthrough: also make plain copies of the root's big files in the background.")
    boolean prefetch;

    @Option(names = "--record-trace", paramLabel = "FILE",
            description = "Write a read trace to FILE (created, or emptied): every directory and file the mount's users "
                    + "read, in the order they first did, by digest. Give it to --prefetch-trace of later mounts.")
    Path recordTrace;

    @Option(names = "--prefetch-trace", paramLabel = "FILE",
            description = "Over a remote (cached) store: once mounted, fetch the directories and files a read trace "
                    + "(--record-trace) names into the cache in the background, in its order (file contents with --cache), "
                    + "so a workload that reads them again does not wait for them. Repeatable: the traces are fetched "
                    + "one after the other.")
    List<Path> prefetchTraces = List.of();

    @Option(names = "--passthrough", paramLabel = "DIR",
            description = "Keep plain copies of files of at least --passthrough-min-size in DIR (made in the background "
                    + "once a file read without one is closed) and let the kernel read files that have one directly from it (FUSE "
                    + "passthrough: native read speed, no request reaches castore). Needs root and Linux 6.9+. Every "
                    + "open of a file then costs one request, so use it for trees of big files.")
    Path passthroughDir;

    @Option(names = "--passthrough-min-size", paramLabel = "SIZE", defaultValue = "1M",
            description = "Smallest file that gets a plain copy. Default: ${DEFAULT-VALUE}.")
    String passthroughMinSize = "1M";

    @Option(names = "--passthrough-max-size", paramLabel = "SIZE", defaultValue = "16G",
            description = "Most bytes kept in the --passthrough directory; least recently used copies are deleted "
                    + "to stay under it. Default: ${DEFAULT-VALUE}.")
    String passthroughMaxSize = "16G";

    @Option(names = "--take-over", description = "Take the mount at MOUNTPOINT over from the castore mount serving it, "
            + "without unmounting: that process hands over its FUSE connection and the kernel's node ids, then exits 0, "
            + "and this one serves from then on (to upgrade castore, or change the store's options, under running "
            + "programs). Open files, working directories and the kernel's caches stay; requests wait meanwhile. "
            + "Takes this command's store options, which must reach the same content. Not with --passthrough.")
    boolean takeOver;

    @Option(names = "--debug-fuse", hidden = true, description = "Print every FUSE request and reply to stderr.")
    boolean debugFuse;

    @Parameters(paramLabel = "MOUNTPOINT", description = "An existing directory to mount on.")
    Path mountpoint;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() throws IOException, InterruptedException {
        Io.requireUtf8("MOUNTPOINT", mountpoint.toString());
        Io.requireUtf8("--passthrough", passthroughDir == null ? null : passthroughDir.toString());
        Path target = mountpoint.toAbsolutePath().normalize();
        checkMountpoint(target);
        if (takeOver && passthroughDir != null) {
            throw new CliException(ExitCodes.USAGE, "--take-over cannot be used with --passthrough: the mount's "
                    + "connection to the kernel was set up without it");
        }
        MountOptions mountOptions = mountOptions();
        List<Node> traced = readTraces(prefetchTraces);
        try (Store opened = store.openForMount(); ReadTrace.Recorder recorder = startTrace()) {
            StoreContact contact = StoreContact.start(opened); // while the kernel mounts
            FsOptions fsOptions = FsOptions.defaults()
                    .withListRoot(listRoot).withXattrs(!noXattr).withRootTtl(rootTtl).withFeedKernelCache(!noCachePush)
                    .withReadAheadBytes(readAheadBytes());
            if (prefetch) {
                // Fetches each root's whole closure into the cache once, in the background.
                Prefetcher prefetcher = Prefetcher.forStore(opened);
                if (prefetcher.isActive()) {
                    fsOptions = fsOptions.withRootEntered(prefetchReporting(prefetcher));
                } else if (passthroughDir == null) {
                    // A local or in-memory store has nothing to fetch: say so once rather than report empty prefetches.
                    spec.commandLine().getErr().println("castore: --prefetch does nothing here: every object of "
                            + store.storeAddress() + " is local");
                }
            }
            if (recorder != null) {
                fsOptions = fsOptions.withAccessed(recorder);
            }
            Prefetcher tracePrefetcher = Prefetcher.forStore(opened);
            if (!prefetchTraces.isEmpty() && !tracePrefetcher.isActive()) {
                spec.commandLine().getErr().println("castore: --prefetch-trace does nothing here: every object of "
                        + store.storeAddress() + " is local");
            }
            try (PlainCopies copies = openPlainCopies(opened)) {
                if (prefetch && copies != null) {
                    // Also ask for plain copies of an entered root's big files, before anything opens them.
                    fsOptions = fsOptions.withRootEntered(fsOptions.rootEntered().andThen(new CopyAhead(opened.directories(), copies)));
                }
                var fs = new CastoreFileSystem(opened, fsOptions, copies);
                FuseMount mount;
                try {
                    mount = takeOver ? FuseMount.takeOver(target, fs, mountOptions) : FuseMount.mount(target, fs, mountOptions);
                } catch (MountpointServedException e) {
                    throw new CliException(ExitCodes.BUSY, target + " is already mounted by another castore process; unmount it "
                            + "first (umount " + target + ", or fusermount3 -u " + target + " as its user), or replace it "
                            + "without unmounting with --take-over");
                } catch (IOException e) {
                    // The transport's message names the mountpoint and the reason (EPERM, fusermount3's refusal, ...).
                    throw new CliException(ExitCodes.IO, e.getMessage());
                }
                try (mount) {
                    mount.unmountOnSignals();
                    try {
                        mount.acceptTakeOvers();
                    } catch (IOException e) {
                        spec.commandLine().getErr().println("castore: this mount cannot be taken over: " + e.getMessage());
                    }
                    if (copies != null && !fs.passthroughActive()) {
                        spec.commandLine().getErr().println("castore: this kernel offers no FUSE passthrough (Linux 6.9+ "
                                + "with CONFIG_FUSE_PASSTHROUGH); files are read through the page cache");
                    }
                    contact.await(CONTACT_PATIENCE).ifPresent(problem -> {
                        spec.commandLine().getErr().println(
                                "castore: the store does not answer yet (" + problem + "); reads from it fail with EIO until it does");
                        fs.storeDidNotAnswer(); // roots kept in --cache are used without waiting for the store
                    });
                    spec.commandLine().getOut().println("castore: mounted " + store.storeAddress() + " at " + target
                            + (mount.takenFrom() != 0 ? " (taken over from pid " + mount.takenFrom() + ")" : ""));
                    spec.commandLine().getOut().flush();
                    var tracePrefetch = !prefetchTraces.isEmpty() && tracePrefetcher.isActive() ? prefetchTraced(tracePrefetcher, traced) : null;
                    try (WarmUp warmUp = noWarmUp ? null : WarmUp.start(fsOptions, temporaryDirectory(),
                            WARM_UP_WHEN_IDLE_FOR, mount::requestsReceived, opened.warmUps(), mount::roundTrip, opened.scratchLayers())) {
                        mount.awaitUnmount();
                    } finally {
                        if (tracePrefetch != null) {
                            tracePrefetch.cancel(false); // unmounted before it ended: nothing more to fetch for
                        }
                    }
                    if (mount.handedTo() != 0) {
                        spec.commandLine().getErr().printf("castore: handed %s over to pid %d (requests waited up to %d ms)%n",
                                target, mount.handedTo(), mount.handOverPause().toMillis());
                    }
                }
            }
        }
        return ExitCodes.OK;
    }

    /** The --prefetch-trace files' entries, in order, each once; a file that cannot be read or is no trace fails the command. */
    private static List<Node> readTraces(List<Path> files) {
        var entries = new java.util.LinkedHashSet<Node>();
        for (Path file : files) {
            entries.addAll(readTrace(file));
        }
        return List.copyOf(entries);
    }

    private static List<Node> readTrace(Path file) {
        try {
            return ReadTrace.read(file);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new CliException(ExitCodes.NOT_FOUND, "--prefetch-trace: no such file: " + file);
        } catch (InvalidDataException e) {
            throw new CliException(ExitCodes.INVALID, "--prefetch-trace: " + e.getMessage());
        } catch (IOException e) {
            throw new CliException(ExitCodes.IO, "--prefetch-trace: cannot read " + file + ": " + e.getMessage());
        }
    }

    /** The --record-trace recorder, or null; a file that cannot be written fails the command before it mounts. */
    private ReadTrace.Recorder startTrace() {
        if (recordTrace == null) {
            return null;
        }
        try {
            return ReadTrace.record(recordTrace);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new CliException(ExitCodes.NOT_FOUND, "--record-trace: no such directory: " + recordTrace.toAbsolutePath().getParent());
        } catch (IOException e) {
            throw new CliException(ExitCodes.IO, "--record-trace: cannot write " + recordTrace + ": " + e.getMessage());
        }
    }

    /** Fetches a trace's entries in the background and prints one line to stderr when done. */
    private java.util.concurrent.CompletableFuture<Prefetcher.ClosureResult> prefetchTraced(Prefetcher prefetcher, List<Node> traced) {
        var err = spec.commandLine().getErr();
        long start = System.nanoTime();
        var done = prefetcher.prefetchInOrder(traced);
        done.whenComplete((result, failure) -> {
            if (result != null) {
                err.printf("castore: prefetched the %s %s: %d directories, %d files, %d failures, in %.1f s%n", traceWord(), traceNames(),
                        result.directories(), result.blobs(), result.failures(), (System.nanoTime() - start) / 1e9);
            } else if (!(failure instanceof CancellationException)) {
                err.println("castore: prefetch of the " + traceWord() + " " + traceNames() + " failed: " + failure.getMessage());
            }
            err.flush();
        });
        return done;
    }

    private String traceWord() {
        return prefetchTraces.size() == 1 ? "trace" : "traces";
    }

    private String traceNames() {
        return String.join(", ", prefetchTraces.stream().map(Path::toString).toList());
    }

    /**
     * Starts the closure prefetch of an entered root and, the first time for each root, prints
     * one line to stderr when it is done: what it fetched, how many objects failed, how long it took.
     */
    private Consumer<DirectoryNode> prefetchReporting(Prefetcher prefetcher) {
        Set<B3Digest> reported = ConcurrentHashMap.newKeySet();
        var err = spec.commandLine().getErr();
        return root -> {
            long start = System.nanoTime();
            var done = prefetcher.prefetchClosure(root);
            if (reported.add(root.digest())) {
                done.whenComplete((result, failure) -> {
                    if (result != null) {
                        err.printf("castore: prefetched %s: %d directories, %d files, %d failures, in %.1f s%n", root.digest(),
                                result.directories(), result.blobs(), result.failures(), (System.nanoTime() - start) / 1e9);
                    } else if (!(failure instanceof CancellationException)) {
                        err.println("castore: prefetch of " + root.digest() + " failed: " + failure.getMessage());
                    }
                    err.flush();
                });
            }
        };
    }

    /** Where the warm-up keeps its scratch store: $TMPDIR as other tools do, else the JVM's temporary directory. */
    private static Path temporaryDirectory() {
        String tmpdir = System.getenv("TMPDIR");
        return Path.of(tmpdir != null && !tmpdir.isEmpty() ? tmpdir : System.getProperty("java.io.tmpdir"));
    }

    /** The --passthrough directory, or null without the option. */
    private PlainCopies openPlainCopies(Store opened) throws IOException {
        if (passthroughDir == null) {
            return null;
        }
        long min = size("--passthrough-min-size", passthroughMinSize);
        long max = size("--passthrough-max-size", passthroughMaxSize);
        if (min < 1) {
            throw new CliException(ExitCodes.USAGE, "--passthrough-min-size must be at least 1 byte, got " + passthroughMinSize);
        }
        if (max < min) {
            throw new CliException(ExitCodes.USAGE, "--passthrough-max-size (" + passthroughMaxSize
                    + ") is smaller than --passthrough-min-size (" + passthroughMinSize + ")");
        }
        if (!hasSysAdminCapability()) {
            throw new CliException(ExitCodes.USAGE, "--passthrough needs root (CAP_SYS_ADMIN): the kernel takes "
                    + "passthrough files only from a privileged server");
        }
        try {
            // A copy that cannot be made is reported like any other problem of the mount: one line, once.
            return PlainCopies.open(passthroughDir.toAbsolutePath().normalize(), opened.blobs(), min, max,
                    line -> System.err.println("castore: " + line));
        } catch (IOException e) {
            throw new CliException(ExitCodes.IO, "--passthrough: " + e.getMessage());
        }
    }

    private static long size(String option, String value) {
        try {
            return CacheConfig.parseSize(value);
        } catch (InvalidDataException e) {
            throw new CliException(ExitCodes.USAGE, option + ": " + e.getMessage());
        }
    }

    /** CAP_SYS_ADMIN (bit 21) in this process's effective capabilities. */
    private static boolean hasSysAdminCapability() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("CapEff:")) {
                    return (Long.parseUnsignedLong(line.substring(7).trim(), 16) & (1L << 21)) != 0;
                }
            }
        } catch (IOException | NumberFormatException e) {
            return false;
        }
        return false;
    }

    private MountOptions mountOptions() {
        if (Threads.problem(threads, 64) != null) {
            throw new CliException(ExitCodes.USAGE, Threads.problem(threads, 64));
        }
        return MountOptions.defaults().withThreads(threads).withAllowOther(allowOther).withDebug(debugFuse);
    }

    private int readAheadBytes() {
        if (readAhead.trim().equals("0")) {
            return 0;
        }
        long bytes;
        try {
            bytes = CacheConfig.parseSize(readAhead);
        } catch (InvalidDataException e) {
            // Said here, not by parseSize: 0 is a valid read-ahead, where it is no valid cache size.
            throw new CliException(ExitCodes.USAGE, "--read-ahead: invalid size '" + readAhead
                    + "': expected 0 (no read-ahead) or a positive number with an optional K, M, G or T suffix, at most 64M");
        }
        if (bytes > MAX_READ_AHEAD) {
            throw new CliException(ExitCodes.USAGE, "--read-ahead must be at most 64M, got " + readAhead);
        }
        return (int) bytes;
    }

    private static void checkMountpoint(Path target) {
        java.nio.file.attribute.BasicFileAttributes attributes;
        try {
            attributes = Files.readAttributes(target, java.nio.file.attribute.BasicFileAttributes.class);
        } catch (java.nio.file.NoSuchFileException e) {
            throw new CliException(ExitCodes.NOT_FOUND, "mountpoint does not exist: " + target);
        } catch (IOException e) {
            // A mount whose process was killed answers ENOTCONN; "does not exist" sent users looking for the wrong thing.
            String reason = e instanceof java.nio.file.FileSystemException fse && fse.getReason() != null ? fse.getReason() : e.getMessage();
            throw new CliException(ExitCodes.IO, "mountpoint is not accessible: " + target + ": " + reason + " (if a mount whose "
                    + "process was killed is left there, detach it with: umount -l " + target + ", or fusermount3 -u -z " + target
                    + " as its user)");
        }
        if (!attributes.isDirectory()) {
            throw new CliException(ExitCodes.INVALID, "mountpoint is not a directory: " + target);
        }
        Path device = Path.of("/dev/fuse");
        if (!Files.exists(device)) {
            throw new CliException(ExitCodes.IO, "no /dev/fuse: load the fuse kernel module (modprobe fuse) "
                    + "or give the container the device");
        }
        if (!Files.isReadable(device) || !Files.isWritable(device)) {
            throw new CliException(ExitCodes.IO, "permission denied: /dev/fuse");
        }
    }

    /** Durations as people write them: 1s, 500ms, 2m, 1h, 0. */
    static final class DurationConverter implements CommandLine.ITypeConverter<Duration> {
        private static final Pattern DURATION = Pattern.compile("(\\d{1,9})(ms|s|m|h)?");

        @Override
        public Duration convert(String value) {
            Matcher m = DURATION.matcher(value.trim());
            if (!m.matches() || m.group(2) == null && !m.group(1).equals("0")) {
                throw new CommandLine.TypeConversionException(
                        "'" + value + "' is not a duration: use a whole number with ms, s, m or h (e.g. 1s, 500ms)");
            }
            long n = Long.parseLong(m.group(1));
            return switch (m.group(2) == null ? "s" : m.group(2)) {
                case "ms" -> Duration.ofMillis(n);
                case "m" -> Duration.ofMinutes(n);
                case "h" -> Duration.ofHours(n);
                default -> Duration.ofSeconds(n);
            };
        }
    }
}

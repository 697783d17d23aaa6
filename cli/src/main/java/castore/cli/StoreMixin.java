package castore.cli;

import castore.model.InvalidDataException;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import castore.service.cache.CacheConfig;
import castore.service.cache.StoreCache;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import picocli.CommandLine.Option;

/** The store-selection options every command takes. */
public final class StoreMixin {
    @Option(names = "--store", paramLabel = "ADDR",
            description = "Store address: a directory (local store), local:///dir, memory://, grpc+http://host:port, "
                    + "grpc+unix:///path, s3://bucket/prefix?... Default: $CASTORE_STORE or ~/.local/share/castore.")
    String store;

    @Option(names = "--blob-service", paramLabel = "URL", description = "Use this blob service instead of the store's.")
    String blobService;

    @Option(names = "--directory-service", paramLabel = "URL", description = "Use this directory service instead of the store's.")
    String directoryService;

    @Option(names = "--cache", paramLabel = "DIR",
            description = "Keep chunks and directories fetched from a remote store in DIR (LRU, see --cache-size).")
    Path cache;

    @Option(names = "--cache-size", paramLabel = "SIZE", defaultValue = "10G",
            description = "Size limit of the --cache directory, e.g. 512M, 10G (default: ${DEFAULT-VALUE}).")
    String cacheSize = "10G";

    @Option(names = "--cache-memory", paramLabel = "SIZE",
            description = "Memory for verified chunks fetched from a remote store, with or without --cache (about a third more "
                    + "for Directories and chunk lists), e.g. 32M, 1G; at most a quarter of the heap "
                    + "(default: 256M, or a quarter of the heap if less).")
    String cacheMemory;

    @Option(names = "--timeout", paramLabel = "DURATION",
            description = "How long a remote store (a daemon, S3) may keep an operation waiting before it fails "
                    + "(a mount answers EIO, and the same operation works again once the store is back), "
                    + "e.g. 500ms, 5s, 2m (default: 5s).")
    String timeout;

    /** The longest --timeout takes: a mount whose store is gone should answer EIO within minutes, not hang for hours. */
    static final Duration MAX_TIMEOUT = Duration.ofHours(1);

    /** A number of milliseconds, seconds (the default unit) or minutes. */
    private static final java.util.regex.Pattern DURATION = java.util.regex.Pattern.compile("([0-9]{1,9})(ms|s|m)?");

    /** --timeout, or the default (5 s). */
    Duration timeout() {
        if (timeout == null) {
            return StoreOptions.DEFAULT.timeout();
        }
        var matcher = DURATION.matcher(timeout);
        Duration parsed = null;
        if (matcher.matches()) {
            long amount = Long.parseLong(matcher.group(1));
            String unit = matcher.group(2) == null ? "s" : matcher.group(2);
            parsed = switch (unit) {
                case "ms" -> Duration.ofMillis(amount);
                case "m" -> Duration.ofMinutes(amount);
                default -> Duration.ofSeconds(amount);
            };
        }
        if (parsed == null || parsed.isZero() || parsed.compareTo(MAX_TIMEOUT) > 0) {
            throw new CliException(ExitCodes.USAGE, "--timeout: invalid duration '" + timeout
                    + "': expected a number of milliseconds, seconds or minutes (e.g. 500ms, 5s, 2m), more than 0 and at most 60m");
        }
        return parsed;
    }

    public String storeAddress() {
        return store != null ? store : Stores.defaultStorePath().toString();
    }

    /** The --store, --blob-service and --directory-service addresses, in that order (null: not given). */
    private List<String> addresses() {
        return Arrays.asList(storeAddress(), blobService, directoryService);
    }

    /** Whether any of the services these options name is reached through the network (a daemon, S3). */
    public boolean anyRemote() {
        return StoreCache.anyRemote(addresses());
    }

    /** {@code options} with --timeout applied: for the stores a command opens besides --store (copy's destination). */
    public StoreOptions options(StoreOptions options) {
        return options.withTimeout(timeout());
    }

    public Store open(StoreOptions options) throws IOException {
        // A bad size or duration fails before anything is opened: a bad command line, as mount's sizes.
        options = options(options);
        long cacheLimit = size("--cache-size", cacheSize);
        long memoryLimit = memoryLimit(Runtime.getRuntime().maxMemory());
        Io.requireUtf8("--store", storeAddress());
        Io.requireUtf8("--blob-service", blobService);
        Io.requireUtf8("--directory-service", directoryService);
        Io.requireUtf8("--cache", cache == null ? null : cache.toString());
        if (cache != null && java.nio.file.Files.exists(cache) && !java.nio.file.Files.isDirectory(cache)) {
            // Else the cache's own error names a file inside it ("DIR/segments: Not a directory").
            throw new CliException(ExitCodes.INVALID, "--cache " + cache + ": not a directory");
        }
        Store store = Stores.open(storeAddress(), blobService, directoryService, options);
        try {
            return StoreCache.apply(store, addresses(),
                    Optional.ofNullable(cache), cacheLimit, memoryLimit, options.directReads());
        } catch (IOException | RuntimeException e) {
            store.close();
            throw e;
        }
    }

    /** The memory tier for a heap of {@code maxHeap} bytes: --cache-memory's, if that fits, or the default for that heap. */
    long memoryLimit(long maxHeap) {
        if (cacheMemory == null) {
            return CacheConfig.defaultMemoryLimit(maxHeap);
        }
        long wanted = size("--cache-memory", cacheMemory);
        long largest = CacheConfig.largestMemoryLimit(maxHeap);
        if (wanted > largest) {
            throw new CliException(ExitCodes.USAGE, "--cache-memory " + cacheMemory + " is more than a quarter of the heap ("
                    + Nodes.bytes(maxHeap) + "): give at most " + (largest >= 1 << 20 ? (largest >> 20) + "M" : Long.toString(largest))
                    + ", or a larger heap (CASTORE_JAVA_OPTS=-Xmx...)");
        }
        return wanted;
    }

    private static long size(String option, String value) {
        try {
            return CacheConfig.parseSize(value);
        } catch (InvalidDataException e) {
            throw new CliException(ExitCodes.USAGE, option + ": " + e.getMessage());
        }
    }

    /** Opens the store for writing, creating a local store that does not exist yet (import). */
    public Store open() throws IOException {
        return open(StoreOptions.DEFAULT);
    }

    /** Opens an existing store for writing (rm, gc): a missing local store is an error, not a new store. */
    public Store openExisting() throws IOException {
        return open(StoreOptions.DEFAULT.withCreateIfMissing(false));
    }

    /**
     * Opens an existing store for reading only: such commands never hold a writer's lock, and a
     * missing local store is an error (exit 3) rather than a new empty store.
     */
    public Store openReadOnly() throws IOException {
        return open(StoreOptions.DEFAULT.withReadOnly(true).withCreateIfMissing(false));
    }

    /**
     * {@link #openReadOnly} for a mount: the kernel keeps what it reads in its page cache, so the
     * local store and the cache's disk tier read large files past theirs (O_DIRECT); and a remote
     * store whose server does not answer yet opens all the same (the mount says so and serves
     * what its cache holds).
     */
    public Store openForMount() throws IOException {
        return open(StoreOptions.DEFAULT.withReadOnly(true).withCreateIfMissing(false).withDirectReads(true).withOpenUnanswered(true));
    }
}

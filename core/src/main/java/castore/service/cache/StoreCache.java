package castore.service.cache;

import castore.service.ScratchLayer;
import castore.service.Store;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * Puts the cache in front of a store's blob and directory services. Roots are not cached (they
 * are mutable: every question goes to the catalog), but with a cache directory the catalog's last
 * answers are kept there for when it cannot be asked ({@link RememberedRoots}). What the CLI's
 * {@code --cache DIR --cache-size SIZE} options apply.
 */
public final class StoreCache implements castore.service.DataDirectory, ScratchLayer, AutoCloseable {
    /** Schemes whose data is already local: caching them would only copy it. */
    private static final Set<String> LOCAL_SCHEMES = Set.of("local", "file", "memory");
    /** The disk tier of a scratch cache ({@link #over}): a warm-up's synthetic store is about 16 MiB. */
    private static final long SCRATCH_DISK_LIMIT = 64L << 20;
    /**
     * The memory tier of a scratch cache: 16 KiB of it for Directories, two of a warm-up's
     * synthetic tree, so nearly every load of one reads the disk tier, as a fresh mount over a
     * warm cache does.
     */
    static final long SCRATCH_MEMORY_LIMIT = 64L << 10;

    private final CacheConfig config;
    private final DiskCache disk;

    private StoreCache(CacheConfig config, DiskCache disk) {
        this.config = config;
        this.disk = disk;
    }

    public CacheConfig config() {
        return config;
    }

    /** The disk tier, if any. */
    public Optional<DiskCache> disk() {
        return Optional.ofNullable(disk);
    }

    @Override
    public Optional<Path> dataDirectory() {
        return disk().map(DiskCache::root);
    }

    /** {@code store} with cached blob and directory services; the returned store owns the cache. */
    public static Store wrap(Store store, CacheConfig config) throws IOException {
        return wrap(store, config, null);
    }

    /**
     * {@link #wrap}; with a cache directory and {@code rootsAddress} (the address of the store
     * whose root catalog {@code store} has), the catalog's answers are also kept there
     * ({@link RememberedRoots}), for when it cannot be asked.
     */
    public static Store wrap(Store store, CacheConfig config, String rootsAddress) throws IOException {
        DiskCache disk = config.directory().isPresent() ? new DiskCache(config.directory().get(), config.diskLimit(), config.directReads()) : null;
        StoreCache handle = new StoreCache(config, disk);
        var blobs = new CachingBlobService(store.blobs(), disk, config);
        var directories = new CachingDirectoryService(store.directories(), disk, config);
        Store cached = store.with(blobs, directories, List.of(blobs, directories, handle));
        if (disk == null || rootsAddress == null) {
            return cached;
        }
        try {
            var roots = RememberedRoots.under(disk.root(), rootsAddress, store.roots());
            return new Store(cached.blobs(), cached.directories(), roots, cached.resources());
        } catch (IOException | RuntimeException e) {
            cached.close();
            throw e;
        }
    }

    /**
     * What the CLI does: with a cache directory, a disk cache of {@code diskLimit} bytes; without
     * one, a memory-only cache if any of {@code addresses} is remote (for single-flight fetches and
     * read-ahead); otherwise the store unchanged.
     */
    public static Store apply(Store store, List<String> addresses, Optional<Path> directory, long diskLimit) throws IOException {
        return apply(store, addresses, directory, diskLimit, CacheConfig.DEFAULT_MEMORY_LIMIT, false);
    }

    /**
     * {@link #apply}, with a memory tier of {@code memoryLimit} bytes of chunks
     * ({@link CacheConfig#memoryLimit()}), and the disk tier read past the page cache by streams
     * if {@code directReads} ({@link CacheConfig#directReads()}).
     */
    public static Store apply(Store store, List<String> addresses, Optional<Path> directory, long diskLimit, long memoryLimit,
            boolean directReads) throws IOException {
        if (directory.isPresent()) {
            // The root catalog is the --store's (the first address); a local one needs no keeping.
            String rootsAddress = addresses.isEmpty() || addresses.get(0) == null || !isRemote(addresses.get(0)) ? null : addresses.get(0);
            return wrap(store, CacheConfig.onDisk(directory.get(), diskLimit, memoryLimit).withDirectReads(directReads), rootsAddress);
        }
        return anyRemote(addresses) ? wrap(store, CacheConfig.memoryOnly(memoryLimit)) : store;
    }

    /** Whether any of {@code addresses} (nulls: none given) names a store reached through the network. */
    public static boolean anyRemote(List<String> addresses) {
        return addresses.stream().filter(Objects::nonNull).anyMatch(StoreCache::isRemote);
    }

    /** Whether the store at {@code address} is reached through the network (not a directory, local:// or memory://). */
    static boolean isRemote(String address) {
        int colon = address.indexOf("://");
        return colon > 0 && !LOCAL_SCHEMES.contains(address.substring(0, colon));
    }

    /** The cache configuration of a store made by {@link #wrap}, if it is one. */
    public static Optional<CacheConfig> configOf(Store store) {
        return store.resources().stream().filter(StoreCache.class::isInstance).map(r -> ((StoreCache) r).config).findFirst();
    }

    /**
     * {@code scratch} behind a cache like this one (memory only if this one is; otherwise its disk
     * tier in {@code directory}), with tiers sized for a warm-up's synthetic data, written and
     * read through the page cache (a warm-up waiting on the device would only end later). No
     * root catalog answers are kept.
     */
    @Override
    public Store over(Store scratch, Path directory) throws IOException {
        return wrap(scratch, new CacheConfig(config.directory().map(d -> directory), SCRATCH_DISK_LIMIT, SCRATCH_MEMORY_LIMIT,
                config.prefetchParallelism(), config.readAhead(), false));
    }

    @Override
    public void close() {
        if (disk != null) {
            disk.close(); // its segments stay for the next run
        }
    }
}

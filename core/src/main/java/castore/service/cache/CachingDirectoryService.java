package castore.service.cache;

import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.InvalidDataException;
import castore.service.ClosurePutter;
import castore.service.CorruptedDataException;
import castore.service.DirectoryService;
import castore.service.DirectoryTraversal;
import java.io.IOException;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

/**
 * A {@link DirectoryService} that keeps the Directories it fetches from another one in a
 * {@link TieredCache} (validated and digest-checked when read back from disk). Directories are
 * immutable, so a cached one never goes stale; absence is not cached.
 *
 * <p><b>Read-ahead of subdirectories.</b> A walk of a tree the cache lacks (find, ls -R, a build
 * reading headers) asks for one Directory at a time, each a round trip to the remote: a cold walk
 * over gRPC waited on the daemon for about 1.2 ms per directory. So each Directory a caller gets
 * has those of its subdirectories that the cache lacks fetched in the background, at most
 * {@link CacheConfig#prefetchParallelism()} at once, one level ahead of the walk: a fetch made
 * ahead does not itself look further ahead (the caller's get of that subdirectory does, when it
 * comes), so a caller that looks into one directory fetches at most its children, never the tree.
 * A caller's get of a Directory being fetched ahead waits for that fetch (single flight).
 */
public final class CachingDirectoryService implements DirectoryService {
    static final String DIRECTORIES = "directories";
    /** Subdirectories fetched ahead per Directory got, at most: a directory of thousands fetches its first ones. */
    static final int CHILDREN_AHEAD = 64;

    private final DirectoryService inner;
    private final TieredCache<Directory> cache;
    private final SingleFlight<B3Digest, Optional<Directory>> loads = new SingleFlight<>();
    private final AtomicLong fetches = new AtomicLong();
    private final AtomicLong fetchedAhead = new AtomicLong();
    /** Fetches ahead running or waiting for a permit, by digest: each scheduled once. */
    private final Set<B3Digest> aheadPending = ConcurrentHashMap.newKeySet();
    private final Semaphore aheadPermits;
    private final ExecutorService ahead = Executors.newThreadPerTaskExecutor(
            Thread.ofVirtual().name("castore-directory-ahead").factory());
    private volatile boolean closed;

    public CachingDirectoryService(DirectoryService inner, DiskCache disk, CacheConfig config) {
        this.inner = inner;
        this.cache = new TieredCache<>(DIRECTORIES, disk, new DirectoryCodec(), config.memoryLimit() / 4);
        this.aheadPermits = new Semaphore(config.prefetchParallelism());
    }

    public DirectoryService inner() {
        return inner;
    }

    /** Directories fetched from the inner service so far. */
    public long fetches() {
        return fetches.get();
    }

    /** Of {@link #fetches()}, those fetched ahead of a walk (read-ahead of subdirectories). */
    public long fetchedAhead() {
        return fetchedAhead.get();
    }

    @Override
    public Optional<Directory> get(B3Digest digest) throws IOException {
        return get(digest, true);
    }

    /** With {@code readAhead}, the subdirectories the cache lacks are fetched in the background (see the class). */
    Optional<Directory> get(B3Digest digest, boolean readAhead) throws IOException {
        Optional<Directory> directory = cache.get(digest);
        if (directory.isEmpty()) {
            directory = fetch(digest);
        }
        if (readAhead && directory.isPresent()) {
            fetchChildrenAhead(directory.get());
        }
        return directory;
    }

    private Optional<Directory> fetch(B3Digest digest) throws IOException {
        return loads.get(digest, () -> {
            Optional<Directory> fetched = inner.get(digest);
            fetches.incrementAndGet();
            fetched.ifPresent(d -> cache.put(digest, d));
            return fetched;
        });
    }

    private void fetchChildrenAhead(Directory directory) {
        int scheduled = 0;
        for (int i = 0, n = directory.entryCount(); i < n && scheduled < CHILDREN_AHEAD && !closed; i++) {
            if (!(directory.node(i) instanceof DirectoryNode child)) {
                continue;
            }
            B3Digest digest = child.digest();
            if (loads.isLoading(digest) || cache.contains(digest) || !aheadPending.add(digest)) {
                continue;
            }
            scheduled++;
            try {
                ahead.execute(() -> {
                    try {
                        aheadPermits.acquire();
                        try {
                            if (!closed && !cache.contains(digest)) {
                                fetch(digest);
                                fetchedAhead.incrementAndGet();
                            }
                        } finally {
                            aheadPermits.release();
                        }
                    } catch (IOException | RuntimeException | InterruptedException e) {
                        // the walk's own get, if it comes, fetches again and reports what fails
                    } finally {
                        aheadPending.remove(digest);
                    }
                });
            } catch (RejectedExecutionException e) {
                aheadPending.remove(digest); // closing
                return;
            }
        }
    }

    /**
     * Stops the fetches ahead (interrupted: the walk that wanted them is over) and waits a
     * moment for them to end, so none writes to the disk tier after the cache closes it.
     */
    @Override
    public void close() {
        closed = true;
        ahead.shutdownNow();
        try {
            ahead.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public boolean has(B3Digest digest) throws IOException {
        return cache.contains(digest) || inner.has(digest);
    }

    @Override
    public B3Digest put(Directory directory) throws IOException {
        B3Digest digest = inner.put(directory);
        cache.put(digest, directory);
        return digest;
    }

    @Override
    public ClosurePutter putClosure() {
        return inner.putClosure();
    }

    @Override
    public boolean acceptsStoredChildren() throws IOException {
        return inner.acceptsStoredChildren();
    }

    /**
     * A cached root walks the cache (fetching only what is missing); an uncached one uses the
     * inner service's own recursive get (one streaming call over gRPC) and caches as it goes.
     */
    @Override
    public Stream<Directory> getRecursive(B3Digest root) throws IOException {
        if (cache.contains(root)) {
            return DirectoryTraversal.breadthFirst(this, root);
        }
        return inner.getRecursive(root).peek(d -> {
            fetches.incrementAndGet();
            cache.put(d.digest(), d);
        });
    }

    /**
     * The closure below {@code root} through the inner service's own recursive get, cached as
     * it arrives, whether or not the root is cached already (a root a lookup just fetched says
     * nothing about the rest): for a prefetch, where one streaming call beats a get per Directory.
     */
    Stream<Directory> fetchRecursive(B3Digest root) throws IOException {
        return inner.getRecursive(root).peek(d -> {
            fetches.incrementAndGet();
            if (!cache.contains(d.digest())) {
                cache.put(d.digest(), d);
            }
        });
    }

    @Override
    public boolean getsClosureInOneCall() {
        return inner.getsClosureInOneCall();
    }

    /** On disk a Directory is its canonical encoding; read back, it must decode and hash to its key. */
    private static final class DirectoryCodec implements TieredCache.Codec<Directory> {
        @Override
        public byte[] encode(Directory value) {
            return value.encode();
        }

        @Override
        public Directory decodeVerified(B3Digest key, byte[] bytes) throws CorruptedDataException {
            Directory d;
            try {
                d = Directory.decode(bytes);
            } catch (InvalidDataException e) {
                throw new CorruptedDataException("cached directory " + key + " is corrupted: " + e.getMessage());
            }
            if (!d.digest().equals(key)) {
                throw new CorruptedDataException("cached directory " + key + " is corrupted");
            }
            return d;
        }

        @Override
        public long weight(Directory value) {
            return 128L + value.encode().length + 64L * value.entryCount();
        }
    }
}

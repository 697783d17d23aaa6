package castore.service.cache;

import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.InvalidDataException;
import castore.service.ClosurePutter;
import castore.service.CorruptedDataException;
import castore.service.DirectoryService;
import castore.service.DirectoryTraversal;
import java.io.IOException;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

/**
 * A {@link DirectoryService} that keeps the Directories it fetches from another one in a
 * {@link TieredCache} (validated and digest-checked when read back from disk). Directories are
 * immutable, so a cached one never goes stale; absence is not cached.
 */
public final class CachingDirectoryService implements DirectoryService {
    static final String DIRECTORIES = "directories";

    private final DirectoryService inner;
    private final TieredCache<Directory> cache;
    private final SingleFlight<B3Digest, Optional<Directory>> loads = new SingleFlight<>();
    private final AtomicLong fetches = new AtomicLong();

    public CachingDirectoryService(DirectoryService inner, DiskCache disk, CacheConfig config) {
        this.inner = inner;
        this.cache = new TieredCache<>(DIRECTORIES, disk, new DirectoryCodec(), config.memoryLimit() / 4);
    }

    public DirectoryService inner() {
        return inner;
    }

    /** Directories fetched from the inner service so far. */
    public long fetches() {
        return fetches.get();
    }

    @Override
    public Optional<Directory> get(B3Digest digest) throws IOException {
        Optional<Directory> cached = cache.get(digest);
        if (cached.isPresent()) {
            return cached;
        }
        return loads.get(digest, () -> {
            Optional<Directory> fetched = inner.get(digest);
            fetches.incrementAndGet();
            fetched.ifPresent(d -> cache.put(digest, d));
            return fetched;
        });
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

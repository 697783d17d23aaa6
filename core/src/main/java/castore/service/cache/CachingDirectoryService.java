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
import java.io.InterruptedIOException;
import java.util.HashSet;
import java.util.Iterator;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
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
 *
 * <p><b>Closures streamed ahead.</b> Where the inner service streams a closure (gRPC in one call, S3
 * by gets many at once in walk order),
 * a Directory got by a caller whose whole tree has at most {@link #CLOSURE_AHEAD_ENTRIES} entries
 * (its size says so before anything below it is fetched) and whose subdirectories are not all
 * cached has its closure fetched in one recursive get instead, cached as it arrives: a get per
 * Directory cost the client and the daemon about 0.3 ms of CPU each, a Directory of a stream a
 * fraction of that. A castore daemon streams depth-first in name order, the order find and ls -R
 * enter directories in, so a walk's get of a Directory the stream has announced (its parent came
 * on it) and will bring it within {@link #WAIT_AHEAD_ENTRIES} entries waits for it, up to
 * {@link #STREAM_WAIT_MILLIS}; one further off is fetched by its own get. A stream that makes a
 * get wait longer (a tvix server streams breadth-first) is not waited for again, and its
 * Directories are fetched one by one as before. Larger trees get the read-ahead of
 * subdirectories, and their subtrees small enough a stream of their own once entered.
 */
public final class CachingDirectoryService implements DirectoryService {
    static final String DIRECTORIES = "directories";
    /** Subdirectories fetched ahead per Directory got, at most: a directory of thousands fetches its first ones. */
    static final int CHILDREN_AHEAD = 64;
    /**
     * The most entries (files, symlinks and directories, all levels) of a tree whose closure is
     * streamed ahead: about 15-20 MB of Directories, a fraction of a second on a LAN, and well
     * within the memory tier.
     */
    static final long CLOSURE_AHEAD_ENTRIES = 200_000;
    /** How long a get waits for a Directory a stream has announced before fetching it itself. */
    static final long STREAM_WAIT_MILLIS = 50;
    /**
     * How far ahead of the stream (in entries of the Directories before it) a Directory may be
     * for a get to wait for it: a stream brings about 100,000 entries a second over loopback, a
     * get of its own takes a round trip (0.2-1 ms), so waiting pays only near the stream's head,
     * where a walk keeps it. A lookup of one path deep in the tree fetches its own way down.
     */
    static final long WAIT_AHEAD_ENTRIES = 1_000;
    /** Closure streams running at once, at most: a walk needs one at a time. */
    private static final int STREAMS = 2;

    private final DirectoryService inner;
    private final TieredCache<Directory> cache;
    private final SingleFlight<B3Digest, Optional<Directory>> loads = new SingleFlight<>();
    private final AtomicLong fetches = new AtomicLong();
    private final AtomicLong fetchedAhead = new AtomicLong();
    /** Fetches ahead running or waiting for a permit, by digest: each scheduled once. */
    private final Set<B3Digest> aheadPending = ConcurrentHashMap.newKeySet();
    private final Semaphore aheadPermits;
    /** Directories announced by a closure stream (their parent came on it) and not delivered yet. */
    private final ConcurrentHashMap<B3Digest, Announced> streaming = new ConcurrentHashMap<>();
    private final Semaphore streamPermits = new Semaphore(STREAMS);
    private final long closureAheadEntries;
    private final AtomicLong streams = new AtomicLong();
    private final AtomicLong waitsGivenUp = new AtomicLong();
    private final ExecutorService ahead = Executors.newThreadPerTaskExecutor(
            Thread.ofVirtual().name("castore-directory-ahead").factory());
    private volatile boolean closed;

    public CachingDirectoryService(DirectoryService inner, DiskCache disk, CacheConfig config) {
        this(inner, disk, config, CLOSURE_AHEAD_ENTRIES);
    }

    /** With closures of at most {@code closureAheadEntries} entries streamed ahead (0: none). */
    CachingDirectoryService(DirectoryService inner, DiskCache disk, CacheConfig config, long closureAheadEntries) {
        this.inner = inner;
        this.cache = new TieredCache<>(DIRECTORIES, disk, new DirectoryCodec(), config.memoryLimit() / 4);
        this.aheadPermits = new Semaphore(config.prefetchParallelism());
        this.closureAheadEntries = closureAheadEntries;
    }

    public DirectoryService inner() {
        return inner;
    }

    /** Directories fetched from the inner service so far. */
    public long fetches() {
        return fetches.get();
    }

    /** Of {@link #fetches()}, those fetched ahead of a walk (read-ahead of subdirectories, closure streams). */
    public long fetchedAhead() {
        return fetchedAhead.get();
    }

    /** Closure streams started ahead of a walk so far. */
    public long closureStreams() {
        return streams.get();
    }

    /** Gets that waited for a closure stream until {@link #STREAM_WAIT_MILLIS} and then fetched on their own. */
    public long streamWaitsGivenUp() {
        return waitsGivenUp.get();
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
            streamClosureAhead(directory.get());
            fetchChildrenAhead(directory.get());
        }
        return directory;
    }

    private Optional<Directory> fetch(B3Digest digest) throws IOException {
        return loads.get(digest, () -> {
            Announced coming = streaming.get(digest);
            if (coming != null) {
                Directory streamed = coming.await();
                if (streamed != null) {
                    return Optional.of(streamed);
                }
            }
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
            if (!neitherCachedNorComing(digest) || !aheadPending.add(digest)) {
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

    /** Whether a Directory is neither cached nor coming (on a stream, or from a get under way). */
    private boolean neitherCachedNorComing(B3Digest digest) {
        return !streaming.containsKey(digest) && !loads.isLoading(digest) && !cache.contains(digest);
    }

    /**
     * Starts a closure stream below {@code top} if its tree is small enough, the inner service
     * streams closures and some subdirectory is neither cached nor coming already.
     */
    private void streamClosureAhead(Directory top) {
        if (top.size() > closureAheadEntries || closed || !inner.streamsClosures()) {
            return;
        }
        boolean missing = false;
        for (int i = 0, n = top.entryCount(); i < n && !missing; i++) {
            missing = top.node(i) instanceof DirectoryNode child && neitherCachedNorComing(child.digest());
        }
        if (!missing || !streamPermits.tryAcquire()) {
            return;
        }
        ClosureStream stream = new ClosureStream(top.digest());
        stream.announceChildren(top, top.entryCount()); // before the stream starts (it sends top first): the caller's next get waits for it
        try {
            ahead.execute(stream::run);
            streams.incrementAndGet();
        } catch (RejectedExecutionException e) {
            stream.end(); // closing
        }
    }

    /**
     * A Directory a closure stream will bring, once it has brought {@code deliveredAt} entries
     * (those of the Directories before it, in depth-first order): gets wait for it when the
     * stream is that close and keeps up.
     */
    private record Announced(ClosureStream stream, long deliveredAt, CompletableFuture<Directory> arrival) {
        /** The Directory once the stream brings it; null if it is far off, or the stream gives up, fails or falls behind. */
        Directory await() throws InterruptedIOException {
            if (stream.behind || deliveredAt - stream.streamed > WAIT_AHEAD_ENTRIES) {
                return null; // a get of its own is sooner
            }
            try {
                return arrival.get(STREAM_WAIT_MILLIS, TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                stream.fallBehind();
                return null;
            } catch (ExecutionException e) {
                return null;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted waiting for " + stream.root + "'s closure");
            }
        }
    }

    /** One recursive get ahead of a walk, each Directory cached and handed to whoever waits for it. */
    private final class ClosureStream {
        private final B3Digest root;
        /** Digests this stream announced and has not delivered (its own thread's, after the first ones). */
        private final Set<B3Digest> announced = new HashSet<>();
        private volatile boolean behind;
        /** Entries of the Directories brought so far (written by the stream's thread only). */
        private volatile long streamed;

        ClosureStream(B3Digest root) {
            this.root = root;
        }

        /** A get waited in vain: its Directories are fetched one by one from now on. */
        void fallBehind() {
            behind = true;
            waitsGivenUp.incrementAndGet();
        }

        /**
         * Announces the subdirectories of {@code parent} that are neither cached nor coming, each
         * with where the stream will bring it: after the subtrees of the ones before it (a
         * DirectoryNode's size is its subtree's entries), counted from {@code base}, where the
         * stream is once it has brought {@code parent}. Identical subtrees are sent once, so
         * it may come sooner.
         */
        void announceChildren(Directory parent, long base) {
            long at = base;
            for (int i = 0, n = parent.entryCount(); i < n; i++) {
                if (parent.node(i) instanceof DirectoryNode child) {
                    B3Digest digest = child.digest();
                    if (!cache.contains(digest) && streaming.putIfAbsent(digest, new Announced(this, at, new CompletableFuture<>())) == null) {
                        announced.add(digest);
                    }
                    at += child.size();
                }
            }
        }

        void run() {
            try (Stream<Directory> closure = inner.getRecursive(root)) {
                Iterator<Directory> it = closure.iterator();
                while (!closed && it.hasNext()) {
                    Directory d = it.next();
                    B3Digest digest = d.digest();
                    if (!cache.contains(digest)) {
                        cache.put(digest, d);
                        fetches.incrementAndGet();
                        fetchedAhead.incrementAndGet();
                    }
                    streamed += d.entryCount();
                    // Its children announced before its waiter wakes: that caller's look ahead
                    // below it then finds them coming and starts nothing of its own.
                    announceChildren(d, streamed);
                    if (announced.remove(digest)) {
                        Announced waiting = streaming.remove(digest);
                        if (waiting != null) {
                            waiting.arrival().complete(d);
                        }
                    }
                }
            } catch (IOException | RuntimeException e) {
                // what it did not bring, the walk's own gets fetch and report
            } finally {
                end();
            }
        }

        /** Whatever is still announced is not coming: its waiters fetch it themselves. */
        void end() {
            for (B3Digest digest : announced) {
                Announced waiting = streaming.remove(digest);
                if (waiting != null) {
                    waiting.arrival().complete(null);
                }
            }
            announced.clear();
            streamPermits.release();
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
            return DirectoryTraversal.depthFirst(this, root);
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
    public boolean streamsClosures() {
        return inner.streamsClosures();
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

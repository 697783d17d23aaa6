package castore.service.cache;

import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.Node;
import castore.service.Store;
import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

/**
 * Background fetching for a mount over a cached remote store. The filesystem calls
 * {@link #fileOpened} when a file is opened and, with {@code --prefetch}, {@link #prefetchClosure}
 * when a root is first entered. Over a store without a cache (local, memory) every call is a
 * no-op, so callers need not check. All methods return at once and never throw: errors are
 * left for the real reads to report.
 */
public final class Prefetcher {
    /** Does nothing: for stores that are local anyway. */
    public static final Prefetcher NONE = new Prefetcher(null, null, 1, 0);

    private final CachingBlobService blobs;
    private final CachingDirectoryService directories;
    private final int parallelism;
    private final long readAhead;
    private final Map<B3Digest, CompletableFuture<ClosureResult>> closures = new ConcurrentHashMap<>();

    private Prefetcher(CachingBlobService blobs, CachingDirectoryService directories, int parallelism, long readAhead) {
        this.blobs = blobs;
        this.directories = directories;
        this.parallelism = parallelism;
        this.readAhead = readAhead;
    }

    /** The prefetcher for {@code store}: real if its services are cached (see {@link StoreCache}), else {@link #NONE}. */
    public static Prefetcher forStore(Store store) {
        CachingBlobService b = store.blobs() instanceof CachingBlobService c ? c : null;
        CachingDirectoryService d = store.directories() instanceof CachingDirectoryService c ? c : null;
        if (b == null && d == null) {
            return NONE;
        }
        CacheConfig config = StoreCache.configOf(store).orElse(CacheConfig.memoryOnly());
        return new Prefetcher(b, d, config.prefetchParallelism(), config.readAhead());
    }

    public boolean isActive() {
        return blobs != null || directories != null;
    }

    /** A file was opened: fetch its first chunks (the read-ahead window) in the background. */
    public void fileOpened(B3Digest blob) {
        prefetchFrom(blob, 0);
    }

    /** Fetch the chunks of {@code blob} following {@code offset} (one read-ahead window) in the background. */
    public void prefetchFrom(B3Digest blob, long offset) {
        if (blobs != null && readAhead > 0) {
            blobs.prefetch(blob, offset, readAhead);
        }
    }

    /** What a closure prefetch fetched, and how many objects failed (left for real reads to report). */
    public record ClosureResult(long directories, long blobs, long failures) {
    }

    /**
     * Fetches the whole tree below {@code root} (every Directory, and every chunk of every file
     * when the cache has a disk tier) in the background, at most {@code prefetchParallelism} fetches at once. Idempotent: a root
     * already being (or done being) prefetched returns the same future. Cancel the future to stop.
     */
    public CompletableFuture<ClosureResult> prefetchClosure(DirectoryNode root) {
        if (!isActive()) {
            return CompletableFuture.completedFuture(new ClosureResult(0, 0, 0));
        }
        return closures.computeIfAbsent(root.digest(), d -> {
            CompletableFuture<ClosureResult> future = new CompletableFuture<>();
            Thread.ofVirtual().name("prefetch-" + d.toHex().substring(0, 8)).start(() -> {
                try {
                    future.complete(new ClosureWalk(d, future).run());
                } catch (RuntimeException | Error e) {
                    future.completeExceptionally(e);
                }
            });
            return future;
        });
    }

    /**
     * Fetches {@code entries} (DirectoryNodes and FileNodes, e.g. a read trace's) into the cache in
     * the background, in their order: {@code prefetchParallelism} workers take the next entry
     * each, so a fetch never waits for one further down the list, and a program reading the
     * same files in the same order finds them fetched or being fetched. File contents only into a
     * cache with a disk tier (as for a closure); others' files are left out, not counted. Cancel
     * the future to stop.
     */
    public CompletableFuture<ClosureResult> prefetchInOrder(List<? extends Node> entries) {
        if (!isActive()) {
            return CompletableFuture.completedFuture(new ClosureResult(0, 0, 0));
        }
        CompletableFuture<ClosureResult> future = new CompletableFuture<>();
        Thread.ofVirtual().name("prefetch-in-order").start(() -> {
            var next = new AtomicInteger();
            var dirs = new AtomicLong();
            var files = new AtomicLong();
            var failures = new AtomicLong();
            Runnable worker = () -> {
                for (int i = next.getAndIncrement(); i < entries.size() && !future.isCancelled(); i = next.getAndIncrement()) {
                    try {
                        if (entries.get(i) instanceof DirectoryNode d && directories != null) {
                            // No read-ahead of its subdirectories: the trace names those it needs.
                            if (directories.get(d.digest(), false).isPresent()) {
                                dirs.incrementAndGet();
                            } else {
                                failures.incrementAndGet();
                            }
                        } else if (entries.get(i) instanceof FileNode f && blobs != null && blobs.onDisk()) {
                            blobs.fetchAll(f.digest(), f.size());
                            files.incrementAndGet();
                        }
                    } catch (IOException | RuntimeException e) {
                        failures.incrementAndGet();
                    }
                }
            };
            try {
                ClosureWalk.join(parallelism, worker);
                future.complete(new ClosureResult(dirs.get(), files.get(), failures.get()));
            } catch (RuntimeException | Error e) {
                future.completeExceptionally(e);
            }
        });
        return future;
    }

    /**
     * The Directories first, then the blobs. Where the inner service streams a closure in one
     * call (gRPC), Directories come through one recursive get, cached as they arrive, so a walk of
     * the tree soon finds them all local; elsewhere (S3: a request per object), and to continue a
     * stream that failed part way (a missing Directory, a broken connection), a breadth-first
     * walk gets them one by one on parallel workers. Blobs are then fetched by a fixed set of
     * workers sharing one queue: they never hold up a Directory.
     */
    private final class ClosureWalk {
        private final B3Digest root;
        private final CompletableFuture<ClosureResult> future;
        private final LinkedBlockingQueue<FileNode> blobQueue = new LinkedBlockingQueue<>();
        private final Set<B3Digest> seenDirectories = ConcurrentHashMap.newKeySet();
        private final Set<B3Digest> queuedBlobs = ConcurrentHashMap.newKeySet();
        private final AtomicLong dirs = new AtomicLong();
        private final AtomicLong files = new AtomicLong();
        private final AtomicLong failures = new AtomicLong();

        ClosureWalk(B3Digest root, CompletableFuture<ClosureResult> future) {
            this.root = root;
            this.future = future;
        }

        ClosureResult run() {
            if (directories != null) {
                boolean streamed = false;
                if (directories.streamsClosures()) {
                    try (Stream<Directory> closure = directories.fetchRecursive(root)) {
                        closure.takeWhile(d -> !future.isCancelled()).forEach(this::found);
                        streamed = true;
                    } catch (IOException | RuntimeException streamFailed) {
                        // continued below, one Directory at a time
                    }
                }
                if (!streamed) {
                    walkOneByOne();
                }
            }
            fetchBlobs();
            return new ClosureResult(dirs.get(), files.get(), failures.get());
        }

        /** A Directory of the closure: counted once, its files queued. */
        private void found(Directory dir) {
            if (!seenDirectories.add(dir.digest())) {
                return;
            }
            dirs.incrementAndGet();
            for (var node : dir.entries().values()) {
                // File contents only into a disk cache: a whole tree would just churn the memory tier.
                if (node instanceof FileNode f && blobs != null && blobs.onDisk() && queuedBlobs.add(f.digest())) {
                    blobQueue.add(f);
                }
            }
        }

        /**
         * Breadth-first from the root, one get per Directory, by {@code parallelism} workers
         * sharing a queue (those already found come from the cache).
         */
        private void walkOneByOne() {
            LinkedBlockingQueue<B3Digest> queue = new LinkedBlockingQueue<>(List.of(root));
            Set<B3Digest> queued = ConcurrentHashMap.newKeySet();
            queued.add(root);
            AtomicLong pending = new AtomicLong(1);
            Runnable worker = () -> {
                while (pending.get() > 0 && !future.isCancelled()) {
                    B3Digest digest;
                    try {
                        digest = queue.poll(50, TimeUnit.MILLISECONDS);
                    } catch (InterruptedException e) {
                        return;
                    }
                    if (digest == null) {
                        continue;
                    }
                    try {
                        Optional<Directory> dir = directories.get(digest, false); // it walks the whole closure itself
                        if (dir.isEmpty()) {
                            failures.incrementAndGet();
                            continue;
                        }
                        found(dir.get());
                        for (var node : dir.get().entries().values()) {
                            if (node instanceof DirectoryNode d && queued.add(d.digest())) {
                                pending.incrementAndGet();
                                queue.add(d.digest());
                            }
                        }
                    } catch (IOException | RuntimeException e) {
                        failures.incrementAndGet();
                    } finally {
                        pending.decrementAndGet();
                    }
                }
            };
            join(parallelism, worker);
        }

        private void fetchBlobs() {
            join(Math.min(parallelism, Math.max(1, blobQueue.size())), this::fetchQueuedBlobs);
        }

        /** Runs {@code count} copies of {@code work} on virtual threads and waits for them. */
        private static void join(int count, Runnable work) {
            Thread[] workers = new Thread[count];
            for (int i = 0; i < workers.length; i++) {
                workers[i] = Thread.ofVirtual().start(work);
            }
            for (Thread w : workers) {
                try {
                    w.join();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }

        private void fetchQueuedBlobs() {
            FileNode file;
            while (!future.isCancelled() && (file = blobQueue.poll()) != null) {
                try {
                    blobs.fetchAll(file.digest(), file.size());
                    files.incrementAndGet();
                } catch (IOException | RuntimeException e) {
                    failures.incrementAndGet();
                }
            }
        }
    }
}

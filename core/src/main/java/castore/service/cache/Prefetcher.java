package castore.service.cache;

import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.service.DirectoryService;
import castore.service.Store;
import java.io.IOException;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

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

    /** A breadth-first walk by a fixed set of workers sharing one queue of directories and blobs. */
    private final class ClosureWalk {
        private sealed interface Task permits DirTask, BlobTask {
        }

        private record DirTask(B3Digest digest) implements Task {
        }

        private record BlobTask(B3Digest digest) implements Task {
        }

        private final CompletableFuture<ClosureResult> future;
        private final LinkedBlockingQueue<Task> queue = new LinkedBlockingQueue<>();
        private final Set<B3Digest> seen = ConcurrentHashMap.newKeySet();
        private final AtomicLong pending = new AtomicLong();
        private final AtomicLong dirs = new AtomicLong();
        private final AtomicLong files = new AtomicLong();
        private final AtomicLong failures = new AtomicLong();

        ClosureWalk(B3Digest root, CompletableFuture<ClosureResult> future) {
            this.future = future;
            enqueue(new DirTask(root));
        }

        private void enqueue(Task task) {
            B3Digest digest = task instanceof DirTask(var d) ? d : ((BlobTask) task).digest();
            if (seen.add(digest)) {
                pending.incrementAndGet();
                queue.add(task);
            }
        }

        ClosureResult run() {
            Thread[] workers = new Thread[parallelism];
            for (int i = 0; i < workers.length; i++) {
                workers[i] = Thread.ofVirtual().start(this::work);
            }
            for (Thread w : workers) {
                try {
                    w.join();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            return new ClosureResult(dirs.get(), files.get(), failures.get());
        }

        private void work() {
            while (pending.get() > 0 && !future.isCancelled()) {
                Task task;
                try {
                    task = queue.poll(50, TimeUnit.MILLISECONDS);
                } catch (InterruptedException e) {
                    return;
                }
                if (task == null) {
                    continue;
                }
                try {
                    switch (task) {
                        case DirTask(B3Digest digest) -> walk(digest);
                        case BlobTask(B3Digest digest) -> {
                            if (blobs != null) {
                                blobs.fetchAll(digest);
                                files.incrementAndGet();
                            }
                        }
                    }
                } catch (IOException | RuntimeException e) {
                    failures.incrementAndGet();
                } finally {
                    pending.decrementAndGet();
                }
            }
        }

        private void walk(B3Digest digest) throws IOException {
            DirectoryService source = directories;
            if (source == null) {
                return;
            }
            Optional<Directory> dir = source.get(digest);
            if (dir.isEmpty()) {
                failures.incrementAndGet();
                return;
            }
            dirs.incrementAndGet();
            for (var node : dir.get().entries().values()) {
                switch (node) {
                    case DirectoryNode d -> enqueue(new DirTask(d.digest()));
                    // File contents only into a disk cache: a whole tree would just churn the memory tier.
                    case FileNode f when blobs != null && blobs.onDisk() -> enqueue(new BlobTask(f.digest()));
                    default -> {
                    }
                }
            }
        }
    }
}

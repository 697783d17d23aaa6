package castore.service;

import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;

/** Walks of a Directory closure, fetching lazily. */
public final class DirectoryTraversal {
    private DirectoryTraversal() {
    }

    /**
     * Each Directory once, at its first place in a depth-first walk in name order (pre-order:
     * a parent before its children, a subtree whole before its next sibling), which is the order
     * find, ls -R and a mount's readers enter directories in: a reader can consume the stream as
     * it comes. A missing one is an UncheckedIOException(NotFoundException).
     */
    public static Stream<Directory> depthFirst(DirectoryService service, B3Digest root) {
        PreOrder walk = new PreOrder(root) {
            @Override
            Directory fetch(Known k) throws IOException {
                return service.get(k.digest()).orElseThrow(() -> new NotFoundException("directory " + k.digest() + " not found"));
            }
        };
        return StreamSupport.stream(Spliterators.spliteratorUnknownSize(walk, Spliterator.ORDERED | Spliterator.NONNULL), false);
    }

    /** A Directory to visit, with its place in walk order: the child indexes from the root. */
    private record Known(int[] place, B3Digest digest) {
        Known child(int index, B3Digest child) {
            int[] p = Arrays.copyOf(place, place.length + 1);
            p[place.length] = index;
            return new Known(p, child);
        }
    }

    /** The consumer's side of both walks: each Directory once, pre-order in name order. */
    private abstract static class PreOrder implements Iterator<Directory> {
        // To visit, the next on top; one may be pushed twice and is skipped once seen.
        private final ArrayDeque<Known> stack = new ArrayDeque<>();
        private final Set<B3Digest> seen = new HashSet<>();
        private Directory next;

        PreOrder(B3Digest root) {
            stack.push(new Known(new int[0], root));
        }

        /** The Directory {@code k} names; a missing one is a NotFoundException. */
        abstract Directory fetch(Known k) throws IOException;

        @Override
        public boolean hasNext() {
            while (next == null && !stack.isEmpty()) {
                Known k = stack.pop();
                if (!seen.add(k.digest())) {
                    continue;
                }
                Directory d;
                try {
                    d = fetch(k);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                for (int i = d.entryCount() - 1; i >= 0; i--) {
                    if (d.node(i) instanceof DirectoryNode child && !seen.contains(child.digest())) {
                        stack.push(k.child(i, child.digest()));
                    }
                }
                next = d;
            }
            return next != null;
        }

        @Override
        public Directory next() {
            if (!hasNext()) {
                throw new NoSuchElementException();
            }
            Directory d = next;
            next = null;
            return d;
        }
    }

    /**
     * What {@link #depthFirst} gives, in the same order, with up to {@code inFlight} gets running
     * ahead of the consumer: for a service whose get is a round trip each (S3, where a walk of a
     * tree one get at a time waits a round trip per Directory). A Directory fetched has its
     * subdirectories known at once, and the gets run on those nearest in walk order to the one the
     * consumer waits for (a parent's first children before its later ones and their subtrees), at
     * most {@code 8 * inFlight} Directories fetched ahead of it. Closing the stream stops the gets.
     */
    public static Stream<Directory> depthFirstAhead(DirectoryService service, B3Digest root, int inFlight) {
        AheadWalk walk = new AheadWalk(service, root, inFlight);
        return StreamSupport.stream(Spliterators.spliteratorUnknownSize(walk, Spliterator.ORDERED | Spliterator.NONNULL), false)
                .onClose(walk::close);
    }

    /** {@link #depthFirstAhead}: the consumer's walk, with the gets ahead of it. */
    private static final class AheadWalk extends PreOrder {
        private static final Comparator<Known> WALK_ORDER = (a, b) -> Arrays.compare(a.place(), b.place());

        private final DirectoryService service;
        private final int inFlight;
        private final int window;
        private final ExecutorService gets = Executors.newVirtualThreadPerTaskExecutor();
        // All below guarded by this.
        private final PriorityQueue<Known> waiting = new PriorityQueue<>(WALK_ORDER);
        /** The same as {@link #waiting}, by digest. */
        private final Map<B3Digest, Known> notStarted = new HashMap<>();
        private final Map<B3Digest, CompletableFuture<Directory>> fetches = new HashMap<>();
        private int running;
        /** Fetched (or running) and not yet handed to the consumer. */
        private int ahead;
        private boolean closed;

        AheadWalk(DirectoryService service, B3Digest root, int inFlight) {
            super(root);
            this.service = service;
            this.inFlight = Math.max(1, inFlight);
            this.window = 8 * this.inFlight;
            synchronized (this) {
                fetches.put(root, new CompletableFuture<>());
                enqueue(new Known(new int[0], root));
                startGets(null);
            }
        }

        @Override
        Directory fetch(Known k) throws IOException {
            CompletableFuture<Directory> fetch;
            synchronized (this) {
                fetch = fetches.get(k.digest());
                startGets(k.digest()); // the one waited for goes first, past the window
            }
            try {
                return fetch.get();
            } catch (ExecutionException e) {
                switch (e.getCause()) {
                    case IOException io -> throw io;
                    case RuntimeException r -> throw r;
                    case Error err -> throw err;
                    default -> throw new IOException(e.getCause());
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted walking " + k.digest());
            } finally {
                synchronized (this) {
                    ahead--;
                    startGets(null);
                }
            }
        }

        /** Starts gets while fewer than inFlight run and the window allows; {@code needed} (if waiting) at once. */
        private void startGets(B3Digest needed) {
            if (closed) {
                return;
            }
            Known first = needed != null ? notStarted.get(needed) : null;
            if (first != null) {
                waiting.remove(first);
                start(first);
            }
            while (running < inFlight && ahead < window && !waiting.isEmpty()) {
                start(waiting.poll());
            }
        }

        private void enqueue(Known k) {
            waiting.add(k);
            notStarted.put(k.digest(), k);
        }

        private void start(Known k) {
            notStarted.remove(k.digest());
            running++;
            ahead++;
            CompletableFuture<Directory> fetch = fetches.get(k.digest());
            try {
                gets.execute(() -> {
                    try {
                        Directory d = service.get(k.digest())
                                .orElseThrow(() -> new NotFoundException("directory " + k.digest() + " not found"));
                        synchronized (this) {
                            for (int i = 0; i < d.entryCount(); i++) {
                                if (d.node(i) instanceof DirectoryNode c && !fetches.containsKey(c.digest())) {
                                    fetches.put(c.digest(), new CompletableFuture<>());
                                    enqueue(k.child(i, c.digest()));
                                }
                            }
                        }
                        fetch.complete(d);
                    } catch (Throwable e) {
                        // Any Throwable: a get that ended without completing its future left the consumer waiting for good.
                        fetch.completeExceptionally(e);
                    } finally {
                        synchronized (this) {
                            running--;
                            startGets(null);
                        }
                    }
                });
            } catch (RejectedExecutionException e) {
                fetch.completeExceptionally(new IOException("closed"));
            }
        }

        synchronized void close() {
            closed = true;
            gets.shutdownNow();
        }
    }
}

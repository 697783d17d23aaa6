package castore.service;

import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayDeque;
import java.util.HashSet;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.Set;
import java.util.Spliterator;
import java.util.Spliterators;
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
        Iterator<Directory> it = new Iterator<>() {
            // Digests to visit, the next on top; one may be pushed twice and is skipped once seen.
            private final ArrayDeque<B3Digest> stack = new ArrayDeque<>(java.util.List.of(root));
            private final Set<B3Digest> seen = new HashSet<>();
            private Directory next;

            @Override
            public boolean hasNext() {
                while (next == null && !stack.isEmpty()) {
                    B3Digest digest = stack.pop();
                    if (!seen.add(digest)) {
                        continue;
                    }
                    Directory d;
                    try {
                        d = service.get(digest).orElseThrow(() -> new NotFoundException("directory " + digest + " not found"));
                    } catch (IOException e) {
                        throw new UncheckedIOException(e);
                    }
                    for (int i = d.entryCount() - 1; i >= 0; i--) {
                        if (d.node(i) instanceof DirectoryNode child && !seen.contains(child.digest())) {
                            stack.push(child.digest());
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
        };
        return StreamSupport.stream(Spliterators.spliteratorUnknownSize(it, Spliterator.ORDERED | Spliterator.NONNULL), false);
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

    /** The state of {@link #depthFirstAhead}: the consumer's walk, and the gets ahead of it. */
    private static final class AheadWalk implements Iterator<Directory> {
        /** A Directory known (its parent was fetched), with its place in walk order: child indexes from the root. */
        private record Known(int[] place, B3Digest digest) {
        }

        private static final java.util.Comparator<Known> WALK_ORDER = (a, b) -> java.util.Arrays.compare(a.place(), b.place());

        private final DirectoryService service;
        private final int inFlight;
        private final int window;
        private final java.util.concurrent.ExecutorService gets = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor();
        // All below guarded by this.
        private final java.util.PriorityQueue<Known> waiting = new java.util.PriorityQueue<>(WALK_ORDER);
        private final java.util.Map<B3Digest, java.util.concurrent.CompletableFuture<Directory>> fetches = new java.util.HashMap<>();
        private int running;
        /** Fetched (or running) and not yet handed to the consumer. */
        private int ahead;
        private boolean closed;
        // The consumer's own walk, as depthFirst's.
        private final ArrayDeque<Known> stack = new ArrayDeque<>();
        private final Set<B3Digest> seen = new HashSet<>();
        private Directory next;

        AheadWalk(DirectoryService service, B3Digest root, int inFlight) {
            this.service = service;
            this.inFlight = Math.max(1, inFlight);
            this.window = 8 * this.inFlight;
            Known top = new Known(new int[0], root);
            stack.push(top);
            synchronized (this) {
                fetches.put(root, new java.util.concurrent.CompletableFuture<>());
                waiting.add(top);
                startGets(null);
            }
        }

        @Override
        public boolean hasNext() {
            while (next == null && !stack.isEmpty()) {
                Known k = stack.pop();
                if (!seen.add(k.digest())) {
                    continue;
                }
                java.util.concurrent.CompletableFuture<Directory> fetch;
                synchronized (this) {
                    fetch = fetches.get(k.digest());
                    startGets(k.digest()); // the one waited for goes first, past the window
                }
                Directory d;
                try {
                    d = fetch.get();
                } catch (java.util.concurrent.ExecutionException e) {
                    throw e.getCause() instanceof UncheckedIOException u ? u
                            : new UncheckedIOException(e.getCause() instanceof IOException io ? io : new IOException(e.getCause()));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new UncheckedIOException(new java.io.InterruptedIOException("interrupted walking " + k.digest()));
                }
                synchronized (this) {
                    ahead--;
                    startGets(null);
                }
                for (int i = d.entryCount() - 1; i >= 0; i--) {
                    if (d.node(i) instanceof DirectoryNode child && !seen.contains(child.digest())) {
                        stack.push(new Known(child(k.place(), i), child.digest()));
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

        private static int[] child(int[] place, int index) {
            int[] p = java.util.Arrays.copyOf(place, place.length + 1);
            p[place.length] = index;
            return p;
        }

        /** Starts gets while fewer than inFlight run and the window allows; {@code needed} (if waiting) at once. */
        private void startGets(B3Digest needed) {
            if (closed) {
                return;
            }
            if (needed != null) {
                for (Known k : waiting) {
                    if (k.digest().equals(needed)) {
                        waiting.remove(k);
                        start(k);
                        break;
                    }
                }
            }
            while (running < inFlight && ahead < window && !waiting.isEmpty()) {
                start(waiting.poll());
            }
        }

        private void start(Known k) {
            running++;
            ahead++;
            java.util.concurrent.CompletableFuture<Directory> fetch = fetches.get(k.digest());
            try {
                gets.execute(() -> {
                    try {
                        Directory d = service.get(k.digest())
                                .orElseThrow(() -> new NotFoundException("directory " + k.digest() + " not found"));
                        synchronized (this) {
                            for (int i = 0; i < d.entryCount(); i++) {
                                if (d.node(i) instanceof DirectoryNode c && !fetches.containsKey(c.digest())) {
                                    fetches.put(c.digest(), new java.util.concurrent.CompletableFuture<>());
                                    waiting.add(new Known(child(k.place(), i), c.digest()));
                                }
                            }
                        }
                        fetch.complete(d);
                    } catch (IOException | RuntimeException e) {
                        fetch.completeExceptionally(e instanceof IOException io ? new UncheckedIOException(io) : e);
                    } finally {
                        synchronized (this) {
                            running--;
                            startGets(null);
                        }
                    }
                });
            } catch (java.util.concurrent.RejectedExecutionException e) {
                fetch.completeExceptionally(new UncheckedIOException(new IOException("closed")));
            }
        }

        synchronized void close() {
            closed = true;
            gets.shutdownNow();
        }
    }
}

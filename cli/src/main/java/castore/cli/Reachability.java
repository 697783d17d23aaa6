package castore.cli;

import castore.ingest.posix.Display;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.Name;
import castore.model.Node;
import castore.service.CorruptedDataException;
import castore.service.Store;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletionService;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorCompletionService;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.stream.Stream;

/**
 * Walks everything the roots reach, each Directory once, checking each Directory against the
 * node that points to it (present, digest, size). Shared by verify (which reports and goes on)
 * and gc (which must stop at the first hole, since it cannot know what a missing Directory
 * would have kept alive).
 */
final class Reachability {

    interface Visitor {
        /** A file reached by {@code where} (the first path that reaches its blob). */
        void file(FileNode file, String where) throws IOException;

        /** Something wrong with the closure, one line naming it. */
        void problem(String message) throws IOException;
    }

    private final Set<B3Digest> directories = new HashSet<>();
    private final Set<B3Digest> blobs = new HashSet<>();
    private long roots;

    Set<B3Digest> directories() {
        return directories;
    }

    Set<B3Digest> blobs() {
        return blobs;
    }

    long roots() {
        return roots;
    }

    private record Pending(DirectoryNode node, String where) {
    }

    /**
     * Directories fetched at once from a store reached through the network: the walk is one
     * round trip per Directory, 3,007 of them took 4 s over S3Proxy on loopback, and would take
     * minutes at a real object store's latency.
     */
    static final int REMOTE_FETCHES = 32;

    /** A Directory as fetched for {@code pending}: null if missing, or why it is corrupted. */
    private record Fetched(Pending pending, Directory directory, CorruptedDataException corrupted) {
    }

    /**
     * Walks from every root of the store, one root after another, fetching up to
     * {@code fetchesAtOnce} Directories at a time. With more than one, which path first reaches a
     * Directory or blob shared by several depends on which fetch answers first.
     */
    void walkAll(Store store, int fetchesAtOnce, Visitor visitor) throws IOException {
        List<Node.NamedNode> all = new ArrayList<>();
        try (Stream<Node.NamedNode> list = store.roots().list()) {
            list.forEach(all::add);
        }
        for (Node.NamedNode root : all) {
            walk(store, root.name(), root.node(), fetchesAtOnce, visitor);
        }
    }

    private void walk(Store store, Name rootName, Node root, int fetchesAtOnce, Visitor visitor) throws IOException {
        roots++;
        ArrayDeque<Pending> queue = new ArrayDeque<>();
        visit(root, Display.escape(rootName.bytesUnsafe()), queue, visitor);
        if (fetchesAtOnce <= 1) {
            while (!queue.isEmpty()) {
                check(fetch(store, queue.poll()), queue, visitor);
            }
            return;
        }
        ExecutorService fetches = Executors.newVirtualThreadPerTaskExecutor();
        try {
            CompletionService<Fetched> answers = new ExecutorCompletionService<>(fetches);
            int running = 0;
            while (!queue.isEmpty() || running > 0) {
                for (; running < fetchesAtOnce && !queue.isEmpty(); running++) {
                    Pending p = queue.poll();
                    answers.submit(() -> fetch(store, p));
                }
                Fetched fetched;
                try {
                    fetched = answers.take().get();
                } catch (ExecutionException e) {
                    switch (e.getCause()) {
                        case IOException io -> throw io;
                        case RuntimeException r -> throw r;
                        default -> throw new IOException(e.getCause());
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new InterruptedIOException("interrupted while walking the roots");
                }
                running--;
                check(fetched, queue, visitor);
            }
        } finally {
            fetches.shutdownNow(); // a walk stopped by a problem (gc) leaves no fetch behind
        }
    }

    private static Fetched fetch(Store store, Pending p) throws IOException {
        try {
            return new Fetched(p, store.directories().get(p.node.digest()).orElse(null), null);
        } catch (CorruptedDataException e) {
            return new Fetched(p, null, e);
        }
    }

    private void check(Fetched fetched, ArrayDeque<Pending> queue, Visitor visitor) throws IOException {
        Pending p = fetched.pending();
        Directory d = fetched.directory();
        if (fetched.corrupted() != null) {
            // verify goes on to report the rest; gc stops here as for a missing one
            visitor.problem("directory " + p.node.digest() + " is corrupted (" + p.where + "): " + fetched.corrupted().getMessage());
            return;
        }
        if (d == null) {
            visitor.problem("directory " + p.node.digest() + " is missing (" + p.where + ")");
            return;
        }
        if (!d.digest().equals(p.node.digest())) {
            visitor.problem("directory " + p.node.digest() + " has content with digest " + d.digest() + " (" + p.where + ")");
        }
        if (d.size() != p.node.size()) {
            visitor.problem("directory " + p.node.digest() + " has size " + d.size() + " but its node says " + p.node.size()
                    + " (" + p.where + ")");
        }
        for (Map.Entry<Name, Node> e : d.entries().entrySet()) {
            visit(e.getValue(), p.where + "/" + Display.escape(e.getKey().bytesUnsafe()), queue, visitor);
        }
    }

    private void visit(Node node, String where, ArrayDeque<Pending> queue, Visitor visitor) throws IOException {
        switch (node) {
            case DirectoryNode d -> {
                if (directories.add(d.digest())) {
                    queue.add(new Pending(d, where));
                }
            }
            case FileNode f -> {
                if (blobs.add(f.digest())) {
                    visitor.file(f, where);
                }
            }
            default -> {
            }
        }
    }
}

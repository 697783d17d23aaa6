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
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
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

    /** Walks from every root of the store. */
    void walkAll(Store store, Visitor visitor) throws IOException {
        List<Node.NamedNode> all = new ArrayList<>();
        try (Stream<Node.NamedNode> list = store.roots().list()) {
            list.forEach(all::add);
        }
        for (Node.NamedNode root : all) {
            walk(store, root.name(), root.node(), visitor);
        }
    }

    void walk(Store store, Name rootName, Node root, Visitor visitor) throws IOException {
        roots++;
        String rootWhere = Display.escape(rootName.bytesUnsafe());
        ArrayDeque<Pending> queue = new ArrayDeque<>();
        visit(root, rootWhere, queue, visitor);
        while (!queue.isEmpty()) {
            Pending p = queue.poll();
            Directory d;
            try {
                d = store.directories().get(p.node.digest()).orElse(null);
            } catch (CorruptedDataException e) {
                // verify goes on to report the rest; gc stops here as for a missing one
                visitor.problem("directory " + p.node.digest() + " is corrupted (" + p.where + "): " + e.getMessage());
                continue;
            }
            if (d == null) {
                visitor.problem("directory " + p.node.digest() + " is missing (" + p.where + ")");
                continue;
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

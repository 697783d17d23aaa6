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
}

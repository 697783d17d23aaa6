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

/** Breadth-first walks of a Directory closure, fetching lazily. */
public final class DirectoryTraversal {
    private DirectoryTraversal() {
    }

    /** Each Directory once, parents before children; a missing one is an UncheckedIOException(NotFoundException). */
    public static Stream<Directory> breadthFirst(DirectoryService service, B3Digest root) {
        Iterator<Directory> it = new Iterator<>() {
            private final ArrayDeque<B3Digest> queue = new ArrayDeque<>(java.util.List.of(root));
            private final Set<B3Digest> seen = new HashSet<>(java.util.List.of(root));

            @Override
            public boolean hasNext() {
                return !queue.isEmpty();
            }

            @Override
            public Directory next() {
                if (queue.isEmpty()) {
                    throw new NoSuchElementException();
                }
                B3Digest digest = queue.poll();
                Directory d;
                try {
                    d = service.get(digest).orElseThrow(() -> new NotFoundException("directory " + digest + " not found"));
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
                for (var node : d.entries().values()) {
                    if (node instanceof DirectoryNode child && seen.add(child.digest())) {
                        queue.add(child.digest());
                    }
                }
                return d;
            }
        };
        return StreamSupport.stream(Spliterators.spliteratorUnknownSize(it, Spliterator.ORDERED | Spliterator.NONNULL), false);
    }
}

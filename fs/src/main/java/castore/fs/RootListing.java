package castore.fs;

import castore.model.Node;
import castore.service.RootService;
import java.io.IOException;
import java.util.Iterator;
import java.util.stream.Stream;

/**
 * One open listing of the mount root (only with --list-root). Roots are streamed from the
 * RootService, never all loaded. The readdir cookie is the position in the stream (after "."
 * and ".."); a listing read front to back continues the open stream, and any other cookie (a
 * seekdir, or a re-read after the buffer filled) re-opens the stream and skips to it. Positions
 * may shift if roots are added or removed meanwhile, as with any directory changing under readdir.
 * After a failure the stream is re-opened at the next call.
 */
final class RootListing implements AutoCloseable {
    private final RootService roots;

    // Guarded by this.
    private Stream<Node.NamedNode> stream;
    private Iterator<Node.NamedNode> iterator;
    /** Position (cookie) of the root {@link #pending} or the iterator's next element. */
    private long position;
    /** A root taken from the iterator but not yet accepted by a reply buffer. */
    private Node.NamedNode pending;

    RootListing(RootService roots) {
        this.roots = roots;
    }

    /** Receives roots; returns false when the reply is full (the root will be offered again). */
    interface Consumer {
        boolean accept(Node.NamedNode root, long nextCookie);
    }

    /** Offers roots from stream position {@code index} on (0 = the first root). */
    synchronized void list(long index, Consumer consumer) throws IOException {
        if (iterator == null || index != position) {
            reopen(index);
        }
        try {
            while (true) {
                if (pending == null) {
                    if (!iterator.hasNext()) {
                        return;
                    }
                    pending = iterator.next();
                }
                if (!consumer.accept(pending, position + 1)) {
                    return;
                }
                pending = null;
                position++;
            }
        } catch (RuntimeException e) {
            // A stream that failed is not continued: a remote's says it has ended once its call
            // broke, and a retry from this cookie would list nothing more, with no error.
            closeStream();
            throw e;
        }
    }

    private void reopen(long index) throws IOException {
        closeStream();
        stream = roots.list();
        iterator = stream.skip(index).iterator();
        position = index;
        pending = null;
    }

    private void closeStream() {
        if (stream != null) {
            stream.close();
            stream = null;
            iterator = null;
        }
    }

    @Override
    public synchronized void close() {
        closeStream();
    }
}

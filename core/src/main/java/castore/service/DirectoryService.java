package castore.service;

import castore.model.B3Digest;
import castore.model.Directory;
import java.io.IOException;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Stores Directories by digest. Only closed trees are accepted: a Directory is stored only if
 * every child directory it names is already present with the size its node claims. So a
 * closure is put leaves first. Implementations are thread-safe.
 */
public interface DirectoryService extends AutoCloseable {

    Optional<Directory> get(B3Digest digest) throws IOException;

    boolean has(B3Digest digest) throws IOException;

    /**
     * Stores one Directory whose children are all present (or were put earlier in this
     * closure); returns its digest. Throws {@link castore.model.InvalidDataException} naming the
     * missing or mismatching child otherwise, storing nothing.
     */
    B3Digest put(Directory directory) throws IOException;

    /** A putter for a whole closure, leaves first; nothing is visible before it is finished. */
    default ClosurePutter putClosure() {
        return new ClosurePutter.Simple(this);
    }

    /**
     * Whether a closure put may leave out child Directories already stored and only name them
     * (every castore backend, and a castore daemon); a tvix server wants every put to carry the
     * whole closure. A copy between stores sends only what the destination lacks when it can.
     */
    default boolean acceptsStoredChildren() throws IOException {
        return true;
    }

    /**
     * The Directory and all below it, each Directory once, a parent before its children: here
     * depth-first in name order ({@link DirectoryTraversal#depthFirst}), the order a walk of a
     * mount enters them in; another server (tvix) may send breadth-first. Throws
     * NotFoundException (from the stream) if part of the closure is missing.
     */
    default Stream<Directory> getRecursive(B3Digest root) throws IOException {
        return DirectoryTraversal.depthFirst(this, root);
    }

    /**
     * Whether {@link #getRecursive} streams the closure faster than a caller's gets one at a time
     * would: one call (a daemon's recursive Get), or gets many at once in walk order (S3). A
     * cache then streams a walked tree ahead of the walk, and background prefetch prefers it to
     * parallel gets.
     */
    default boolean streamsClosures() {
        return false;
    }

    @Override
    default void close() throws IOException {
    }
}

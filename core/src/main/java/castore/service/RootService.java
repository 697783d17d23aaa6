package castore.service;

import castore.model.Name;
import castore.model.Node;
import java.io.IOException;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * The root catalog: named root nodes, like tags. Names follow the rules of directory entry
 * names. Names are mutable (put re-points), the nodes they name are not.
 */
public interface RootService extends AutoCloseable {

    Optional<Node> get(Name name) throws IOException;

    /** Adds or re-points {@code name}. */
    void put(Name name, Node node) throws IOException;

    /** Removes the name (never the data); false if it was absent. */
    boolean remove(Name name) throws IOException;

    /**
     * All roots in name order, streamed (not loaded into memory all at once by the caller).
     * Close the stream when done.
     */
    Stream<Node.NamedNode> list() throws IOException;

    /**
     * The last answer {@link #get} gave for {@code name}, kept where it outlives the catalog's
     * reach (a cache directory: {@code castore.service.cache.RememberedRoots}), for a caller
     * whose {@link #get} just failed; empty if none is kept. Never asks the catalog.
     */
    default Optional<Node> lastKnown(Name name) {
        return Optional.empty();
    }

    @Override
    default void close() throws IOException {
    }
}

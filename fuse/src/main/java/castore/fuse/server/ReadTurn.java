package castore.fuse.server;

/**
 * The turn to read the next request, which a transport gives one reader thread at a time (see
 * {@link FuseServer#handle}). The reader holding it serves quick requests itself and reads on; before
 * serving one that may take long it passes the turn, so that another reader takes the next request.
 */
@FunctionalInterface
public interface ReadTurn {
    /** For callers with a single reader (or none): no other reader is there to take the turn. */
    ReadTurn ALONE = () -> false;

    /**
     * Lets another reader read the next request while the caller serves this one; false if no
     * other reader is free to (the caller then keeps the turn).
     */
    boolean pass();

    /**
     * Before a request that only takes CPU time (a large READ): passes the turn as {@link #pass}
     * does when another reader could serve the next request on another CPU meanwhile; a
     * transport whose readers share one CPU keeps it (a wake-up would only add a context switch).
     */
    default boolean passForWork() {
        return pass();
    }
}

package castore.grpc.client;

import java.util.ArrayDeque;

/**
 * Arrays one {@link BlobStream} receives its messages into, given back by its consumer once it
 * has done with them. Until the first is given back, each array is new and exactly the size
 * asked for (a consumer that never gives any back sees plain arrays). After that, a message
 * takes the first array given back that fits it, else a new one of {@code sizeHint} bytes if that
 * is more (see {@link BlobStream}: about the largest chunk, so that nearly every array given back
 * fits nearly every later message).
 */
final class ArrayPool {
    /** More than a stream has out at once beyond its consumer's (the messages asked for ahead). */
    private static final int MAX_FREE = 64;

    private final int sizeHint;
    private final ArrayDeque<byte[]> free = new ArrayDeque<>();
    private boolean recycling;
    private boolean closed;

    ArrayPool(int sizeHint) {
        this.sizeHint = sizeHint;
    }

    /** An array of at least {@code length} bytes whose contents are undefined. */
    synchronized byte[] take(int length) {
        for (var it = free.iterator(); it.hasNext();) {
            byte[] array = it.next();
            if (array.length >= length) {
                it.remove();
                return array;
            }
        }
        return new byte[recycling ? Math.max(length, sizeHint) : length];
    }

    /** {@code array}, which nobody reads or writes any more, for a later {@link #take}. */
    synchronized void give(byte[] array) {
        recycling = true;
        if (!closed && free.size() < MAX_FREE) {
            free.addLast(array);
        }
    }

    /** Drops the arrays given back, and any given back later (the stream has ended). */
    synchronized void clear() {
        closed = true;
        free.clear();
    }
}

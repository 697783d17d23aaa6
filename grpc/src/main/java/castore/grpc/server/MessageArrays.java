package castore.grpc.server;

import java.util.concurrent.ArrayBlockingQueue;

/**
 * Arrays the daemon reads Read messages into, shared by all streams. A message lives in its array
 * only from the store read until gRPC's {@code onNext} returns: by then a network transport has
 * copied it into its own buffers (MessageFramer.writePayload drains a message at once), and the
 * stream's pump gives the array back ({@link StreamPump.Source#sent}). A fresh array per message
 * made the daemon zero and collect 1 GiB per GiB served; an array per stream would hold a
 * megabyte for every open stream, also while its client is slow. So large messages take one of
 * a few arrays kept here, and small ones (a chunk read at random) a fresh array of their size.
 */
final class MessageArrays {
    /** Messages at least this long use the shared arrays. */
    static final int SHARED_FROM = 64 * 1024;
    /** Arrays kept while nobody uses them: one per message being produced on gRPC's threads at once is plenty. */
    private static final int KEPT = 8;
    private static final ArrayBlockingQueue<byte[]> SPARE = new ArrayBlockingQueue<>(KEPT);

    private MessageArrays() {
    }

    /** An array with room for {@code length} bytes (its contents are whatever it held before). */
    static byte[] borrow(int length) {
        if (length < SHARED_FROM || length > BlobServiceImpl.MAX_DATA_MESSAGE) {
            return new byte[length];
        }
        byte[] spare = SPARE.poll();
        return spare != null ? spare : new byte[BlobServiceImpl.MAX_DATA_MESSAGE];
    }

    /** Takes back an array from {@link #borrow} once its message is sent; null and small arrays are ignored. */
    static void giveBack(byte[] array) {
        if (array != null && array.length == BlobServiceImpl.MAX_DATA_MESSAGE) {
            SPARE.offer(array);
        }
    }

    /** Arrays kept now (for tests). */
    static int kept() {
        return SPARE.size();
    }
}

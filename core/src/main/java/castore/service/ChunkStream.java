package castore.service;

import java.io.IOException;

/**
 * The chunks of one blob, in the order of its chunk list, from a single request (see
 * {@link BlobService#streamChunks}). Not thread-safe: one consumer takes the chunks in turn.
 */
public interface ChunkStream extends AutoCloseable {
    /**
     * The next chunk's bytes, verified against its digest; exactly its listed size.
     * {@link NotFoundException} before any chunk: the service does not stream this blob after
     * all (read it chunk by chunk).
     */
    byte[] next() throws IOException;

    /**
     * As {@link #next}, but the chunk is the first (listed size) bytes of an array that may be
     * longer and that the stream may fill again once the caller gives it back with
     * {@link #recycle}; until then nothing writes to it. A caller that keeps chunks only briefly
     * (a window over a sequential read) saves a new array per chunk.
     */
    default byte[] nextShared() throws IOException {
        return next();
    }

    /** Gives back an array {@link #nextShared} returned, which nobody reads any more. */
    default void recycle(byte[] array) {
    }

    /** Passes over the next chunk unverified and unkept (the caller has it already). */
    void skip() throws IOException;

    /** Ends the request if chunks are left. */
    @Override
    void close();
}

package castore.service;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;

/**
 * Random access to one blob. {@link #read} is positional and thread-safe: concurrent reads on
 * one reader run in parallel. Every byte returned has been verified against its digest;
 * corrupted or missing data throws {@link CorruptedDataException} or IOException, never wrong bytes.
 */
public interface BlobReader extends AutoCloseable {

    long size();

    /**
     * Reads up to {@code dst.remaining()} bytes starting at {@code position}. Returns the number
     * read, fewer only at end of blob; -1 if {@code position >= size()}.
     */
    int read(long position, ByteBuffer dst) throws IOException;

    /**
     * Whether this reader keeps a sequential reader's next data coming by itself (e.g. the local
     * store announces the next chunks to the disk): a caller's own read-ahead would then only add
     * hand-offs and copies.
     */
    default boolean readsAhead() {
        return false;
    }

    /** A sequential stream from {@code position} on. */
    default InputStream inputStream(long position) {
        return new BlobInputStream(this, position);
    }

    @Override
    default void close() throws IOException {
    }
}

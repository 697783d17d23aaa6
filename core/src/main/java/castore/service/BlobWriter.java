package castore.service;

import castore.model.B3Digest;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;

/**
 * Writes one new blob. The writer chunks and hashes as data arrives; {@link #finish()} makes the
 * blob visible and returns its digest. {@link #close()} without finish discards it: nothing
 * half-written ever becomes visible.
 */
public interface BlobWriter extends AutoCloseable {

    void write(ByteBuffer data) throws IOException;

    default void write(byte[] data, int offset, int length) throws IOException {
        write(ByteBuffer.wrap(data, offset, length));
    }

    /** Stores the blob (idempotent for content already present) and returns its digest. */
    B3Digest finish() throws IOException;

    /** Bytes written so far. */
    long size();

    /** Bytes of new chunks this writer stored (not already present). Known after finish. */
    default long bytesStored() {
        return 0;
    }

    @Override
    void close() throws IOException;

    /** An OutputStream view; its close() does not finish the blob. */
    default OutputStream asOutputStream() {
        BlobWriter w = this;
        return new OutputStream() {
            @Override
            public void write(int b) throws IOException {
                w.write(ByteBuffer.wrap(new byte[] {(byte) b}));
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                w.write(ByteBuffer.wrap(b, off, len));
            }
        };
    }
}

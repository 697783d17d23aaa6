package castore.service;

import castore.model.B3Digest;
import java.io.IOException;
import java.util.List;
import java.util.Optional;

/**
 * Stores blobs (file contents) by their BLAKE3 digest. Blobs are split into content-defined
 * chunks (FastCDC); a backend keeps the chunk list of each blob so a reader can seek.
 * Implementations are thread-safe.
 */
public interface BlobService extends AutoCloseable {

    boolean has(B3Digest digest) throws IOException;

    /** A random-access reader, or empty if the blob is absent. */
    Optional<BlobReader> open(B3Digest digest) throws IOException;

    /** A writer for a new blob; {@link BlobWriter#finish()} stores it and returns its digest. */
    BlobWriter create() throws IOException;

    /**
     * The chunks of a blob, in order; their sizes add up to the blob size. Empty if the blob is
     * absent. A blob stored as one piece has one chunk whose digest is the blob digest.
     */
    Optional<List<ChunkMeta>> chunks(B3Digest digest) throws IOException;

    @Override
    default void close() throws IOException {
    }
}

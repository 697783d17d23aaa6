package castore.service;

import castore.chunk.FastCdc;
import castore.hash.Blake3;
import castore.model.B3Digest;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * Stores blobs (file contents) by their BLAKE3 digest. Blobs are split into content-defined
 * chunks (FastCDC); a backend keeps the chunk list of each blob so a reader can seek.
 * Implementations are thread-safe.
 */
public interface BlobService extends AutoCloseable {
    /**
     * The largest small blob: one chunk of tvix's chunking at most, so one request and one
     * message whole. Blobs up to this size are fetched whole by a cache, and asked for and sent
     * in batches by export and copy.
     */
    long SMALL_BLOB_MAX = FastCdc.TVIX.maxSize();

    boolean has(B3Digest digest) throws IOException;

    /** A random-access reader, or empty if the blob is absent. */
    Optional<BlobReader> open(B3Digest digest) throws IOException;

    /**
     * The digests of {@code digests} whose blobs are not stored, in their order, each once: what
     * a copy between stores must send (castore copy). In as few requests as the backend can
     * make; the default asks {@link #has} of each in turn.
     */
    default List<B3Digest> missing(List<B3Digest> digests) throws IOException {
        return missingOneByOne(digests, this::has);
    }

    /**
     * The digests of {@code digests} stored neither as chunks nor as whole blobs
     * ({@link #hasChunk}), in their order, each once: what an upload must send. In as few requests
     * as the backend can make; the default asks {@link #hasChunk} of each in turn.
     */
    default List<B3Digest> missingChunks(List<B3Digest> digests) throws IOException {
        return missingOneByOne(digests, this::hasChunk);
    }

    /** The distinct digests of {@code digests} that {@code stored} does not find, in order, asked one by one. */
    private static List<B3Digest> missingOneByOne(List<B3Digest> digests, ParallelLookups.Lookup<B3Digest, Boolean> stored)
            throws IOException {
        Set<B3Digest> seen = new HashSet<>();
        List<B3Digest> missing = new ArrayList<>();
        for (B3Digest digest : digests) {
            if (seen.add(digest) && !stored.apply(digest)) {
                missing.add(digest);
            }
        }
        return missing;
    }

    /**
     * {@link #missing} for a remote backend without a batch call: {@link #has} of up to
     * {@code inFlight} digests at once, on virtual threads, so the round trips overlap.
     */
    static List<B3Digest> missingByHas(BlobService service, List<B3Digest> digests, int inFlight) throws IOException {
        List<B3Digest> distinct = List.copyOf(new LinkedHashSet<>(digests));
        List<Boolean> stored = ParallelLookups.map(distinct, inFlight, service::has, "asking which blobs are stored");
        List<B3Digest> missing = new ArrayList<>();
        for (int i = 0; i < stored.size(); i++) {
            if (!stored.get(i)) {
                missing.add(distinct.get(i));
            }
        }
        return missing;
    }

    /**
     * {@link #open(B3Digest)} for a blob whose size the caller already has (from the file node
     * that names it): a service in front of a remote store may then fetch a small blob whole, in
     * one request, instead of asking for its chunk list first. The reader is the same either
     * way: verified, and of the blob's real size, whatever {@code size} says. The default ignores
     * the size.
     */
    default Optional<BlobReader> open(B3Digest digest, long size) throws IOException {
        return open(digest);
    }

    /** A writer for a new blob; {@link BlobWriter#finish()} stores it and returns its digest. */
    BlobWriter create() throws IOException;

    /**
     * Small whole blobs (each at most 16 MiB), read in as few requests as the backend can make,
     * each checked against its digest and size, for a caller about to read many (an export's
     * small files). Absent ones and ones that fail that check are left out, and so may be any a
     * backend cannot read in batch: the caller reads what is left out itself (and its own read
     * reports an error naming what it reads the blob for). The default reads them one by one.
     */
    default java.util.Map<B3Digest, byte[]> readBlobs(List<ChunkMeta> blobs) throws IOException {
        java.util.Map<B3Digest, byte[]> read = new java.util.HashMap<>();
        for (ChunkMeta blob : blobs) {
            readIfSound(this, blob).ifPresent(data -> read.put(blob.digest(), data));
        }
        return read;
    }

    /** {@link #readChunk}, with a blob absent or failing its check as empty (for {@link #readBlobs}). */
    static Optional<byte[]> readIfSound(BlobService service, ChunkMeta blob) throws IOException {
        try {
            return service.readChunk(blob);
        } catch (CorruptedDataException | NotFoundException e) {
            return Optional.empty();
        }
    }

    /**
     * A hint that these small whole blobs will be read next, each from its start: a cache in
     * front of a remote store fetches those it lacks now, in as few requests as it can
     * ({@link #readBlobs}), and keeps them for the reads. Absent blobs are left for the reads to
     * report. The default does nothing (a local store reads as fast when asked).
     */
    default void fetchAhead(List<ChunkMeta> blobs) throws IOException {
    }

    /**
     * A writer whose {@link BlobWriter#finish()} may return the digest before the blob is
     * stored, for a caller that writes many blobs in a row (an import): a remote service then
     * asks about and sends small blobs in batches, a few calls per batch instead of a few per
     * blob. Every blob so finished is stored, or its failure thrown, by the next
     * {@link #flushWrites()}, which the caller must call before anything refers to the blobs
     * (a root). Its {@link BlobWriter#bytesStored()} counts only what was stored before finish
     * returned; flushWrites returns the rest. The default is {@link #create()}.
     */
    default BlobWriter createDeferred() throws IOException {
        return create();
    }

    /**
     * Waits until every blob whose {@link #createDeferred() deferred} writer finished is stored,
     * and returns the bytes those stores added that their writers did not count. Throws the
     * first failure among them (the blobs are then not all stored). The default has nothing to
     * wait for.
     */
    default long flushWrites() throws IOException {
        return 0;
    }

    /**
     * A hint that {@code blob}, of {@code size} bytes (its verified node's), will likely be read
     * soon from its start: a backend that fetches from afar may start now, in the background.
     * Returns at once and never throws; the default does nothing (a local store reads as fast
     * when asked).
     */
    default void willRead(B3Digest blob, long size) {
    }

    /**
     * {@link #willRead(B3Digest, long)} for several blobs (a directory's next files, their sizes
     * their verified nodes'), which a backend that fetches from afar may fetch together, in one
     * request. The default hints them one by one.
     */
    default void willRead(List<ChunkMeta> blobs) {
        for (ChunkMeta blob : blobs) {
            willRead(blob.digest(), blob.size());
        }
    }

    /**
     * The chunks of a blob, in order; their sizes add up to the blob size. Empty if the blob is
     * absent. A blob stored as one piece has one chunk whose digest is the blob digest.
     */
    Optional<List<ChunkMeta>> chunks(B3Digest digest) throws IOException;

    /**
     * Whether a chunk (any digest {@link #chunks} lists) or a whole blob with this digest is
     * stored. Remote servers answer "which chunks do you lack" with it, so an upload sends only
     * new chunks. The default knows blobs only (right for backends that keep blobs whole).
     */
    default boolean hasChunk(B3Digest digest) throws IOException {
        return has(digest);
    }

    /**
     * A verified reader for a chunk (any digest {@link #chunks} lists) or a whole blob, by
     * digest; empty if neither is stored. tvix's BlobService.Read serves chunks this way, so a
     * remote reader fetches only the chunks it needs. The default knows blobs only.
     */
    default Optional<BlobReader> openChunk(B3Digest digest) throws IOException {
        return open(digest);
    }

    /**
     * The bytes of one chunk (or of a whole blob) with exactly this digest and size, verified
     * against the digest; empty if this service cannot serve it by chunk digest (then read it
     * as a range of its blob). A cache in front of a remote store fetches chunks with it: one
     * request, one hash, none of the blob reader's read-ahead. The default reads
     * {@link #openChunk} ({@link #readVerified}).
     */
    default Optional<byte[]> readChunk(ChunkMeta chunk) throws IOException {
        return readVerified(openChunk(chunk.digest()), chunk);
    }

    /**
     * All the bytes of {@code opened}, which must be exactly {@code chunk}: its size, and its
     * digest, hashed here. A reader of a blob checks each of its chunks, but not that the chunk
     * list it was given makes up this digest (a remote's list is not bound to it), so
     * {@link #readChunk} must not hand its bytes on unhashed. Empty if {@code opened} is.
     */
    static Optional<byte[]> readVerified(Optional<BlobReader> opened, ChunkMeta chunk) throws IOException {
        if (opened.isEmpty()) {
            return Optional.empty();
        }
        try (BlobReader reader = opened.get()) {
            if (reader.size() != chunk.size() || chunk.size() > Integer.MAX_VALUE) {
                throw new CorruptedDataException("chunk " + chunk.digest() + " has " + reader.size() + " bytes, listed as " + chunk.size());
            }
            java.nio.ByteBuffer data = java.nio.ByteBuffer.allocate((int) chunk.size());
            while (data.hasRemaining()) {
                if (reader.read(data.position(), data) < 0) {
                    throw new CorruptedDataException("chunk " + chunk.digest() + " ended early");
                }
            }
            if (!Blake3.digest(data.array()).equals(chunk.digest())) {
                throw new CorruptedDataException("chunk " + chunk.digest() + " is corrupted (its bytes do not make up its digest)");
            }
            return Optional.of(data.array());
        }
    }

    /**
     * The chunks listed by {@code chunks} (the chunk list of {@code blob}), from the first, in
     * order, through one request; each is verified before it is returned. Empty if this service
     * cannot stream a blob (then use {@link #readChunk} per chunk). tvix's BlobService.Read of a
     * blob digest sends the blob's bytes in order: a remote read of a whole blob then costs one
     * call instead of one per chunk. The default cannot.
     */
    default Optional<ChunkStream> streamChunks(B3Digest blob, List<ChunkMeta> chunks) throws IOException {
        return Optional.empty();
    }

    @Override
    default void close() throws IOException {
    }
}

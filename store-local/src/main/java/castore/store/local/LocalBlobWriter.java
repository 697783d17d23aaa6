package castore.store.local;

import castore.chunk.FastCdc;
import castore.hash.Blake3;
import castore.hash.ZeroDigests;
import castore.model.B3Digest;
import castore.service.BlobWriter;
import castore.service.ChunkMeta;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Chunks a blob as it arrives (FastCDC decides a cut once a full maximum-size window is buffered,
 * or at the end), hashes and stores each new chunk. A blob that turns out to be one chunk is
 * hashed once (its digest is the chunk's); only blobs of several chunks also feed a whole-blob
 * hasher. Chunks are written as they are cut, so memory stays at about two maximum chunks.
 */
final class LocalBlobWriter implements BlobWriter {
    private static final FastCdc CDC = FastCdc.TVIX;
    private static final int BUFFER_SIZE = 2 * CDC.maxSize();
    private static final int POOLED_BUFFERS = 32;
    /**
     * Chunking buffers are reused: allocating (and zeroing) one per blob costs more than
     * hashing a small file. At most {@link #POOLED_BUFFERS} are kept.
     */
    private static final ConcurrentLinkedQueue<byte[]> POOL = new ConcurrentLinkedQueue<>();
    private static final AtomicInteger POOL_SIZE = new AtomicInteger();

    private final LocalStore store;
    private final PackStore packs;
    private byte[] buffer;
    private int start;
    private int end;
    private long size;
    private final List<ChunkMeta> chunks = new ArrayList<>();
    private Blake3.Hasher blobHasher;
    private long stored;
    private B3Digest result;
    private boolean closed;

    LocalBlobWriter(LocalStore store, PackStore packs) {
        this.store = store;
        this.packs = packs;
        store.writerOpened();
    }

    @Override
    public void write(ByteBuffer data) throws IOException {
        checkWritable();
        while (data.hasRemaining()) {
            makeRoom();
            int n = Math.min(data.remaining(), buffer.length - end);
            data.get(buffer, end, n);
            end += n;
            size += n;
            while (end - start >= CDC.maxSize()) {
                emit(CDC.cut(buffer, start, CDC.maxSize()), false);
            }
        }
    }

    @Override
    public void write(byte[] data, int offset, int length) throws IOException {
        write(ByteBuffer.wrap(data, offset, length));
    }

    /** Ensures free space at the end of the buffer, taking one from the pool or compacting. */
    private void makeRoom() {
        if (buffer == null) {
            buffer = POOL.poll();
            if (buffer == null) {
                buffer = new byte[BUFFER_SIZE];
            } else {
                POOL_SIZE.decrementAndGet();
            }
        }
        if (end == buffer.length) {
            // Fewer than maxSize bytes are pending here, so at least maxSize become free.
            System.arraycopy(buffer, start, buffer, 0, end - start);
            end -= start;
            start = 0;
        }
    }

    /** Stores the next {@code length} pending bytes as a chunk. */
    private void emit(int length, boolean atEnd) throws IOException {
        boolean wholeBlob = chunks.isEmpty() && atEnd && length == end - start;
        if (!wholeBlob) {
            if (blobHasher == null) {
                blobHasher = Blake3.newHasher();
            }
            blobHasher.update(buffer, start, length);
        }
        // A chunk of zeros (a hole, a zeroed image) is named from memory: stored once, met often.
        B3Digest digest = ZeroDigests.digest(buffer, start, length);
        if (packs.appendIfAbsent(ObjectKind.CHUNK, digest, buffer, start, length, 0)) { // aux: the store records the CRC32C
            stored += length;
        }
        chunks.add(new ChunkMeta(digest, length));
        start += length;
    }

    @Override
    public B3Digest finish() throws IOException {
        if (result != null) {
            return result;
        }
        checkWritable();
        try {
            if (end == start && chunks.isEmpty()) {
                makeRoom();
                emit(0, true); // the empty blob: one empty chunk
            }
            while (end > start) {
                emit(CDC.cut(buffer, start, end - start), true);
            }
            if (chunks.size() == 1) {
                result = chunks.getFirst().digest();
            } else {
                result = blobHasher.digest();
                if (packs.findKnown(ObjectKind.BLOB, result) == null) {
                    byte[] list = ChunkList.of(chunks).encode();
                    packs.appendIfAbsent(ObjectKind.BLOB, result, list, 0, list.length, size);
                }
            }
            return result;
        } finally {
            release();
        }
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public long bytesStored() {
        return stored;
    }

    private void checkWritable() throws IOException {
        if (closed || result != null) {
            throw new IOException(result != null ? "blob writer already finished" : "blob writer is closed");
        }
    }

    private void release() {
        if (!closed) {
            closed = true;
            if (buffer != null && POOL_SIZE.incrementAndGet() <= POOLED_BUFFERS) {
                POOL.add(buffer);
            } else if (buffer != null) {
                POOL_SIZE.decrementAndGet();
            }
            buffer = null;
            store.writerClosed();
        }
    }

    @Override
    public void close() {
        // Without finish() no blob entry is written; chunks already stored are valid objects of
        // their own digests, unreferenced until gc removes them.
        release();
    }

    @Override
    public String toString() {
        return "LocalBlobWriter[" + size + " bytes, " + chunks.size() + " chunks" + (result == null ? "" : ", " + result) + "]";
    }
}

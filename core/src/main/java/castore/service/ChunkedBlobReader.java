package castore.service;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;

/**
 * A {@link BlobReader} over a blob's chunk list: finds the chunk of a position by binary search
 * and copies from whole chunks that the subclass supplies (fetched, cached and verified as it
 * sees fit). Reads may span chunks; they return fewer bytes than asked only at end of blob.
 */
public abstract class ChunkedBlobReader implements BlobReader {
    private final List<ChunkMeta> chunks;
    private final long[] starts;
    private final long size;
    /** The chunk the latest read used (any thread's): for callers that can use the rest of it. */
    private volatile Span lastChunk;

    /** A verified chunk of the blob: where it starts and its bytes, which nobody may modify. */
    public record Span(long start, byte[] data) {
        public long end() {
            return start + data.length;
        }

        public boolean covers(long position) {
            return position >= start && position < end();
        }
    }

    protected ChunkedBlobReader(List<ChunkMeta> chunks) {
        this.chunks = chunks;
        this.starts = new long[chunks.size()];
        long offset = 0;
        for (int i = 0; i < starts.length; i++) {
            starts[i] = offset;
            offset += chunks.get(i).size();
        }
        this.size = offset;
    }

    /** The bytes of chunk {@code index}, verified; exactly {@code chunks().get(index).size()} long. */
    protected abstract byte[] chunk(int index) throws IOException;

    @Override
    public final long size() {
        return size;
    }

    public final List<ChunkMeta> chunks() {
        return chunks;
    }

    /** Offset of chunk {@code index} in the blob. */
    protected final long start(int index) {
        return starts[index];
    }

    /** The chunk holding {@code position} (which must be in [0, size)). */
    protected final int indexOf(long position) {
        int i = Arrays.binarySearch(starts, position);
        return i >= 0 ? i : -i - 2;
    }

    /**
     * The chunk a recent read used, verified and already in memory (null before any read): a
     * filesystem can hand the part of it that was not asked for to the kernel's page cache.
     * Concurrent reads overwrite it, so check {@link Span#covers} before use.
     */
    public final Span lastChunkRead() {
        return lastChunk;
    }

    @Override
    public int read(long position, ByteBuffer dst) throws IOException {
        if (position < 0) {
            throw new IllegalArgumentException("negative position " + position);
        }
        if (position >= size) {
            return -1;
        }
        int total = 0;
        while (dst.hasRemaining() && position < size) {
            int index = indexOf(position);
            int n = copyChunk(index, (int) (position - starts[index]), dst);
            position += n;
            total += n;
        }
        return total;
    }

    /**
     * Copies bytes of chunk {@code index} from {@code within} on into {@code dst}, as many as fit;
     * returns how many. By default from {@link #chunk}; a subclass may copy from memory it reuses.
     */
    protected int copyChunk(int index, int within, ByteBuffer dst) throws IOException {
        return copyFrom(index, chunk(index), within, dst);
    }

    /** Copies from {@code data}, the whole verified chunk {@code index}, and remembers it as the last chunk read. */
    protected final int copyFrom(int index, byte[] data, int within, ByteBuffer dst) {
        Span last = lastChunk;
        if (last == null || last.data() != data) {
            lastChunk = new Span(starts[index], data);
        }
        int n = Math.min(dst.remaining(), data.length - within);
        dst.put(data, within, n);
        return n;
    }
}

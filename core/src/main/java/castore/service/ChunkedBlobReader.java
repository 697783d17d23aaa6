package castore.service;

import castore.model.B3Digest;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A {@link BlobReader} over a blob's chunk list: finds the chunk of a position by binary search
 * and copies from whole chunks that the subclass supplies (fetched, cached and verified as it
 * sees fit). Reads may span chunks; they return fewer bytes than asked only at end of blob.
 *
 * <p>A chunk that occurs more than once in the blob (a run of zeros in a disk image or a padded
 * dataset: FastCDC cuts such a run into identical chunks of the largest size) is loaded and
 * verified once, then copied from memory wherever it occurs, the last {@link #REPEATS_KEPT} such
 * chunks at a time: reading a 5 GiB file that is mostly zeros otherwise read and hashed 5 GiB from
 * the disk, or fetched 5 GiB from a remote, for 2.5 MiB of distinct content.
 */
public abstract class ChunkedBlobReader implements BlobReader {
    /** Distinct repeated chunks kept in memory per reader: at most 4 MiB at the largest chunk size. */
    static final int REPEATS_KEPT = 8;
    /**
     * The largest chunk that fits an array (and whose offsets fit an int); a larger one is read
     * by {@link #copyFromLargeChunk}.
     */
    public static final long MAX_ARRAY_CHUNK = Integer.MAX_VALUE - 8;

    private final List<ChunkMeta> chunks;
    private final long[] starts;
    private final long size;
    /** By index, whether the chunk's digest occurs elsewhere in the blob too; null if no digest repeats. */
    private final boolean[] repeated;
    /** Repeated chunks loaded so far, verified, by digest, least recently used first; guarded by itself. */
    private final Map<B3Digest, byte[]> repeats;
    private final long distinctBytes;
    /** The chunk the latest read used (any thread's): for callers that can use the rest of it. */
    private volatile Recent lastChunk;

    /**
     * The chunk a read used: its index, and its bytes if they are an array nobody writes again
     * (null: held in a buffer the subclass reuses, lent by {@link #lendHeld}).
     */
    private record Recent(int index, byte[] data) {
    }

    /** Takes the bytes of a verified chunk, lent for the duration of the call. */
    @FunctionalInterface
    public interface ChunkUser {
        /**
         * {@code data[0, length)} is the verified chunk that starts at {@code start} in the blob.
         * The array may be a buffer the reader reuses: it must not be kept or written.
         */
        void use(long start, byte[] data, int length);
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
        // Which chunks repeat, and the bytes of the distinct ones: one pass over the list.
        boolean[] repeatedAt = null;
        long distinct = size;
        if (chunks.size() > 1) {
            Map<B3Digest, Integer> first = new HashMap<>(chunks.size() * 2);
            for (int i = 0; i < chunks.size(); i++) {
                Integer earlier = first.putIfAbsent(chunks.get(i).digest(), i);
                if (earlier != null) {
                    repeatedAt = repeatedAt != null ? repeatedAt : new boolean[chunks.size()];
                    repeatedAt[earlier] = true;
                    repeatedAt[i] = true;
                    distinct -= chunks.get(i).size();
                }
            }
        }
        this.repeated = repeatedAt;
        this.distinctBytes = distinct;
        this.repeats = repeatedAt == null ? null : new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<B3Digest, byte[]> eldest) {
                return size() > REPEATS_KEPT;
            }
        };
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
     * Lends the chunk a recent read used, verified and still in memory, to {@code user} for the
     * duration of the call, if that chunk holds {@code position}; returns whether it did. A
     * filesystem hands the part of it that was not asked for to the kernel's page cache.
     * Concurrent reads change which chunk that is; a chunk whose buffer was reused since is not
     * lent.
     */
    public final boolean lendRecentChunk(long position, ChunkUser user) {
        Recent last = lastChunk;
        if (last == null || position < starts[last.index()] || position - starts[last.index()] >= chunks.get(last.index()).size()) {
            return false;
        }
        if (last.data() == null) {
            return lendHeld(last.index(), user);
        }
        user.use(starts[last.index()], last.data(), last.data().length);
        return true;
    }

    /**
     * Lends chunk {@code index}, verified, from a buffer this reader reuses, if one still holds it,
     * to {@code user} for the duration of the call, keeping the buffer from being reused meanwhile;
     * returns whether it did. For subclasses that {@linkplain #usedHeld load chunks into reused
     * buffers}; by default none is held.
     */
    protected boolean lendHeld(int index, ChunkUser user) {
        return false;
    }

    /**
     * Records that a read used chunk {@code index} from a buffer the subclass reuses (see
     * {@link #lendHeld}), making it the chunk {@link #lendRecentChunk} lends.
     */
    protected final void usedHeld(int index) {
        Recent last = lastChunk;
        if (last == null || last.index() != index || last.data() != null) {
            lastChunk = new Recent(index, null);
        }
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
            int n;
            if (chunks.get(index).size() > MAX_ARRAY_CHUNK) {
                n = copyFromLargeChunk(index, position - starts[index], dst);
            } else {
                int within = (int) (position - starts[index]);
                n = repeated != null && repeated[index] ? copyRepeated(index, within, dst) : copyChunk(index, within, dst);
            }
            if (n <= 0) {
                // A chunk of no bytes in the list (only a forged one holds it): the search lands
                // on it again and again, and the read would never end.
                throw new CorruptedDataException("chunk " + index + " (" + chunks.get(index).digest() + ") gives no bytes at offset "
                        + position + " of a blob of " + size + ": its chunk list is invalid");
            }
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

    /**
     * Copies bytes of chunk {@code index}, larger than an array can hold ({@link #MAX_ARRAY_CHUNK}),
     * from {@code within} on into {@code dst}, as many as fit; returns how many (at least one). Only
     * a subclass that can read such a chunk other than whole overrides this; by default it fails.
     */
    protected int copyFromLargeChunk(int index, long within, ByteBuffer dst) throws IOException {
        throw new IOException("chunk " + chunks.get(index).digest() + " of " + chunks.get(index).size()
                + " bytes is too large to be read whole");
    }

    /**
     * Called before bytes of chunk {@code index} are served from the copy of the same chunk
     * loaded at another place: a subclass that must see every place read in order (to check the
     * chunk list against the blob, say) does so here, and may refuse the read by throwing.
     */
    protected void servingRepeat(int index, byte[] data) throws IOException {
    }

    /** Whether chunk {@code index} occurs elsewhere in the blob and a copy of it is in memory already (nothing to fetch). */
    protected final boolean holdsRepeat(int index) {
        if (repeated == null || !repeated[index]) {
            return false;
        }
        synchronized (repeats) {
            return repeats.containsKey(chunks.get(index).digest());
        }
    }

    /** The bytes of the blob's distinct chunks: less than {@link #size} when chunks repeat. */
    protected final long distinctBytes() {
        return distinctBytes;
    }

    /** Copies from chunk {@code index}, which occurs elsewhere in the blob too: from memory once loaded. */
    private int copyRepeated(int index, int within, ByteBuffer dst) throws IOException {
        B3Digest digest = chunks.get(index).digest();
        byte[] data;
        synchronized (repeats) {
            data = repeats.get(digest);
        }
        if (data != null) {
            servingRepeat(index, data);
        } else {
            data = chunk(index);
            synchronized (repeats) {
                repeats.put(digest, data);
            }
        }
        return copyFrom(index, data, within, dst);
    }

    /**
     * Copies from {@code data}, the whole verified chunk {@code index}, and remembers it as the
     * last chunk read. A chunk whose length is not the one the list gives it proves the list
     * wrong (a digest names one content, so one length): its bytes would land at the wrong
     * places of the blob, so nothing is copied.
     */
    protected final int copyFrom(int index, byte[] data, int within, ByteBuffer dst) throws CorruptedDataException {
        long listed = chunks.get(index).size();
        if (data.length != listed) {
            throw new CorruptedDataException("chunk " + chunks.get(index).digest() + " has " + data.length
                    + " bytes, listed as " + listed + " at place " + index + " of the blob's chunk list");
        }
        Recent last = lastChunk;
        if (last == null || last.data() != data || last.index() != index) { // a repeated chunk has several places
            lastChunk = new Recent(index, data);
        }
        int n = Math.min(dst.remaining(), data.length - within);
        dst.put(data, within, n);
        return n;
    }
}

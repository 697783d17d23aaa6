package castore.service;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * The last few verified chunks a {@link ChunkedBlobReader} loaded for random reads, by index,
 * replaced in turn. Each is an array of its own that nobody writes again, so a caller may keep
 * it (unlike {@link ChunkSlots}, whose buffers are reused): it can be the chunk the reader
 * lends after a read ({@link ChunkedBlobReader#lendRecentChunk}) for as long as it likes.
 */
public final class RecentChunks {
    private record Chunk(int index, byte[] data) {
    }

    private final AtomicReferenceArray<Chunk> chunks;
    private final AtomicInteger next = new AtomicInteger();

    public RecentChunks(int count) {
        chunks = new AtomicReferenceArray<>(count);
    }

    /** Chunk {@code index} if it is one of the last loaded, else null. */
    public byte[] get(int index) {
        for (int i = 0; i < chunks.length(); i++) {
            Chunk c = chunks.get(i);
            if (c != null && c.index() == index) {
                return c.data();
            }
        }
        return null;
    }

    /** Keeps {@code data}, the verified chunk {@code index}, in place of the oldest. */
    public void add(int index, byte[] data) {
        chunks.set(Math.floorMod(next.getAndIncrement(), chunks.length()), new Chunk(index, data));
    }

    /** Drops them all. */
    public void clear() {
        for (int i = 0; i < chunks.length(); i++) {
            chunks.set(i, null);
        }
    }
}

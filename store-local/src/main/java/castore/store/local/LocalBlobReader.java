package castore.store.local;

import castore.model.B3Digest;
import castore.service.BlobReader;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * Positional reads of one blob: the chunk holding an offset is found by binary search over the
 * chunk start offsets, read and verified. The last few verified chunks are kept (lock-free) so a
 * sequential reader asking for 4 KiB at a time hashes each chunk once, and concurrent readers
 * at a few different places do not evict each other at once.
 */
final class LocalBlobReader implements BlobReader {
    private static final int CACHED_CHUNKS = 4;

    private final PackStore packs;
    private final B3Digest digest;
    private final ChunkList chunks;
    private final AtomicReferenceArray<VerifiedChunk> cache = new AtomicReferenceArray<>(CACHED_CHUNKS);
    private final AtomicInteger nextSlot = new AtomicInteger();

    private record VerifiedChunk(int index, byte[] data) {
    }

    LocalBlobReader(PackStore packs, B3Digest digest, ChunkList chunks) {
        this.packs = packs;
        this.digest = digest;
        this.chunks = chunks;
    }

    @Override
    public long size() {
        return chunks.blobSize();
    }

    @Override
    public int read(long position, ByteBuffer dst) throws IOException {
        if (position < 0) {
            throw new IllegalArgumentException("negative position " + position);
        }
        long size = chunks.blobSize();
        if (position >= size) {
            return dst.hasRemaining() ? -1 : 0;
        }
        int total = 0;
        long at = position;
        int index = chunks.chunkAt(at);
        while (dst.hasRemaining() && at < size) {
            byte[] data = chunk(index);
            int within = (int) (at - chunks.starts()[index]);
            int n = Math.min(dst.remaining(), data.length - within);
            dst.put(data, within, n);
            total += n;
            at += n;
            index++;
        }
        return total;
    }

    private byte[] chunk(int index) throws IOException {
        for (int i = 0; i < CACHED_CHUNKS; i++) {
            VerifiedChunk c = cache.get(i);
            if (c != null && c.index() == index) {
                return c.data();
            }
        }
        byte[] data = LocalBlobService.readChunk(packs, chunks.digests()[index], chunks.sizes()[index], digest);
        cache.set(Math.floorMod(nextSlot.getAndIncrement(), CACHED_CHUNKS), new VerifiedChunk(index, data));
        return data;
    }
}

package castore.store.local;

import castore.model.B3Digest;
import castore.service.ChunkedBlobReader;
import java.io.IOException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReferenceArray;

/**
 * Positional reads of one blob ({@link ChunkedBlobReader} finds the chunk of an offset by binary
 * search). Chunks are read from their packs and verified; the last few verified chunks are kept
 * (lock-free) so a sequential reader asking for 4 KiB at a time hashes each chunk once, and
 * concurrent readers at a few different places do not evict each other at once.
 */
final class LocalBlobReader extends ChunkedBlobReader {
    private static final int CACHED_CHUNKS = 4;

    private final PackStore packs;
    private final B3Digest digest;
    private final AtomicReferenceArray<VerifiedChunk> cache = new AtomicReferenceArray<>(CACHED_CHUNKS);
    private final AtomicInteger nextSlot = new AtomicInteger();

    private record VerifiedChunk(int index, byte[] data) {
    }

    LocalBlobReader(PackStore packs, B3Digest digest, ChunkList chunks) {
        super(chunks.toMetas());
        this.packs = packs;
        this.digest = digest;
    }

    @Override
    protected byte[] chunk(int index) throws IOException {
        for (int i = 0; i < CACHED_CHUNKS; i++) {
            VerifiedChunk c = cache.get(i);
            if (c != null && c.index() == index) {
                return c.data();
            }
        }
        var meta = chunks().get(index);
        byte[] data = LocalBlobService.readChunk(packs, meta.digest(), (int) meta.size(), digest);
        cache.set(Math.floorMod(nextSlot.getAndIncrement(), CACHED_CHUNKS), new VerifiedChunk(index, data));
        return data;
    }
}

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
 *
 * <p>When chunks are missed in order (a sequential reader), the next {@link #AHEAD} chunks are
 * announced to the kernel (POSIX_FADV_WILLNEED) so the disk reads them while this one is
 * verified and served: the kernel's own readahead window (128 KiB by default) is smaller than
 * one chunk, so without the hint every cold chunk waits for the disk.
 */
final class LocalBlobReader extends ChunkedBlobReader {
    private static final int CACHED_CHUNKS = 4;
    /** Chunks announced ahead of a sequential reader: about 2 MiB at the average chunk size. */
    static final int AHEAD = 8;

    private final PackStore packs;
    private final B3Digest digest;
    private final AtomicReferenceArray<VerifiedChunk> cache = new AtomicReferenceArray<>(CACHED_CHUNKS);
    private final AtomicInteger nextSlot = new AtomicInteger();
    /** Last chunk read from the packs, and the last one announced ahead (races only repeat a hint). */
    private volatile int lastMiss = -1;
    private volatile int announcedUpTo = -1;

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
        if (index == lastMiss + 1 && index + 1 < chunks().size()) {
            announceAhead(index);
        }
        lastMiss = index;
        var meta = chunks().get(index);
        byte[] data = LocalBlobService.readChunk(packs, meta.digest(), (int) meta.size(), digest);
        cache.set(Math.floorMod(nextSlot.getAndIncrement(), CACHED_CHUNKS), new VerifiedChunk(index, data));
        return data;
    }

    /** Announces chunks up to AHEAD past {@code index}, in batches of half that, never one twice. */
    private void announceAhead(int index) throws IOException {
        int from = Math.max(index + 1, announcedUpTo + 1);
        if (from > index + AHEAD / 2) {
            return; // enough is already on its way
        }
        int to = Math.min(chunks().size() - 1, index + AHEAD);
        announcedUpTo = to;
        for (int i = from; i <= to; i++) {
            Location l = packs.find(ObjectKind.CHUNK, chunks().get(i).digest());
            if (l != null) {
                l.source().willNeed(l);
            }
        }
    }
}

package castore.fs;

import static org.assertj.core.api.Assertions.assertThat;

import castore.fuse.api.KernelCache;
import castore.model.FileNode;
import castore.service.ChunkMeta;
import castore.service.ChunkedBlobReader;
import castore.hash.Blake3;
import castore.model.B3Digest;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** What the feeder offers the kernel's page cache after a random read, against a cache that may drop offers. */
class KernelCacheFeederTest {
    /** Large enough for reads in one chunk to lie further apart than OpenFile counts as one stream. */
    private static final int CHUNK = 1 << 20;
    private static final int CHUNKS = 3;

    /** A blob of three chunks held in memory. */
    private static final class Reader extends ChunkedBlobReader {
        private final byte[][] chunks;

        Reader(byte[][] chunks) {
            super(metas(chunks));
            this.chunks = chunks;
        }

        private static List<ChunkMeta> metas(byte[][] chunks) {
            var metas = new ArrayList<ChunkMeta>();
            for (byte[] c : chunks) {
                metas.add(new ChunkMeta(Blake3.digest(c), c.length));
            }
            return metas;
        }

        @Override
        protected byte[] chunk(int index) {
            return chunks[index];
        }
    }

    /** Offers taken or dropped as told, the taken ones recorded as [offset, length]. */
    private static final class Cache implements KernelCache {
        boolean drop;
        final List<long[]> taken = new ArrayList<>();

        @Override
        public boolean offer(long nodeId, long offset, byte[] data, int from, int length) {
            if (drop) {
                return false;
            }
            taken.add(new long[] {offset, length});
            return true;
        }
    }

    @Test
    void aChunkWhoseOffersWereDroppedIsOfferedAgainByTheNextReadInIt() throws IOException {
        byte[][] chunks = new byte[CHUNKS][CHUNK];
        var random = new SplittableRandom(9);
        for (byte[] c : chunks) {
            random.nextBytes(c);
        }
        var node = new FileNode(Blake3.digest(new byte[0]), (long) CHUNKS * CHUNK, false);
        var inode = new Inode(2, node, node, InodeNumbers.of(node), 1);
        var cache = new Cache();
        var feeder = new KernelCacheFeeder();
        feeder.attach(cache);
        try (var file = new OpenFile(inode, new Reader(chunks), node.size(), 0, () -> false)) {
            long at = CHUNK + 2 * 4096L; // inside chunk 1, page aligned
            cache.drop = true;
            read(file, feeder, at);
            assertThat(cache.taken).isEmpty();
            cache.drop = false;
            read(file, feeder, at + 600 * 1024);
            assertThat(cache.taken).as("the rest of chunk 1, offered again").isNotEmpty();
            long pushed = cache.taken.stream().mapToLong(o -> o[1]).sum();
            assertThat(pushed).isEqualTo(CHUNK - 4096);
            // Taken once, not offered again by another random read of the same chunk.
            cache.taken.clear();
            read(file, feeder, at + 300 * 1024);
            assertThat(cache.taken).isEmpty();
        }
    }

    /** A 4 KiB read at {@code offset} far from the file's streams, then the feeder, as the filesystem does. */
    private static void read(OpenFile file, KernelCacheFeeder feeder, long offset) throws IOException {
        ByteBuffer dst = ByteBuffer.allocate(4096);
        boolean sequential = file.read(offset, dst);
        feeder.afterRead(2, file, offset, offset + dst.position(), sequential);
        assertThat(Arrays.equals(dst.array(), new byte[4096])).isFalse();
    }
}

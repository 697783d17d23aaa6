package castore.fs;

import static org.assertj.core.api.Assertions.assertThat;

import castore.fuse.testing.MountFixture;
import castore.ingest.Importer;
import castore.model.FileNode;
import castore.model.Name;
import castore.service.ChunkMeta;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A random read of a chunked blob hands the rest of the verified chunk to the kernel's page
 * cache: later reads in that chunk are page-cache hits (no request) and return the right bytes.
 * Page-cache residency is observed with mincore (MemorySegment.isLoaded on a mapping).
 */
class KernelCacheFeedTest {
    private static final long PAGE = 4096;

    @TempDir
    Path tmp;

    @Test
    void aRandomReadPushesTheRestOfItsChunk() throws Exception {
        check(true);
    }

    @Test
    void withoutFeedingNothingMoreIsCached() throws Exception {
        check(false);
    }

    private void check(boolean feed) throws Exception {
        byte[] content = new byte[3 << 20];
        new SplittableRandom(5).nextBytes(content);
        Path file = Files.write(Files.createDirectories(tmp.resolve("src")).resolve("big.bin"), content);
        try (Store store = Stores.open(tmp.resolve("store").toString(), StoreOptions.DEFAULT)) {
            FileNode node = (FileNode) new Importer(store.blobs(), store.directories(), 2)
                    .importPath(file.toString().getBytes(StandardCharsets.UTF_8));
            store.roots().put(Name.of("big"), node);
            List<ChunkMeta> chunks = store.blobs().chunks(node.digest()).orElseThrow();
            assertThat(chunks).hasSizeGreaterThan(3);
            long chunkStart = chunks.get(0).size() + chunks.get(1).size();
            long chunkEnd = chunkStart + chunks.get(2).size();
            long readAt = (chunkStart + chunkEnd) / 2 & -PAGE;
            long after = readAt + 2 * PAGE; // past what the kernel may read around the request
            long afterEnd = chunkEnd & -PAGE;

            var counting = new CountingFileSystem(new CastoreFileSystem(store, FsOptions.defaults().withFeedKernelCache(feed)));
            try (var m = MountFixture.mount(Files.createDirectories(tmp.resolve("m")), counting.proxy);
                 FileChannel ch = FileChannel.open(m.path("big"), StandardOpenOption.READ);
                 Arena arena = Arena.ofConfined()) {
                // POSIX_FADV_RANDOM-like access: one 4 KiB pread in the middle of the third chunk.
                ByteBuffer one = ByteBuffer.allocate(4096);
                assertThat(ch.read(one, readAt)).isEqualTo(4096);
                assertThat(one.array()).isEqualTo(Arrays.copyOfRange(content, (int) readAt, (int) readAt + 4096));

                MemorySegment rest = ch.map(FileChannel.MapMode.READ_ONLY, after, afterEnd - after, arena);
                long deadline = System.nanoTime() + (feed ? 10_000_000_000L : 500_000_000L);
                while (!rest.isLoaded() && System.nanoTime() < deadline) {
                    Thread.sleep(10);
                }
                assertThat(rest.isLoaded()).as("rest of the chunk in the page cache").isEqualTo(feed);
                if (feed) {
                    long reads = counting.snapshot().getOrDefault("read", 0L);
                    assertThat(rest.toArray(ValueLayout.JAVA_BYTE))
                            .isEqualTo(Arrays.copyOfRange(content, (int) after, (int) afterEnd));
                    assertThat(counting.snapshot().getOrDefault("read", 0L)).as("reads after the push").isEqualTo(reads);
                }
            }
        }
    }
}

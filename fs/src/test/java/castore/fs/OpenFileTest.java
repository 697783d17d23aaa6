package castore.fs;

import static org.assertj.core.api.Assertions.assertThat;

import castore.fuse.api.OpenReply;
import castore.model.FileNode;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import castore.service.memory.MemoryRootService;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/** Reads through one handle with read-ahead: exact bytes whatever the access pattern. */
class OpenFileTest {
    static final int SIZE = 300_000;
    final InstrumentedBlobService blobs = new InstrumentedBlobService(new MemoryBlobService(), 7_000);
    final Trees trees = new Trees(blobs, new MemoryDirectoryService(), new MemoryRootService());
    final byte[] data = new byte[SIZE];
    final CastoreFileSystem fs;
    final long node;

    OpenFileTest() throws Exception {
        new SplittableRandom(3).nextBytes(data);
        FileNode f = trees.file(data, false);
        trees.root("f", f);
        fs = new CastoreFileSystem(blobs, trees.directories, trees.roots, FsOptions.defaults().withReadAheadBytes(16_384)
                .withZeroMessageOpens(false));
        node = fs.lookup(CastoreFileSystemTest.REQ, 1, "f".getBytes()).nodeId();
    }

    void check(long handle, int offset, int size) throws Exception {
        ByteBuffer dst = ByteBuffer.allocate(size);
        fs.read(CastoreFileSystemTest.REQ, node, handle, offset, dst);
        int expected = Math.max(0, Math.min(size, SIZE - offset));
        assertThat(dst.position()).isEqualTo(expected);
        int from = Math.min(offset, SIZE);
        assertThat(Arrays.equals(dst.array(), 0, expected, data, from, from + expected))
                .as("bytes at %d+%d", offset, size).isTrue();
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3, 4})
    void mixedSequentialAndRandomReadsReturnExactBytes(long seed) throws Exception {
        var random = new SplittableRandom(seed);
        long h = fs.open(CastoreFileSystemTest.REQ, node, 0).fileHandle();
        int position = 0;
        for (int i = 0; i < 400; i++) {
            int size = random.nextInt(1, 40_000);
            switch (random.nextInt(4)) {
                case 0 -> position = random.nextInt(SIZE + 10); // jump
                case 1 -> position = Math.max(0, position - random.nextInt(20_000)); // step back a little
                default -> { } // continue sequentially
            }
            check(h, position, size);
            position = Math.min(SIZE, position + size);
        }
        fs.release(CastoreFileSystemTest.REQ, node, h);
    }

    @Test
    void aSequentialReaderGetsTheNextWindowsFetchedAhead() throws Exception {
        long h = fs.open(CastoreFileSystemTest.REQ, node, 0).fileHandle();
        for (int offset = 0; offset < 3 * 4096; offset += 4096) {
            check(h, offset, 4096);
        }
        // The third read ended at 12288; windows of 16 KiB beyond it are being fetched.
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (blobs.furthestRead.get() < 12_288 + 16_384 && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertThat(blobs.furthestRead.get()).isGreaterThanOrEqualTo(12_288 + 16_384);
        for (int offset = 3 * 4096; offset < SIZE + 4096; offset += 4096) {
            check(h, offset, 4096);
        }
        fs.release(CastoreFileSystemTest.REQ, node, h);
    }

    @Test
    void eightThreadsReadOneHandleAndTheirOwnHandlesConcurrently() throws Exception {
        OpenReply shared = fs.open(CastoreFileSystemTest.REQ, node, 0);
        try (var pool = Executors.newFixedThreadPool(8)) {
            List<Future<Void>> results = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                long seed = t;
                results.add(pool.submit((Callable<Void>) () -> {
                    var random = new SplittableRandom(seed);
                    long own = fs.open(CastoreFileSystemTest.REQ, node, 0).fileHandle();
                    for (int i = 0; i < 200; i++) {
                        long handle = i % 2 == 0 ? shared.fileHandle() : own;
                        int offset = seed % 2 == 0 ? (i * 3000) % SIZE : random.nextInt(SIZE);
                        check(handle, offset, random.nextInt(1, 20_000));
                    }
                    fs.release(CastoreFileSystemTest.REQ, node, own);
                    return null;
                }));
            }
            for (var r : results) {
                r.get();
            }
        }
        fs.release(CastoreFileSystemTest.REQ, node, shared.fileHandle());
        assertThat(fs.openFileCount()).isZero();
    }
}

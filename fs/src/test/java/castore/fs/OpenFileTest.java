package castore.fs;

import static org.assertj.core.api.Assertions.assertThat;

import castore.model.FileNode;
import castore.service.BlobReader;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Reads through one open file with read-ahead: exact bytes whatever the access pattern. */
class OpenFileTest {
    static final int SIZE = 300_000;
    static final int WINDOW = 16_384;
    final InstrumentedBlobService blobs = new InstrumentedBlobService(new MemoryBlobService(), 7_000);
    final byte[] data = new byte[SIZE];
    final FileNode node;

    OpenFileTest() {
        new SplittableRandom(3).nextBytes(data);
        node = new Trees(blobs, new MemoryDirectoryService(), new MemoryRootService()).file(data, false);
    }

    /** An open file whose store counts as slow, so read-ahead runs. */
    OpenFile open(boolean storeIsSlow) throws Exception {
        var inode = new Inode(2, node, node, InodeNumbers.of(node), 1);
        return new OpenFile(inode, blobs.open(node.digest()).orElseThrow(), SIZE, WINDOW, () -> storeIsSlow);
    }

    void check(OpenFile file, int offset, int size) throws Exception {
        ByteBuffer dst = ByteBuffer.allocate(size);
        file.read(offset, dst);
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
        try (var file = open(true)) {
            int position = 0;
            for (int i = 0; i < 400; i++) {
                int size = random.nextInt(1, 40_000);
                switch (random.nextInt(4)) {
                    case 0 -> position = random.nextInt(SIZE + 10); // jump
                    case 1 -> position = Math.max(0, position - random.nextInt(20_000)); // step back a little
                    default -> { } // continue sequentially
                }
                check(file, position, size);
                position = Math.min(SIZE, position + size);
            }
        }
    }

    @Test
    void aSequentialReaderGetsTheNextWindowsFetchedAheadFromASlowStore() throws Exception {
        try (var file = open(true)) {
            for (int offset = 0; offset < 3 * 4096; offset += 4096) {
                check(file, offset, 4096);
            }
            // The third read ended at 12288; windows beyond it are being fetched.
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (blobs.furthestRead.get() < 12_288 + WINDOW && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertThat(blobs.furthestRead.get()).isGreaterThanOrEqualTo(12_288 + WINDOW);
            for (int offset = 3 * 4096; offset < SIZE + 4096; offset += 4096) {
                check(file, offset, 4096);
            }
        }
    }

    @Test
    void interleavedSequentialReadersOfOneHandleAreEachSequential() throws Exception {
        try (var file = open(false)) {
            // Farther apart than the sequential slack (256 KiB), so each first read starts a stream.
            int[] at = {0, 270_000};
            for (int i = 0; i < 3; i++) {
                for (int stream = 0; stream < 2; stream++) {
                    ByteBuffer dst = ByteBuffer.allocate(4096);
                    boolean sequential = file.read(at[stream], dst);
                    assertThat(sequential).as("read %d of stream %d", i, stream).isEqualTo(i > 0);
                    assertThat(Arrays.equals(dst.array(), 0, 4096, data, at[stream], at[stream] + 4096)).isTrue();
                    at[stream] += 4096;
                }
            }
        }
    }

    @Test
    void aReaderThatReadsAheadItselfGetsNoWindowsEvenFromASlowStore() throws Exception {
        var inode = new Inode(2, node, node, InodeNumbers.of(node), 1);
        BlobReader inner = blobs.open(node.digest()).orElseThrow();
        BlobReader readingAhead = new BlobReader() {
            @Override
            public long size() {
                return inner.size();
            }

            @Override
            public int read(long position, ByteBuffer dst) throws java.io.IOException {
                return inner.read(position, dst);
            }

            @Override
            public boolean readsAhead() {
                return true;
            }
        };
        try (var file = new OpenFile(inode, readingAhead, SIZE, WINDOW, () -> true)) {
            for (int offset = 0; offset < 20 * 4096; offset += 4096) {
                check(file, offset, 4096);
            }
            Thread.sleep(50); // a window, had one been started, would be reading by now
            assertThat(blobs.furthestRead.get()).isLessThan(20 * 4096);
        }
    }

    @Test
    void aFastStoreIsReadOnlyWhereAsked() throws Exception {
        try (var file = open(false)) {
            for (int offset = 0; offset < 20 * 4096; offset += 4096) {
                check(file, offset, 4096);
            }
            assertThat(blobs.furthestRead.get()).isLessThan(20 * 4096);
        }
    }

    @Test
    void eightThreadsReadOneFileConcurrently() throws Exception {
        try (var file = open(true); var pool = Executors.newFixedThreadPool(8)) {
            List<Future<Void>> results = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                long seed = t;
                results.add(pool.submit((Callable<Void>) () -> {
                    var random = new SplittableRandom(seed);
                    for (int i = 0; i < 200; i++) {
                        int offset = seed % 2 == 0 ? (i * 3000) % SIZE : random.nextInt(SIZE);
                        check(file, offset, random.nextInt(1, 20_000));
                    }
                    return null;
                }));
            }
            for (var r : results) {
                r.get();
            }
        }
    }
}

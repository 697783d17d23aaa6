package castore.service.cache;

import static org.assertj.core.api.Assertions.assertThat;

import castore.hash.Blake3;
import castore.model.B3Digest;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DiskCacheTest {
    @TempDir
    Path dir;

    static final String CHUNKS = CachingBlobService.CHUNKS;

    static byte[] bytes(int size, long seed) {
        byte[] data = new byte[size];
        new SplittableRandom(seed).nextBytes(data);
        return data;
    }

    static B3Digest key(byte[] data) {
        return Blake3.digest(data);
    }

    long bytesOnDisk() throws IOException {
        try (Stream<Path> files = Files.walk(dir)) {
            return files.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
        }
    }

    List<Path> segmentFiles() throws IOException {
        try (Stream<Path> files = Files.list(dir.resolve("segments"))) {
            return files.sorted().toList();
        }
    }

    @Test
    void entriesOfEveryKindSurviveARestartInFewFiles() throws IOException {
        List<byte[]> values = new ArrayList<>();
        try (DiskCache cache = new DiskCache(dir, 1L << 30)) {
            for (int i = 0; i < 200; i++) {
                byte[] v = bytes(100 + i, i);
                values.add(v);
                cache.write(i % 2 == 0 ? CHUNKS : CachingDirectoryService.DIRECTORIES, key(v), v);
            }
            assertThat(cache.size()).isEqualTo(bytesOnDisk());
        }
        assertThat(segmentFiles()).hasSize(2); // chunks, and everything else
        try (DiskCache cache = new DiskCache(dir, 1L << 30)) {
            for (int i = 0; i < values.size(); i++) {
                String kind = i % 2 == 0 ? CHUNKS : CachingDirectoryService.DIRECTORIES;
                String other = i % 2 == 0 ? CachingDirectoryService.DIRECTORIES : CHUNKS;
                assertThat(cache.read(kind, key(values.get(i)))).contains(values.get(i));
                assertThat(cache.contains(other, key(values.get(i)))).isFalse();
            }
            assertThat(cache.size()).isEqualTo(bytesOnDisk());
        }
    }

    /** Open descriptors of this process on the cache's segment files. */
    long openSegmentDescriptors() throws IOException {
        Path segments = dir.resolve("segments").toRealPath();
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.filter(fd -> {
                try {
                    return Files.readSymbolicLink(fd).startsWith(segments);
                } catch (IOException gone) {
                    return false;
                }
            }).count();
        }
    }

    @Test
    void appendsWrittenNativelyReadBackAndSealedSegmentsLetGoOfTheirWriteDescriptor() throws IOException {
        List<byte[]> values = new ArrayList<>();
        try (DiskCache cache = new DiskCache(dir, 1L << 20)) { // 64 KiB segments
            for (int i = 0; i < 43; i++) { // 8 records fill a segment: 5 sealed, the 6th open
                byte[] v = bytes(9000 + i, 100 + i);
                values.add(v);
                cache.write(CHUNKS, key(v), v);
            }
            int segments = segmentFiles().size();
            assertThat(segments).isGreaterThan(3);
            // A read channel per segment, and one write descriptor for the segment being appended to.
            assertThat(openSegmentDescriptors()).isEqualTo(segments + 1);
            for (byte[] v : values) {
                assertThat(cache.read(CHUNKS, key(v))).contains(v);
            }
            assertThat(cache.size()).isEqualTo(bytesOnDisk());
        }
        assertThat(openSegmentDescriptors()).isZero();
        try (DiskCache cache = new DiskCache(dir, 1L << 20)) {
            for (byte[] v : values) {
                assertThat(cache.read(CHUNKS, key(v))).contains(v);
            }
        }
    }

    @Test
    void theNativeWriterWritesWhereItIsToldAndNothingOnceClosed() throws IOException {
        Path file = Files.createFile(dir.resolve("f"));
        NativeWriter writer = NativeWriter.open(file);
        assertThat(writer).as("pwrite through FFM is available under test (native access enabled)").isNotNull();
        byte[] a = bytes(70_000, 7);
        byte[] b = bytes(100, 8);
        writer.writeFully(a, a.length, 0);
        writer.writeFully(b, 50, 10);
        writer.close();
        byte[] expected = a.clone();
        System.arraycopy(b, 0, expected, 10, 50);
        assertThat(Files.readAllBytes(file)).isEqualTo(expected);
        org.assertj.core.api.Assertions.assertThatIOException().isThrownBy(() -> writer.writeFully(b, 1, 0)).withMessageContaining("closed");
        org.assertj.core.api.Assertions.assertThatIOException().isThrownBy(() -> NativeWriter.open(dir.resolve("missing")))
                .withMessageContaining("missing");
    }

    @Test
    void aRecordTornByACrashIsIgnoredAndWritingGoesOn() throws IOException {
        byte[] a = bytes(1000, 1);
        byte[] b = bytes(1000, 2);
        try (DiskCache cache = new DiskCache(dir, 1L << 30)) {
            cache.write(CHUNKS, key(a), a);
            cache.write(CHUNKS, key(b), b);
        }
        Path segment = segmentFiles().getFirst();
        try (FileChannel channel = FileChannel.open(segment, StandardOpenOption.WRITE)) {
            channel.truncate(channel.size() - 10);
        }
        byte[] c = bytes(500, 3);
        try (DiskCache cache = new DiskCache(dir, 1L << 30)) {
            assertThat(cache.read(CHUNKS, key(a))).contains(a);
            assertThat(cache.read(CHUNKS, key(b))).isEmpty();
            cache.write(CHUNKS, key(b), b);
            cache.write(CHUNKS, key(c), c);
        }
        try (DiskCache cache = new DiskCache(dir, 1L << 30)) {
            assertThat(cache.read(CHUNKS, key(b))).contains(b);
            assertThat(cache.read(CHUNKS, key(c))).contains(c);
        }
    }

    @Test
    void aDeletedEntryWrittenAgainIsFoundInItsNewPlaceAfterARestart() throws IOException {
        byte[] good = bytes(2000, 4);
        B3Digest k = key(good);
        try (DiskCache cache = new DiskCache(dir, 1L << 30)) {
            cache.write(CHUNKS, k, bytes(2000, 5)); // say, damaged later: the caller's check fails
            cache.delete(CHUNKS, k);
            assertThat(cache.contains(CHUNKS, k)).isFalse();
            cache.write(CHUNKS, k, good);
        }
        try (DiskCache cache = new DiskCache(dir, 1L << 30)) {
            assertThat(cache.read(CHUNKS, k)).contains(good);
        }
    }

    @Test
    void evictionDropsTheOldestSegmentsButKeepsWhatIsUsed() throws IOException {
        int size = 10_000;
        long limit = 10L * size; // segments of 6,250 bytes: one record each
        List<byte[]> values = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
            values.add(bytes(size, 100 + i));
        }
        try (DiskCache cache = new DiskCache(dir, limit)) {
            for (int i = 0; i < 8; i++) {
                cache.write(CHUNKS, key(values.get(i)), values.get(i));
            }
            for (int i = 8; i < 30; i++) {
                cache.touch(CHUNKS, key(values.get(0))); // 0 stays in use
                cache.write(CHUNKS, key(values.get(i)), values.get(i));
                assertThat(cache.size()).isLessThanOrEqualTo(limit);
            }
            assertThat(bytesOnDisk()).isEqualTo(cache.size());
        }
        try (DiskCache cache = new DiskCache(dir, limit)) {
            assertThat(cache.read(CHUNKS, key(values.get(0)))).contains(values.get(0));
            assertThat(cache.read(CHUNKS, key(values.get(29)))).contains(values.get(29));
            for (int i = 1; i < 8; i++) {
                assertThat(cache.contains(CHUNKS, key(values.get(i)))).as("entry %d", i).isFalse();
            }
        }
    }

    @Test
    void nothingIsCopiedForwardWhileTheCacheIsAtMostHalfFull() throws IOException {
        byte[] v = bytes(1000, 6);
        try (DiskCache cache = new DiskCache(dir, 1L << 20)) {
            cache.write(CHUNKS, key(v), v);
            long before = cache.size();
            for (int i = 0; i < 10; i++) {
                cache.write(CHUNKS, key(bytes(100, 200 + i)), bytes(100, 200 + i));
                assertThat(cache.read(CHUNKS, key(v))).contains(v);
            }
            assertThat(cache.size()).isEqualTo(before + 10 * (100 + 41));
        }
    }

    @Test
    void concurrentWritersAllLand() throws Exception {
        List<Thread> threads = new ArrayList<>();
        try (DiskCache cache = new DiskCache(dir, 1L << 30)) {
            for (int t = 0; t < 8; t++) {
                int seed = t;
                threads.add(Thread.ofVirtual().start(() -> {
                    for (int i = 0; i < 50; i++) {
                        byte[] v = bytes(300, seed * 1000L + i);
                        try {
                            cache.write(CHUNKS, key(v), v);
                        } catch (IOException e) {
                            throw new java.io.UncheckedIOException(e);
                        }
                    }
                }));
            }
            for (Thread t : threads) {
                t.join();
            }
        }
        try (DiskCache cache = new DiskCache(dir, 1L << 30)) {
            for (int t = 0; t < 8; t++) {
                for (int i = 0; i < 50; i++) {
                    byte[] v = bytes(300, t * 1000L + i);
                    assertThat(cache.read(CHUNKS, key(v))).contains(v);
                }
            }
        }
    }

    @Test
    void theFilePerEntryLayoutOfEarlierVersionsIsRemoved() throws IOException {
        Path old = dir.resolve(CHUNKS).resolve("ab").resolve("ab12");
        Files.createDirectories(old.getParent());
        Files.write(old, new byte[] {1, 2, 3});
        try (DiskCache cache = new DiskCache(dir, 1L << 30)) {
            assertThat(cache.size()).isZero();
        }
        assertThat(dir.resolve(CHUNKS)).doesNotExist();
    }
}

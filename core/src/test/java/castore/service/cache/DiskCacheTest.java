package castore.service.cache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.assertThatIOException;

import castore.hash.Blake3;
import castore.model.B3Digest;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
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

    /**
     * The cache's size is its files' bytes plus what it holds in memory for direct appends. A
     * sealed segment's last block is written in the background, so wait for those first, or the
     * two figures are read on either side of that write.
     */
    void assertSizeIsFilesPlusMemory(DiskCache cache) throws IOException {
        cache.awaitSealed();
        assertThat(bytesOnDisk() + cache.appendsInMemory()).isEqualTo(cache.size());
    }

    /** Whether the caches under test append chunks with O_DIRECT ({@link DirectAppendsDiskCacheTest}). */
    boolean directAppends() {
        return false;
    }

    DiskCache open(long limit) throws IOException {
        return new DiskCache(dir, limit, directAppends());
    }

    List<Path> segmentFiles() throws IOException {
        try (Stream<Path> files = Files.list(dir.resolve("segments"))) {
            return files.sorted().toList();
        }
    }

    @Test
    void entriesOfEveryKindSurviveARestartInFewFiles() throws IOException {
        List<byte[]> values = new ArrayList<>();
        try (DiskCache cache = open(1L << 30)) {
            for (int i = 0; i < 200; i++) {
                byte[] v = bytes(100 + i, i);
                values.add(v);
                cache.write(i % 2 == 0 ? CHUNKS : CachingDirectoryService.DIRECTORIES, key(v), v);
            }
            assertSizeIsFilesPlusMemory(cache);
        }
        assertThat(segmentFiles()).hasSize(2); // chunks, and everything else
        try (DiskCache cache = open(1L << 30)) {
            for (int i = 0; i < values.size(); i++) {
                String kind = i % 2 == 0 ? CHUNKS : CachingDirectoryService.DIRECTORIES;
                String other = i % 2 == 0 ? CachingDirectoryService.DIRECTORIES : CHUNKS;
                assertThat(cache.read(kind, key(values.get(i)))).contains(values.get(i));
                assertThat(cache.contains(other, key(values.get(i)))).isFalse();
            }
            assertSizeIsFilesPlusMemory(cache);
        }
    }

    @Test
    void aReadOfADirectoryAsksForItsWindowOfTheSegmentAndTheNextOnceAndAChunkReadForNone() throws IOException {
        List<byte[]> directories = new ArrayList<>();
        List<byte[]> chunks = new ArrayList<>();
        try (DiskCache cache = open(1L << 30)) {
            for (int i = 0; i < 400; i++) { // 400 records of 4 KiB: windows 0 to 3 of 512 KiB
                byte[] v = bytes(4096, 1000 + i);
                directories.add(v);
                cache.write(CachingDirectoryService.DIRECTORIES, key(v), v);
                byte[] c = bytes(4096, 5000 + i);
                chunks.add(c);
                cache.write(CHUNKS, key(c), c);
            }
        }
        try (DiskCache cache = open(1L << 30)) {
            cache.hintMetadataAgainAfter(Long.MAX_VALUE); // however slow the machine: hints stand throughout
            assertThat(cache.read(CachingDirectoryService.DIRECTORIES, key(directories.get(0)))).contains(directories.get(0));
            assertThat(cache.metadataHints()).as("windows 0 and 1").isEqualTo(2);
            assertThat(cache.read(CachingDirectoryService.DIRECTORIES, key(directories.get(50)))).contains(directories.get(50));
            assertThat(cache.metadataHints()).as("both asked for already").isEqualTo(2);
            assertThat(cache.read(CachingDirectoryService.DIRECTORIES, key(directories.get(399)))).contains(directories.get(399));
            assertThat(cache.metadataHints()).as("window 3, the last").isEqualTo(3);
            for (byte[] c : chunks.subList(0, 20)) {
                assertThat(cache.read(CHUNKS, key(c))).contains(c);
            }
            assertThat(cache.metadataHints()).as("chunks have read-ahead of their own").isEqualTo(3);
            cache.hintMetadataAgainAfter(0); // every hint has stood its time: the page cache may have been dropped
            assertThat(cache.read(CachingDirectoryService.DIRECTORIES, key(directories.get(50)))).contains(directories.get(50));
            assertThat(cache.metadataHints()).as("asked for again once the hints are old: pages may have been dropped").isEqualTo(5);
        }
    }

    static void writeAll(DiskCache cache, byte[]... values) throws IOException {
        for (byte[] v : values) {
            cache.write(CHUNKS, key(v), v);
        }
    }

    /** Cuts the last {@code bytes} off a file, as a crash or another program might. */
    static void cutShort(Path file, int bytes) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
            channel.truncate(channel.size() - bytes);
        }
    }

    /** Open descriptors of this process on the cache's segment files. */
    long openSegmentDescriptors() throws IOException {
        return descriptorsOf(dir.resolve("segments"));
    }

    /** This process's descriptors open on {@code path} or on anything under it. */
    static long descriptorsOf(Path path) throws IOException {
        Path real = path.toRealPath();
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.filter(fd -> {
                try {
                    return Files.readSymbolicLink(fd).startsWith(real);
                } catch (IOException gone) {
                    return false;
                }
            }).count();
        }
    }

    @Test
    void appendsWrittenNativelyReadBackThroughOneDescriptorPerSegment() throws IOException {
        List<byte[]> values = new ArrayList<>();
        try (DiskCache cache = open(1L << 20)) { // 64 KiB segments
            for (int i = 0; i < 43; i++) { // 8 records fill a segment: 5 sealed, the 6th open
                byte[] v = bytes(9000 + i, 100 + i);
                values.add(v);
                cache.write(CHUNKS, key(v), v);
            }
            int segments = segmentFiles().size();
            assertThat(segments).isGreaterThan(3);
            // The segment being appended to is read and written through the same descriptor (with
            // direct appends, a second one writes until the segment is sealed and its last block,
            // written in the background, is in the file).
            cache.awaitSealed();
            assertThat(openSegmentDescriptors()).isEqualTo(segments + (directAppends() ? 1 : 0));
            cache.flush();
            assertThat(openSegmentDescriptors()).isEqualTo(segments);
            assertThat(cache.appendsInMemory()).isZero();
            for (byte[] v : values) {
                assertThat(cache.read(CHUNKS, key(v))).hasValueSatisfying(read -> assertThat(read).isEqualTo(v));
            }
            assertSizeIsFilesPlusMemory(cache);
        }
        assertThat(openSegmentDescriptors()).isZero();
        try (DiskCache cache = open(1L << 20)) {
            for (byte[] v : values) {
                assertThat(cache.read(CHUNKS, key(v))).hasValueSatisfying(read -> assertThat(read).isEqualTo(v));
            }
        }
    }

    @Test
    void aSegmentThatCannotBeDeletedIsStillClosedAndUncounted() throws IOException {
        byte[] first = bytes(40_000, 23);
        Path moved = dir.resolve("moved-segment");
        try (DiskCache cache = open(100_000)) { // segments of 6250 bytes: one entry each
            cache.write(CHUNKS, key(first), first);
            Path firstSegment = segmentFiles().getFirst();
            Files.move(firstSegment, moved); // still open; a non-empty directory takes its name
            Files.createDirectories(firstSegment.resolve("in-the-way"));
            IOException failed = null;
            for (int i = 0; i < 3; i++) {
                byte[] v = bytes(40_000, 24 + i);
                try {
                    cache.write(CHUNKS, key(v), v);
                } catch (IOException e) {
                    failed = e; // the eviction of the first segment could not delete it
                }
            }
            assertThat(failed).isInstanceOf(java.nio.file.DirectoryNotEmptyException.class);
            assertThat(descriptorsOf(moved)).as("the evicted segment's descriptor").isZero();
            assertThat(cache.read(CHUNKS, key(first))).isEmpty();
            byte[] last = bytes(40_000, 26);
            assertThat(cache.read(CHUNKS, key(last))).hasValueSatisfying(read -> assertThat(read).isEqualTo(last));
            byte[] next = bytes(40_000, 27);
            cache.write(CHUNKS, key(next), next); // one more eviction, of one segment: no catching up
            assertThat(cache.read(CHUNKS, key(last))).hasValueSatisfying(read -> assertThat(read).isEqualTo(last));
        }
    }

    @Test
    void readsOfAnEvictedOrClosedSegmentAreMisses() throws IOException {
        byte[] first = bytes(40_000, 13);
        DiskCache cache = open(100_000); // segments of 6250 bytes: one entry each
        cache.write(CHUNKS, key(first), first);
        Path firstSegment = segmentFiles().getFirst();
        for (int i = 0; i < 3; i++) {
            byte[] v = bytes(40_000, 14 + i);
            cache.write(CHUNKS, key(v), v);
        }
        assertThat(firstSegment).doesNotExist(); // evicted, oldest first
        assertThat(cache.read(CHUNKS, key(first))).isEmpty();
        byte[] last = bytes(40_000, 16);
        assertThat(cache.read(CHUNKS, key(last))).hasValueSatisfying(read -> assertThat(read).isEqualTo(last));
        cache.close();
        assertThat(cache.read(CHUNKS, key(last))).isEmpty();
        assertThat(openSegmentDescriptors()).isZero();
        // Nor is anything written once closed: no segment is started that nobody would close.
        List<Path> segments = segmentFiles();
        byte[] late = bytes(40_000, 17);
        assertThatThrownBy(() -> cache.write(CHUNKS, key(late), late)).isInstanceOf(IOException.class).hasMessageContaining("closed");
        assertThat(segmentFiles()).isEqualTo(segments);
        assertThat(openSegmentDescriptors()).isZero();
    }

    @Test
    void readsRacingEvictionGetTheirBytesOrAMissNeverOthers() throws Exception {
        int count = 400;
        List<byte[]> values = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            values.add(bytes(20_000, 1000 + i));
        }
        try (DiskCache cache = open(400_000)) { // ~20 entries live: evictions (and closes) all along
            java.util.concurrent.atomic.AtomicInteger written = new java.util.concurrent.atomic.AtomicInteger();
            java.util.concurrent.atomic.AtomicLong hits = new java.util.concurrent.atomic.AtomicLong();
            java.util.concurrent.atomic.AtomicReference<Throwable> failure = new java.util.concurrent.atomic.AtomicReference<>();
            List<Thread> readers = new ArrayList<>();
            for (int r = 0; r < 3; r++) {
                readers.add(Thread.ofPlatform().uncaughtExceptionHandler((t, e) -> failure.set(e)).start(() -> {
                    java.util.SplittableRandom random = new java.util.SplittableRandom();
                    byte[] reused = new byte[32_000];
                    while (written.get() < count) {
                        int upTo = written.get();
                        if (upTo == 0) {
                            continue;
                        }
                        byte[] expected = values.get(Math.max(0, upTo - 1 - random.nextInt(30)));
                        try {
                            // Into a fresh array, or into this thread's reused one (as a streaming reader's slots).
                            var read = random.nextBoolean() ? cache.read(CHUNKS, key(expected))
                                    : cache.readInto(CHUNKS, key(expected), reused, expected.length)
                                            ? java.util.Optional.of(Arrays.copyOf(reused, expected.length)) : java.util.Optional.<byte[]>empty();
                            if (read.isPresent()) {
                                assertThat(read.get()).isEqualTo(expected);
                                hits.incrementAndGet();
                            }
                        } catch (IOException e) {
                            throw new java.io.UncheckedIOException(e);
                        }
                    }
                }));
            }
            for (byte[] v : values) {
                cache.write(CHUNKS, key(v), v);
                written.incrementAndGet();
            }
            for (Thread t : readers) {
                t.join();
            }
            assertThat(failure.get()).isNull();
            assertThat(hits.get()).isPositive();
            assertThat(openSegmentDescriptors()).isLessThan(40);
        }
    }

    @Test
    void spansOfEntriesStoredTogetherReadInOneGoAndAStaleSpanReadsWhatStillLiesTogether() throws IOException {
        byte[][] v = {bytes(300_000, 31), bytes(200_000, 32), bytes(250_000, 33), bytes(400_000, 34)};
        B3Digest[] keys = Arrays.stream(v).map(DiskCacheTest::key).toArray(B3Digest[]::new);
        int[] lengths = Arrays.stream(v).mapToInt(b -> b.length).toArray();
        try (DiskCache cache = open(1L << 30); var arena = java.lang.foreign.Arena.ofConfined()) {
            writeAll(cache, v);
            long buffer = (1L << 20) + castore.io.DirectStream.ALIGN; // 1 MiB of entries, rounded out
            assertThat(cache.span(CHUNKS, keys, lengths, 4, buffer)).as("the fourth would not fit 1 MiB").isEqualTo(3);
            assertThat(cache.span(CHUNKS, keys, lengths, 4, 8L << 20)).isEqualTo(4);
            var segment = arena.allocate(buffer, castore.io.DirectStream.ALIGN);
            var payloads = new java.lang.foreign.MemorySegment[4];
            assertThat(cache.readNativeSpan(CHUNKS, keys, lengths, 3, segment, payloads)).isEqualTo(3);
            for (int k = 0; k < 3; k++) {
                assertThat(payloads[k].toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)).as("entry %d", k).isEqualTo(v[k]);
            }
            // The second entry dropped and fetched again: it now lies after the fourth.
            cache.delete(CHUNKS, keys[1]);
            cache.write(CHUNKS, keys[1], v[1]);
            assertThat(cache.span(CHUNKS, keys, lengths, 3, buffer)).isEqualTo(1);
            Arrays.fill(payloads, null);
            assertThat(cache.readNativeSpan(CHUNKS, keys, lengths, 3, segment, payloads)).as("a span planned before").isEqualTo(1);
            assertThat(payloads[0].toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)).isEqualTo(v[0]);
            assertThat(payloads[1]).isNull();
            // Lengths that do not match are no span at all.
            assertThat(cache.span(CHUNKS, keys, new int[] {1, 2, 3, 4}, 3, buffer)).isZero();
            assertThat(cache.readNativeSpan(CHUNKS, new B3Digest[] {key(bytes(10, 35))}, new int[] {10}, 1, segment, payloads)).isZero();
        }
    }

    @Test
    void entriesStoredTogetherInAnotherOrderAreASpanButNotAcrossAnotherEntry() throws IOException {
        byte[][] v = {bytes(200_000, 41), bytes(150_000, 42), bytes(180_000, 43), bytes(170_000, 44)};
        byte[] other = bytes(100_000, 45);
        B3Digest[] keys = Arrays.stream(v).map(DiskCacheTest::key).toArray(B3Digest[]::new);
        int[] lengths = Arrays.stream(v).mapToInt(b -> b.length).toArray();
        long buffer = castore.io.DirectStream.SPAN_BUFFER;
        try (DiskCache cache = open(1L << 30); var arena = java.lang.foreign.Arena.ofConfined()) {
            // Fetches of one stream end out of order: 1, 0, 3, 2, then another stream's entry, then more.
            writeAll(cache, v[1], v[0], v[3], v[2], other);
            assertThat(cache.span(CHUNKS, keys, lengths, 1, buffer)).isEqualTo(1);
            assertThat(cache.span(CHUNKS, keys, lengths, 4, buffer)).as("0..3 fill their range").isEqualTo(4);
            assertThat(cache.span(CHUNKS, keys, lengths, 3, buffer)).as("0..2 leave 3 inside their range").isEqualTo(2);
            var segment = arena.allocate(buffer, castore.io.DirectStream.ALIGN);
            var payloads = new java.lang.foreign.MemorySegment[4];
            assertThat(cache.readNativeSpan(CHUNKS, keys, lengths, 4, segment, payloads)).isEqualTo(4);
            for (int k = 0; k < 4; k++) {
                assertThat(payloads[k].toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)).as("entry %d", k).isEqualTo(v[k]);
            }
            // An entry of another stream between two of this one's ends the span before it.
            byte[] later = bytes(120_000, 46);
            cache.write(CHUNKS, key(later), later);
            B3Digest[] across = {keys[2], key(later)};
            int[] acrossLengths = {v[2].length, later.length};
            assertThat(cache.span(CHUNKS, across, acrossLengths, 2, buffer)).isEqualTo(1);
            Arrays.fill(payloads, null);
            assertThat(cache.readNativeSpan(CHUNKS, across, acrossLengths, 2, segment, payloads)).isEqualTo(1);
            assertThat(payloads[0].toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)).isEqualTo(v[2]);
            assertThat(payloads[1]).isNull();
        }
    }

    @Test
    void chunksOfTwoLanesWrittenInTurnLieTogetherPerLane() throws IOException {
        byte[][] a = {bytes(200_000, 51), bytes(210_000, 52), bytes(190_000, 53), bytes(220_000, 54)};
        byte[][] b = {bytes(205_000, 55), bytes(195_000, 56), bytes(215_000, 57), bytes(185_000, 58)};
        long buffer = castore.io.DirectStream.SPAN_BUFFER;
        try (DiskCache cache = open(1L << 30)) {
            for (int k = 0; k < a.length; k++) { // two parallel streams' fetches, in turn
                cache.write(CHUNKS, key(a[k]), a[k], 0);
                cache.write(CHUNKS, key(b[k]), b[k], 1);
            }
            for (byte[][] lane : List.of(a, b)) {
                B3Digest[] keys = Arrays.stream(lane).map(DiskCacheTest::key).toArray(B3Digest[]::new);
                int[] lengths = Arrays.stream(lane).mapToInt(x -> x.length).toArray();
                assertThat(cache.span(CHUNKS, keys, lengths, 4, buffer)).isEqualTo(4);
                assertThat(cache.read(CHUNKS, keys[3])).hasValueSatisfying(x -> assertThat(x).isEqualTo(lane[3]));
            }
            assertThat(cache.span(CHUNKS, new B3Digest[] {key(a[0]), key(b[0])}, new int[] {a[0].length, b[0].length}, 2, buffer))
                    .as("different lanes, different segments").isEqualTo(1);
        }
        try (DiskCache reopened = open(1L << 30)) {
            for (byte[] x : a) {
                assertThat(reopened.read(CHUNKS, key(x))).as("after a restart").hasValueSatisfying(y -> assertThat(y).isEqualTo(x));
            }
        }
    }

    @Test
    void readIntoFillsACallersBufferOnlyWithAnEntryOfExactlyThatLength() throws IOException {
        byte[] v = bytes(3000, 18);
        try (DiskCache cache = open(1L << 30)) {
            cache.write(CHUNKS, key(v), v);
            byte[] dst = new byte[5000];
            Arrays.fill(dst, (byte) 0x55);
            assertThat(cache.readInto(CHUNKS, key(v), dst, v.length)).isTrue();
            assertThat(Arrays.copyOf(dst, v.length)).isEqualTo(v);
            assertThat(Arrays.copyOfRange(dst, v.length, dst.length)).containsOnly((byte) 0x55);
            assertThat(cache.readInto(CHUNKS, key(v), new byte[5000], v.length - 1)).isFalse();
            assertThat(cache.readInto(CHUNKS, key(v), new byte[5000], v.length + 1)).isFalse();
            assertThat(cache.readInto(CHUNKS, key(v), new byte[v.length - 1], v.length)).isFalse();
            assertThat(cache.readInto(CHUNKS, key(bytes(3000, 19)), dst, v.length)).isFalse();
            assertThat(cache.readInto(CachingDirectoryService.DIRECTORIES, key(v), dst, v.length)).isFalse();
            // At an offset (a reply buffer's slice): only dst[from, from + length) is written, and it must fit.
            byte[] around = new byte[v.length + 20];
            Arrays.fill(around, (byte) 0x55);
            assertThat(cache.readInto(CHUNKS, key(v), around, 13, v.length)).isTrue();
            assertThat(Arrays.copyOfRange(around, 13, 13 + v.length)).isEqualTo(v);
            assertThat(Arrays.copyOf(around, 13)).containsOnly((byte) 0x55);
            assertThat(Arrays.copyOfRange(around, 13 + v.length, around.length)).containsOnly((byte) 0x55);
            assertThat(cache.readInto(CHUNKS, key(v), new byte[v.length + 20], 21, v.length)).isFalse();
            assertThat(cache.readInto(CHUNKS, key(v), new byte[v.length + 20], -1, v.length)).isFalse();
            cache.willNeed(CHUNKS, key(v)); // a hint: nothing to see but that it does not fail
            cache.willNeed(CHUNKS, key(bytes(3000, 19)));
        }
    }

    @Test
    void aCopyThatFailedVerificationIsDroppedOnlyIfNoGoodOneReplacedItMeanwhile() throws IOException {
        byte[] v = bytes(5000, 61);
        try (DiskCache cache = open(1L << 30)) {
            cache.write(CHUNKS, key(v), bytes(5000, 62)); // damaged: other bytes under v's key
            DiskCache.Location seen = cache.place(CHUNKS, key(v)); // where one reader read it
            // Another reader found it bad first, dropped it and stored the bytes fetched again.
            cache.delete(CHUNKS, key(v));
            cache.write(CHUNKS, key(v), v);
            cache.deleteIfStill(CHUNKS, key(v), seen); // the first reader's verification fails now
            assertThat(cache.read(CHUNKS, key(v))).as("the good copy stays").hasValueSatisfying(read -> assertThat(read).isEqualTo(v));
            cache.deleteIfStill(CHUNKS, key(v), cache.place(CHUNKS, key(v)));
            assertThat(cache.contains(CHUNKS, key(v))).as("the copy that was read is dropped").isFalse();
        }
    }

    @Test
    void readIntoOfAnEvictedSegmentIsAMissAndLeavesTheBufferAlone() throws IOException {
        byte[] first = bytes(40_000, 13);
        try (DiskCache cache = open(100_000)) { // segments of 6250 bytes: one entry each
            cache.write(CHUNKS, key(first), first);
            for (int i = 0; i < 3; i++) {
                byte[] v = bytes(40_000, 14 + i);
                cache.write(CHUNKS, key(v), v);
            }
            byte[] dst = new byte[40_000];
            assertThat(cache.readInto(CHUNKS, key(first), dst, first.length)).isFalse();
            assertThat(dst).containsOnly((byte) 0);
        }
    }

    static long crc(byte[] data) {
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(data);
        return castore.hash.RecordedCrc.PRESENT | crc.getValue();
    }

    @Test
    void aChunkRecordCarriesTheCrc32cOfItsBytesAcrossARestartAndOtherKindsNone() throws IOException {
        String directories = CachingDirectoryService.DIRECTORIES;
        byte[] chunk = bytes(70_000, 61);
        byte[] directory = bytes(300, 62);
        try (DiskCache cache = open(1L << 30)) {
            cache.write(CHUNKS, key(chunk), chunk);
            cache.write(directories, key(directory), directory);
            assertThat(cache.place(CHUNKS, key(chunk)).crc()).isEqualTo(crc(chunk));
            assertThat(cache.place(directories, key(directory)).crc()).isZero();
        }
        try (DiskCache cache = open(1L << 30)) {
            assertThat(cache.place(CHUNKS, key(chunk)).crc()).as("read back from the record header").isEqualTo(crc(chunk));
            assertThat(cache.place(directories, key(directory)).crc()).isZero();
            assertThat(cache.read(CHUNKS, key(chunk))).hasValueSatisfying(read -> assertThat(read).isEqualTo(chunk));
            assertThat(cache.read(directories, key(directory))).hasValueSatisfying(read -> assertThat(read).isEqualTo(directory));
        }
    }

    /** A segment as caches before CRCs wrote it ("cas1" records) is still read, its chunks without a CRC. */
    @Test
    void recordsWrittenBeforeCrcsAreReadAndCarryNone() throws IOException {
        byte[] old = bytes(5000, 63);
        byte[] oldToo = bytes(3, 65); // shorter than the CRC field a newer header has
        writeSegmentBeforeCrcs(old, oldToo);
        byte[] fresh = bytes(6000, 64);
        try (DiskCache cache = open(1L << 30)) {
            for (byte[] v : List.of(old, oldToo)) {
                assertThat(cache.place(CHUNKS, key(v)).crc()).isZero();
                assertThat(cache.read(CHUNKS, key(v))).hasValueSatisfying(read -> assertThat(read).isEqualTo(v));
            }
            cache.write(CHUNKS, key(fresh), fresh);
        }
        try (DiskCache cache = open(1L << 30)) {
            assertThat(cache.place(CHUNKS, key(old)).crc()).isZero();
            assertThat(cache.place(CHUNKS, key(fresh)).crc()).isEqualTo(crc(fresh));
            for (byte[] v : List.of(old, oldToo, fresh)) {
                assertThat(cache.read(CHUNKS, key(v))).hasValueSatisfying(read -> assertThat(read).isEqualTo(v));
            }
        }
    }

    /**
     * {@code --cache DIR} may name a directory that is not a cache (a typo, a home directory with
     * a {@code segments} folder of its own): files there whose names the cache never makes are
     * not its segments. It counted every {@code *.seg} as one, deleted one that did not start
     * with a record as broken, and evicted the others as its oldest.
     */
    @Test
    void filesInSegmentsWhoseNamesTheCacheNeverMakesAreLeftAlone() throws IOException {
        Path segments = Files.createDirectories(dir.resolve("segments"));
        byte[] notes = bytes(100_000, 77);
        Files.write(segments.resolve("notes.seg"), notes);
        Files.write(segments.resolve("2024-holiday.seg"), notes);
        byte[] value = bytes(10_000, 78);
        try (DiskCache cache = open(50_000)) { // the files would be over the limit: evicted, if counted
            assertThat(cache.size()).isZero();
            cache.write(CHUNKS, key(value), value);
            assertThat(cache.read(CHUNKS, key(value))).hasValueSatisfying(read -> assertThat(read).isEqualTo(value));
        }
        try (DiskCache cache = open(50_000)) {
            assertThat(cache.read(CHUNKS, key(value))).hasValueSatisfying(read -> assertThat(read).isEqualTo(value));
        }
        assertThat(Files.readAllBytes(segments.resolve("notes.seg"))).isEqualTo(notes);
        assertThat(Files.readAllBytes(segments.resolve("2024-holiday.seg"))).isEqualTo(notes);
    }

    /** A segment as caches before CRCs wrote it: "cas1" chunk records, no CRC. */
    private void writeSegmentBeforeCrcs(byte[]... values) throws IOException {
        ByteBuffer segment = ByteBuffer.allocate(Arrays.stream(values).mapToInt(v -> DiskCache.HEADER + v.length).sum());
        for (byte[] v : values) {
            segment.putInt(0x63617331).put((byte) 0).put(key(v).toByteArray()).putInt(v.length).put(v);
        }
        Files.createDirectories(dir.resolve("segments"));
        Files.write(dir.resolve("segments").resolve("000000000001-00000001.seg"), segment.array());
    }

    /**
     * A copy made forward of bytes not verified yet keeps its original's CRC, never one of what
     * it read: a chunk with a CRC keeps it, one from before CRCs gets none (a CRC taken from the
     * bytes read would vouch for whatever they are).
     */
    @Test
    void anEntryCopiedForwardKeepsTheCrcOfItsOriginal() throws IOException {
        int size = 10_000;
        long limit = 10L * size; // segments of 6,250 bytes: one record each
        byte[] old = bytes(size, 309);
        writeSegmentBeforeCrcs(old);
        byte[] kept = bytes(size, 310);
        try (DiskCache cache = open(limit)) {
            cache.write(CHUNKS, key(kept), kept);
            DiskCache.Location oldFirst = cache.place(CHUNKS, key(old));
            DiskCache.Location keptFirst = cache.place(CHUNKS, key(kept));
            for (int i = 1; i < 30; i++) {
                assertThat(cache.read(CHUNKS, key(old))).isPresent(); // in use: copied forward
                assertThat(cache.read(CHUNKS, key(kept))).isPresent();
                cache.write(CHUNKS, key(bytes(size, 310 + i)), bytes(size, 310 + i));
            }
            DiskCache.Location oldNow = cache.place(CHUNKS, key(old));
            DiskCache.Location keptNow = cache.place(CHUNKS, key(kept));
            assertThat(oldNow).as("copied forward").isNotEqualTo(oldFirst);
            assertThat(keptNow).as("copied forward").isNotEqualTo(keptFirst);
            assertThat(oldNow.crc()).isZero();
            assertThat(keptNow.crc()).isEqualTo(crc(kept));
        }
    }

    @Test
    void anOldEntryReadIntoALargerBufferIsCopiedForwardWithItsOwnBytesOnly() throws IOException {
        int size = 10_000;
        long limit = 10L * size; // segments of 6,250 bytes: one record each
        byte[] kept = bytes(size, 300);
        byte[] dst = new byte[3 * size];
        try (DiskCache cache = open(limit)) {
            cache.write(CHUNKS, key(kept), kept);
            for (int i = 1; i < 30; i++) {
                Arrays.fill(dst, (byte) 0x77);
                assertThat(cache.readInto(CHUNKS, key(kept), dst, size)).isTrue(); // in use: survives eviction
                cache.write(CHUNKS, key(bytes(size, 300 + i)), bytes(size, 300 + i));
            }
            assertSizeIsFilesPlusMemory(cache);
        }
        try (DiskCache cache = open(limit)) {
            assertThat(cache.read(CHUNKS, key(kept))).hasValueSatisfying(read -> assertThat(read).isEqualTo(kept));
        }
    }

    @Test
    void aSegmentDeletedByAnotherProcessStaysReadableWhileOpen() throws IOException {
        byte[] v = bytes(3000, 17);
        try (DiskCache cache = open(1L << 30)) {
            cache.write(CHUNKS, key(v), v);
        }
        try (DiskCache cache = open(1L << 30)) {
            Files.delete(segmentFiles().getFirst());
            assertThat(cache.read(CHUNKS, key(v))).hasValueSatisfying(read -> assertThat(read).isEqualTo(v));
        }
    }

    @Test
    void aNativeFileReadsAndWritesWhereItIsToldAndNothingOnceClosed() throws IOException {
        Path file = dir.resolve("f");
        NativeFile nativeFile = NativeFile.create(file);
        assertThat(nativeFile).as("pread/pwrite through FFM are available under test (native access enabled)").isNotNull();
        byte[] a = bytes(70_000, 7);
        byte[] b = bytes(100, 8);
        nativeFile.writeFully(a, 0, a.length, 0);
        nativeFile.writeFully(b, 20, 50, 10);
        byte[] expected = a.clone();
        System.arraycopy(b, 20, expected, 10, 50);
        assertThat(Files.readAllBytes(file)).isEqualTo(expected);

        byte[] read = new byte[1000];
        assertThat(nativeFile.readFully(read, 100, 800, 5)).isTrue();
        assertThat(Arrays.copyOfRange(read, 100, 900)).isEqualTo(Arrays.copyOfRange(expected, 5, 805));
        assertThat(read[99]).isZero();
        assertThat(read[900]).isZero();
        assertThat(nativeFile.readFully(new byte[100], 0, 100, a.length - 50)).as("the file ends first").isFalse();
        nativeFile.close();
        nativeFile.close();
        assertThatIOException().isThrownBy(() -> nativeFile.writeFully(b, 0, 1, 0)).withMessageContaining("closed");
        assertThatIOException().isThrownBy(() -> nativeFile.readFully(read, 0, 1, 0)).withMessageContaining("closed");

        try (NativeFile reader = NativeFile.openForReading(file)) {
            byte[] all = new byte[expected.length];
            assertThat(reader.readFully(all, 0, all.length, 0)).isTrue();
            assertThat(all).isEqualTo(expected);
            assertThatIOException().isThrownBy(() -> reader.writeFully(b, 0, 1, 0))
                    .withMessageContaining(file.toString()).withMessageContaining("Bad file descriptor");
        }
        assertThatIOException().isThrownBy(() -> NativeFile.openForReading(dir.resolve("missing")))
                .isInstanceOf(NoSuchFileException.class).withMessageContaining("missing");
        assertThatIOException().isThrownBy(() -> NativeFile.create(file))
                .withMessageContaining(file.toString()).withMessageContaining("File exists");
    }

    @Test
    void aRecordCutShortIsAMissUnderAnOpenCacheAndIgnoredAfterARestart() throws IOException {
        byte[] a = bytes(1000, 1);
        byte[] b = bytes(1000, 2);
        try (DiskCache cache = open(1L << 30)) {
            writeAll(cache, a, b);
            cache.flush(); // into the file (with direct appends they may still be in memory)
            cutShort(segmentFiles().getFirst(), 10); // b loses its last 10 bytes, as in a crash or by another program
            assertThat(cache.read(CHUNKS, key(b))).isEmpty();
            assertThat(cache.contains(CHUNKS, key(b))).as("a short read forgets the entry").isFalse();
            assertThat(cache.read(CHUNKS, key(a))).hasValueSatisfying(read -> assertThat(read).isEqualTo(a));
        }
        byte[] c = bytes(500, 3);
        try (DiskCache cache = open(1L << 30)) {
            assertThat(cache.read(CHUNKS, key(a))).contains(a);
            assertThat(cache.contains(CHUNKS, key(b))).as("the walk at start stops at the torn record").isFalse();
            writeAll(cache, b, c);
        }
        try (DiskCache cache = open(1L << 30)) {
            assertThat(cache.read(CHUNKS, key(b))).contains(b);
            assertThat(cache.read(CHUNKS, key(c))).contains(c);
        }
    }

    @Test
    void aDeletedEntryWrittenAgainIsFoundInItsNewPlaceAfterARestart() throws IOException {
        byte[] good = bytes(2000, 4);
        B3Digest k = key(good);
        try (DiskCache cache = open(1L << 30)) {
            cache.write(CHUNKS, k, bytes(2000, 5)); // say, damaged later: the caller's check fails
            cache.delete(CHUNKS, k);
            assertThat(cache.contains(CHUNKS, k)).isFalse();
            cache.write(CHUNKS, k, good);
        }
        try (DiskCache cache = open(1L << 30)) {
            assertThat(cache.read(CHUNKS, k)).contains(good);
        }
    }

    /**
     * Segment names sort in the order the segments were started, also many within one
     * millisecond: a restart loads them in name order, oldest first. With the time and a random
     * number alone, a restart took a new segment for an old one and about 3% of runs of
     * {@link #evictionDropsTheOldestSegmentsButKeepsWhatIsUsed} lost the newest entry.
     */
    @Test
    void segmentNamesSortInTheOrderTheSegmentsWereStarted() throws IOException {
        List<Path> started = new ArrayList<>();
        try (DiskCache cache = open(1L << 20)) { // segments of 65,536 bytes: one 70,000-byte entry each
            for (int i = 0; i < 40; i++) {
                byte[] v = bytes(70_000, 300 + i);
                cache.write(CHUNKS, key(v), v);
                started.add(cache.locate(CHUNKS, key(v)).orElseThrow().getKey());
            }
        }
        assertThat(started).doesNotHaveDuplicates().isSorted();
    }

    @Test
    void evictionDropsTheOldestSegmentsButKeepsWhatIsUsed() throws IOException {
        int size = 10_000;
        long limit = 10L * size; // segments of 6,250 bytes: one record each
        List<byte[]> values = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
            values.add(bytes(size, 100 + i));
        }
        try (DiskCache cache = open(limit)) {
            for (int i = 0; i < 8; i++) {
                cache.write(CHUNKS, key(values.get(i)), values.get(i));
            }
            for (int i = 8; i < 30; i++) {
                cache.touch(CHUNKS, key(values.get(0))); // 0 stays in use
                cache.write(CHUNKS, key(values.get(i)), values.get(i));
                assertThat(cache.size()).isLessThanOrEqualTo(limit);
            }
            assertSizeIsFilesPlusMemory(cache);
        }
        try (DiskCache cache = open(limit)) {
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
        try (DiskCache cache = open(1L << 20)) {
            cache.write(CHUNKS, key(v), v);
            long before = cache.size();
            for (int i = 0; i < 10; i++) {
                cache.write(CHUNKS, key(bytes(100, 200 + i)), bytes(100, 200 + i));
                assertThat(cache.read(CHUNKS, key(v))).contains(v);
            }
            assertThat(cache.size()).isEqualTo(before + 10 * (100 + DiskCache.CRC_HEADER)); // chunk records carry a CRC
        }
    }

    @Test
    void concurrentWritersAllLand() throws Exception {
        List<Thread> threads = new ArrayList<>();
        try (DiskCache cache = open(1L << 30)) {
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
        try (DiskCache cache = open(1L << 30)) {
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
        String hex = key(bytes(10, 41)).toHex();
        Path old = dir.resolve(CHUNKS).resolve(hex.substring(0, 2)).resolve(hex);
        Files.createDirectories(old.getParent());
        Files.write(old, new byte[] {1, 2, 3});
        Files.write(old.resolveSibling(hex.substring(0, 8) + "123456789.tmp"), new byte[] {4}); // a write cut short
        try (DiskCache cache = open(1L << 30)) {
            assertThat(cache.size()).isZero();
        }
        assertThat(dir.resolve(CHUNKS)).doesNotExist();
    }

    /**
     * {@code --cache DIR} may name a directory that is not a cache (a typo, a home directory, a
     * dataset's folder): the clean-up of the old layout deleted every {@code DIR/chunks},
     * {@code DIR/blobs}, {@code DIR/directories} and {@code DIR/bound} tree whole, whatever was
     * in it. Only files named as that layout named them go.
     */
    @Test
    void filesUnderTheOldLayoutsNamesThatItDidNotWriteAreLeftAlone() throws IOException {
        Path precious = dir.resolve(CHUNKS).resolve("part1").resolve("data.txt");
        Path notes = dir.resolve(CachingDirectoryService.DIRECTORIES).resolve("list.txt");
        String hex = key(bytes(10, 42)).toHex();
        Path nextToAnOldEntry = dir.resolve(CachingBlobService.CHUNK_LISTS).resolve(hex.substring(0, 2)).resolve("readme");
        Path oldEntry = nextToAnOldEntry.resolveSibling(hex);
        for (Path p : List.of(precious, notes, nextToAnOldEntry, oldEntry)) {
            Files.createDirectories(p.getParent());
            Files.write(p, new byte[] {7});
        }
        try (DiskCache cache = open(1L << 30)) {
            assertThat(cache.size()).isZero();
        }
        assertThat(precious).exists();
        assertThat(notes).exists();
        assertThat(nextToAnOldEntry).exists();
        assertThat(oldEntry).doesNotExist();
    }

    /**
     * A full disk fails every append: each failure sealed its segment and the next write started
     * a new file, which failed too, so every chunk fetched while the disk was full left an empty
     * segment file behind (one per chunk, or per MiB with direct appends), never evicted (it
     * counts no bytes) and opened by every later start.
     */
    @Test
    void writesThatFailOnAFullDiskLeaveNoEmptySegmentsBehind() throws Exception {
        Path small = Files.createDirectories(dir.resolve("small"));
        run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small.toString());
        try {
            Path cacheDir = small.resolve("cache");
            byte[] kept = bytes(100_000, 31);
            List<byte[]> later = new ArrayList<>();
            try (DiskCache cache = new DiskCache(cacheDir, 64L << 20, directAppends())) {
                cache.write(CHUNKS, key(kept), kept);
                cache.flush();
                Path filler = small.resolve("filler");
                try (FileChannel out = FileChannel.open(filler, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                    ByteBuffer block = ByteBuffer.allocate(4096);
                    while (true) {
                        block.clear();
                        out.write(block);
                    }
                } catch (IOException full) {
                    // the disk is full
                }
                int failures = 0;
                List<byte[]> whileFull = new ArrayList<>();
                for (int i = 0; i < 200; i++) {
                    byte[] v = bytes(40_000, 100 + i);
                    whileFull.add(v);
                    try {
                        cache.write(CHUNKS, key(v), v);
                    } catch (IOException e) {
                        failures++;
                    }
                }
                cache.flush();
                if (!directAppends()) {
                    assertThat(failures).as("writes that failed").isPositive();
                }
                // Direct appends fail in the background, often after the append returned: what
                // shows the disk was full is what could not be kept.
                long lost = 0;
                for (byte[] v : whileFull) {
                    if (cache.read(CHUNKS, key(v)).isEmpty()) {
                        lost++;
                    }
                }
                assertThat(lost).as("entries lost to the full disk").isPositive();
                try (Stream<Path> files = Files.list(cacheDir.resolve("segments"))) {
                    assertThat(files.toList()).as("segment files after the disk filled up").hasSizeLessThanOrEqualTo(2);
                }
                assertThat(cache.read(CHUNKS, key(kept))).hasValueSatisfying(read -> assertThat(read).isEqualTo(kept));
                Files.delete(filler);
                for (int i = 0; i < 3; i++) {
                    byte[] v = bytes(40_000, 1000 + i);
                    later.add(v);
                    cache.write(CHUNKS, key(v), v);
                }
                for (byte[] v : later) {
                    assertThat(cache.read(CHUNKS, key(v))).hasValueSatisfying(read -> assertThat(read).isEqualTo(v));
                }
            }
            try (DiskCache cache = new DiskCache(cacheDir, 64L << 20, directAppends())) {
                assertThat(cache.read(CHUNKS, key(kept))).hasValueSatisfying(read -> assertThat(read).isEqualTo(kept));
                for (byte[] v : later) {
                    assertThat(cache.read(CHUNKS, key(v))).hasValueSatisfying(read -> assertThat(read).isEqualTo(v));
                }
            }
        } finally {
            run("umount", "-l", small.toString());
        }
    }

    static void run(String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor()).as("%s: %s", String.join(" ", command), output).isZero();
    }
}

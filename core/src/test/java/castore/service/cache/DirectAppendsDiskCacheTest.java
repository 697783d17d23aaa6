package castore.service.cache;

import static org.assertj.core.api.Assertions.assertThat;

import castore.io.DirectStream;
import castore.model.B3Digest;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Every {@link DiskCacheTest} again, with chunks appended through {@link DirectAppender}; then
 * what only direct appends do: bytes read from memory until the writer has them in the file,
 * reads across that boundary, and no page-cache copy of what was written.
 */
class DirectAppendsDiskCacheTest extends DiskCacheTest {
    @Override
    boolean directAppends() {
        return true;
    }

    /** Entries of 1-300 KiB, about {@code total} bytes in all. */
    static List<byte[]> entries(long total, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        List<byte[]> values = new ArrayList<>();
        for (long sum = 0; sum < total; ) {
            byte[] v = bytes(1 + random.nextInt(300_000), random.nextLong());
            values.add(v);
            sum += v.length;
        }
        return values;
    }

    /** Reads {@code v} back every way the cache offers and checks each copy. */
    static void readBackEveryWay(DiskCache cache, byte[] v, MemorySegment aligned) throws IOException {
        B3Digest key = key(v);
        assertThat(cache.read(CHUNKS, key)).hasValueSatisfying(read -> assertThat(read).isEqualTo(v));
        byte[] into = new byte[v.length];
        assertThat(cache.readInto(CHUNKS, key, into, v.length)).isTrue();
        assertThat(into).isEqualTo(v);
        MemorySegment payload = cache.readNative(CHUNKS, key, v.length, aligned);
        assertThat(payload).isNotNull();
        assertThat(payload.toArray(ValueLayout.JAVA_BYTE)).isEqualTo(v);
    }

    @Test
    void entriesReadBackExactlyWhileInMemoryAcrossTheFileBoundaryAndAfterARestart() throws IOException {
        List<byte[]> values = entries(6L << 20, 71); // blocks written while later ones fill
        try (DiskCache cache = open(1L << 30); Arena arena = Arena.ofConfined()) {
            MemorySegment aligned = arena.allocate(512 << 10, DirectStream.ALIGN);
            boolean sawMemory = false;
            for (byte[] v : values) {
                cache.write(CHUNKS, key(v), v);
                sawMemory |= cache.appendsInMemory() > 0;
                readBackEveryWay(cache, v, aligned); // at once: from the block being filled, mostly
            }
            assertThat(sawMemory).isTrue();
            for (byte[] v : values) {
                readBackEveryWay(cache, v, aligned); // now from the file, from blocks queued, or across
            }
            // Spans of entries that lie together, wherever their bytes are now.
            MemorySegment spanBuffer = arena.allocate(DirectStream.SPAN_BUFFER, DirectStream.ALIGN);
            for (int first = 0; first + 3 <= values.size(); first += 3) {
                B3Digest[] keys = new B3Digest[3];
                int[] lengths = new int[3];
                for (int k = 0; k < 3; k++) {
                    keys[k] = key(values.get(first + k));
                    lengths[k] = values.get(first + k).length;
                }
                int n = cache.span(CHUNKS, keys, lengths, 3, DirectStream.SPAN_BUFFER);
                MemorySegment[] payloads = new MemorySegment[3];
                assertThat(cache.readNativeSpan(CHUNKS, keys, lengths, n, spanBuffer, payloads)).isEqualTo(n);
                for (int k = 0; k < n; k++) {
                    assertThat(payloads[k].toArray(ValueLayout.JAVA_BYTE)).isEqualTo(values.get(first + k));
                }
            }
        }
        try (DiskCache cache = open(1L << 30)) {
            for (byte[] v : values) {
                assertThat(cache.read(CHUNKS, key(v))).as("written out at close").contains(v);
            }
        }
    }

    @Test
    void aSegmentThatEndsOnABlockBoundaryClosesItsWritingDescriptorWhenSealed() throws Exception {
        byte[] v = bytes(DirectAppender.BLOCK - DiskCache.CRC_HEADER, 91); // header (a chunk's, with its CRC) and bytes fill one block exactly
        try (DiskCache cache = open(32L << 20)) { // 2 MiB segments: sealed by flush, not by its size
            cache.write(CHUNKS, key(v), v);
            cache.flush(); // the full block went to the writer when it filled: nothing partial is left
            assertThat(openSegmentDescriptors()).as("one per segment, the writing one closed").isEqualTo(segmentFiles().size());
            assertThat(cache.read(CHUNKS, key(v))).hasValueSatisfying(read -> assertThat(read).isEqualTo(v));
        }
        try (DiskCache cache = open(32L << 20)) {
            assertThat(cache.read(CHUNKS, key(v))).hasValueSatisfying(read -> assertThat(read).isEqualTo(v));
        }
    }

    @Test
    void readersOnOtherThreadsSeeExactBytesWhileTheWriterCatchesUp() throws Exception {
        List<byte[]> values = entries(8L << 20, 72);
        try (DiskCache cache = open(1L << 30)) {
            writeWhileReading(cache, values, (v, aligned) -> readBackEveryWay(cache, v, aligned));
        }
    }

    @Test
    void sealedSegmentsStillReadWithODirectToTheirLastByte() throws IOException {
        List<byte[]> values = entries(3L << 20, 74);
        try (DiskCache cache = open(1L << 30); Arena arena = Arena.ofConfined()) {
            for (byte[] v : values) {
                cache.write(CHUNKS, key(v), v);
            }
            cache.flush(); // sealed: the last, partial block went through the page cache
            MemorySegment aligned = arena.allocate(512 << 10, DirectStream.ALIGN);
            byte[] last = values.getLast();
            assertThat(cache.readNative(CHUNKS, key(last), last.length, aligned).toArray(ValueLayout.JAVA_BYTE)).isEqualTo(last);
            long before = cache.directReads();
            assertThat(before).as("the tail, read past the file's end, still with O_DIRECT").isEqualTo(1);
            for (byte[] v : values) {
                assertThat(cache.readNative(CHUNKS, key(v), v.length, aligned).toArray(ValueLayout.JAVA_BYTE)).isEqualTo(v);
            }
            assertThat(cache.directReads()).as("every entry after it too").isEqualTo(before + values.size());
        }
    }

    @Test
    void blocksComeTwoToAHugePageAndNoMoreThanTheCap() throws Exception {
        var writer = java.util.concurrent.Executors.newSingleThreadExecutor();
        try (var blocks = new DirectAppender.Blocks(3, writer)) {
            MemorySegment first = blocks.take();
            MemorySegment second = blocks.take();
            assertThat(first.byteSize()).isEqualTo(DirectAppender.BLOCK);
            assertThat(first.address() % castore.io.Libc.HUGE_PAGE).as("a whole block in one huge page").isZero();
            assertThat(second.address()).as("the other half of the page").isEqualTo(first.address() + DirectAppender.BLOCK);
            MemorySegment third = blocks.take(); // the odd one: ordinary memory, still aligned for O_DIRECT
            assertThat(third.address() % castore.io.DirectStream.ALIGN).isZero();
            second.fill((byte) 1);
            third.fill((byte) 2);
            blocks.give(second);
            assertThat(blocks.take()).as("a block given back is taken again").isEqualTo(second);
        }
    }

    @Test
    void aRecordCutShortWhileWaitingForABlockBreaksOnlyItsSegmentFromThereOn() throws Exception {
        var writer = java.util.concurrent.Executors.newSingleThreadExecutor();
        var gate = new java.util.concurrent.CountDownLatch(1);
        writer.execute(() -> {
            try {
                gate.await(); // every block write queues behind this
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        byte[] before = bytes(100_000, 81);
        byte[] cut = bytes(1_500_000, 82); // fills the only block, then waits for another
        byte[] after = bytes(50_000, 83);
        try (DiskCache cache = new DiskCache(dir, 1L << 30, new DirectAppender.Blocks(1, writer))) {
            cache.write(CHUNKS, key(before), before);
            AtomicReference<Throwable> thrown = new AtomicReference<>();
            Thread appender = Thread.ofPlatform().start(() -> {
                try {
                    cache.write(CHUNKS, key(cut), cut);
                } catch (Throwable t) {
                    thrown.set(t);
                }
            });
            while (appender.getState() != Thread.State.WAITING) {
                Thread.sleep(5);
            }
            appender.interrupt();
            appender.join();
            assertThat(thrown.get()).isInstanceOf(java.io.InterruptedIOException.class);
            assertThat(cache.contains(CHUNKS, key(cut))).isFalse();
            assertThat(cache.read(CHUNKS, key(before))).as("from memory, before the break").contains(before);
            gate.countDown();
            cache.write(CHUNKS, key(after), after); // a new segment
            cache.flush();
            assertThat(cache.read(CHUNKS, key(before))).as("written out: it lies before the break").contains(before);
            assertThat(cache.read(CHUNKS, key(after))).contains(after);
        }
        writer.shutdown();
        try (DiskCache cache = open(1L << 30)) {
            assertThat(cache.read(CHUNKS, key(before))).contains(before);
            assertThat(cache.read(CHUNKS, key(after))).contains(after);
            assertThat(cache.contains(CHUNKS, key(cut))).as("the walk stops at the torn record").isFalse();
        }
    }

    @Test
    void readsRacingEvictionOfSegmentsStillBeingWrittenGetTheirBytesOrAMiss() throws Exception {
        List<byte[]> values = entries(12L << 20, 75);
        java.util.concurrent.atomic.AtomicInteger hits = new java.util.concurrent.atomic.AtomicInteger();
        try (DiskCache cache = open(8L << 20)) { // 512 KiB segments: each sealed and evicted while its blocks are written
            writeWhileReading(cache, values, (v, aligned) -> {
                var read = cache.read(CHUNKS, key(v));
                if (read.isPresent()) {
                    assertThat(read.get()).isEqualTo(v);
                    hits.incrementAndGet();
                }
                MemorySegment payload = cache.readNative(CHUNKS, key(v), v.length, aligned);
                if (payload != null) {
                    assertThat(payload.toArray(ValueLayout.JAVA_BYTE)).isEqualTo(v);
                }
            });
        }
        assertThat(hits.get()).isPositive();
    }

    /** What a reader thread does with an entry already written, given an aligned buffer of its own. */
    interface EntryCheck {
        void check(byte[] value, MemorySegment aligned) throws Exception;
    }

    /**
     * Writes {@code values} in order while three threads check entries already written, picked at
     * random, until the last is written; fails with the first thing a reader threw.
     */
    static void writeWhileReading(DiskCache cache, List<byte[]> values, EntryCheck check) throws Exception {
        AtomicReference<Throwable> failure = new AtomicReference<>();
        java.util.concurrent.atomic.AtomicInteger written = new java.util.concurrent.atomic.AtomicInteger();
        List<Thread> readers = new ArrayList<>();
        for (int r = 0; r < 3; r++) {
            SplittableRandom random = new SplittableRandom(r);
            readers.add(Thread.ofPlatform().start(() -> {
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment aligned = arena.allocate(512 << 10, DirectStream.ALIGN);
                    int done;
                    do {
                        done = written.get();
                        if (done > 0) {
                            check.check(values.get(random.nextInt(done)), aligned);
                        }
                    } while (done < values.size());
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
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
    }

    /** The bytes of disk a file takes (its blocks, `stat %b` times `%B`). */
    static long allocatedBytes(Path file) throws Exception {
        Process stat = new ProcessBuilder("stat", "--format", "%b %B", file.toString()).redirectErrorStream(true).start();
        String[] out = new String(stat.getInputStream().readAllBytes()).trim().split(" ");
        assertThat(stat.waitFor()).as("stat: %s", String.join(" ", out)).isZero();
        return Long.parseLong(out[0]) * Long.parseLong(out[1]);
    }

    @Test
    void aChunkSegmentIsReservedWholeWhileAppendedAndGivesBackWhatItDidNotUse() throws Exception {
        byte[] v = bytes(300_000, 92);
        try (DiskCache cache = open(64L << 20)) { // 4 MiB segments
            cache.write(CHUNKS, key(v), v);
            Path segment = segmentFiles().getLast();
            // One piece however other lanes' appends interleave with it (ext4 and tmpfs reserve).
            assertThat(allocatedBytes(segment)).as("reserved").isGreaterThanOrEqualTo(4L << 20);
            assertThat(java.nio.file.Files.size(segment)).as("the size is what was written").isLessThan(1L << 20);
            cache.flush(); // sealed early: the rest of the reservation is given back
            assertThat(allocatedBytes(segment)).as("what was written, rounded to pages").isBetween(300_000L, 320L << 10);
            assertThat(cache.read(CHUNKS, key(v))).hasValueSatisfying(read -> assertThat(read).isEqualTo(v));
        }
        try (DiskCache cache = open(64L << 20)) {
            assertThat(cache.read(CHUNKS, key(v))).hasValueSatisfying(read -> assertThat(read).isEqualTo(v));
        }
    }

    /**
     * Another process sharing the directory may evict the segment this one is appending to (it
     * saw it at its start). The reservation past the file's end was given back with a truncate to
     * the size found by path, which was gone: the blocks stayed reserved, uncounted by any cache,
     * until this process closed the segment (at its own eviction, or exit).
     */
    @Test
    void aSegmentAnotherProcessEvictedWhileItWasAppendedStillGivesBackItsReservation() throws Exception {
        Path small = java.nio.file.Files.createDirectories(dir.resolve("small"));
        run("mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", small.toString());
        try {
            Path shared = small.resolve("cache");
            java.nio.file.FileStore disk = java.nio.file.Files.getFileStore(small);
            long usedBefore = disk.getTotalSpace() - disk.getUsableSpace();
            try (DiskCache appending = new DiskCache(shared, 1L << 30, true)) { // 64 MiB segments, reserved whole
                for (byte[] v : entries(1_500_000, 93)) {
                    appending.write(CHUNKS, key(v), v);
                }
                Path segment = java.nio.file.Files.list(shared.resolve("segments")).toList().getFirst();
                long deadline = System.nanoTime() + 10_000_000_000L;
                while (java.nio.file.Files.size(segment) < DirectAppender.BLOCK && System.nanoTime() < deadline) {
                    Thread.sleep(10); // the first block reaches the file
                }
                assertThat(disk.getTotalSpace() - disk.getUsableSpace() - usedBefore).as("reserved").isGreaterThanOrEqualTo(64L << 20);
                try (DiskCache other = new DiskCache(shared, 256 << 10, false)) { // over its limit at start: evicts
                    assertThat(segment).doesNotExist();
                }
                appending.flush(); // sealed: the reservation goes back
                assertThat(disk.getTotalSpace() - disk.getUsableSpace() - usedBefore).as("held after the seal")
                        .isLessThan(8L << 20);
            }
        } finally {
            run("umount", "-l", small.toString());
        }
    }

    @Test
    void whatIsWrittenDirectlyLeavesNoCopyInThePageCache() throws Exception {
        assertThat(residentBytesAfterWriting(true)).as("direct: at most the last, partial block").isLessThanOrEqualTo(DirectAppender.BLOCK);
        assertThat(residentBytesAfterWriting(false)).as("through the page cache").isGreaterThan(4L << 20);
    }

    /** Writes ~6 MiB of chunks to a fresh cache, closes it, and counts the segment files' bytes in the page cache. */
    long residentBytesAfterWriting(boolean direct) throws Exception {
        Path root = dir.resolve(direct ? "direct" : "buffered");
        try (DiskCache cache = new DiskCache(root, 1L << 30, direct)) {
            for (byte[] v : entries(6L << 20, 73)) {
                cache.write(CHUNKS, key(v), v);
            }
        }
        long resident = 0;
        for (Path segment : java.nio.file.Files.list(root.resolve("segments")).toList()) {
            Process fincore = new ProcessBuilder("fincore", "--bytes", "--noheadings", "--raw", "--output", "RES", segment.toString())
                    .redirectErrorStream(true).start();
            String out = new String(fincore.getInputStream().readAllBytes()).trim();
            assertThat(fincore.waitFor()).as("fincore (util-linux-extra): %s", out).isZero();
            resident += Long.parseLong(out);
        }
        return resident;
    }
}

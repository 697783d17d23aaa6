package castore.service.cache;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;

import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.FileNode;
import castore.model.InvalidDataException;
import castore.service.BlobReader;
import castore.service.ChunkedBlobReader;
import castore.service.Store;
import castore.service.memory.MemoryRootService;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CachingServicesTest {
    @TempDir
    Path dir;

    final FakeRemote remote = new FakeRemote();

    static byte[] random(int size, long seed) {
        byte[] data = new byte[size];
        new SplittableRandom(seed).nextBytes(data);
        return data;
    }

    static CacheConfig config(Path dir, long diskLimit, long readAhead) {
        return new CacheConfig(Optional.ofNullable(dir), diskLimit, 64L << 20, 4, readAhead);
    }

    Store cached(CacheConfig config) throws IOException {
        return StoreCache.wrap(new Store(remote.blobs, remote.directories, new MemoryRootService()), config);
    }

    static byte[] readAll(Store store, B3Digest digest) throws IOException {
        try (BlobReader r = store.blobs().open(digest).orElseThrow()) {
            return readAll(r);
        }
    }

    static byte[] readAll(BlobReader r) throws IOException {
        ByteBuffer all = ByteBuffer.allocate((int) r.size());
        while (all.hasRemaining()) {
            assertThat(r.read(all.position(), all)).isPositive();
        }
        return all.array();
    }

    /** Waits for background work to reach a state; the assertion is on the state, not the time. */
    static void eventually(BooleanSupplier condition) throws InterruptedException {
        Instant deadline = Instant.now().plus(Duration.ofSeconds(20));
        while (!condition.getAsBoolean() && Instant.now().isBefore(deadline)) {
            Thread.sleep(10);
        }
        assertThat(condition.getAsBoolean()).isTrue();
    }

    @Test
    void secondReadIsLocalEvenAfterRestartAndWithTheRemoteGone() throws IOException {
        byte[] data = random(10 * FakeRemote.CHUNK + 123, 1);
        B3Digest digest = remote.add(data);
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            assertThat(readAll(store, digest)).isEqualTo(data);
            assertThat(remote.chunkReads).hasValue(11);
            assertThat(readAll(store, digest)).isEqualTo(data);
            assertThat(remote.chunkReads).hasValue(11);
        }
        remote.offline = true;
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            assertThat(readAll(store, digest)).isEqualTo(data);
            assertThat(store.blobs().has(digest)).isTrue();
        }
        assertThat(remote.chunkReads).hasValue(11);
    }

    @Test
    void aOneChunkBlobIsServedFromItsChunkAloneAfterARestart() throws IOException {
        byte[] data = random(1000, 14);
        B3Digest digest = remote.add(data);
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            assertThat(readAll(store, digest)).isEqualTo(data);
        }
        try (DiskCache disk = new DiskCache(dir, 1L << 30)) {
            assertThat(disk.contains(CachingBlobService.CHUNKS, digest)).isTrue();
            assertThat(disk.contains(CachingBlobService.CHUNK_LISTS, digest)).isFalse();
        }
        remote.offline = true;
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            assertThat(store.blobs().has(digest)).isTrue();
            assertThat(store.blobs().chunks(digest)).contains(List.of(new castore.service.ChunkMeta(digest, data.length)));
            assertThat(readAll(store, digest)).isEqualTo(data);
        }
        assertThat(remote.chunkReads).hasValue(1);
    }

    /**
     * fetchAhead (an export's small files) fetches those not cached through the store's
     * readBlobs (one request for all of them over a daemon) and keeps them, so opening each with
     * its size then asks nothing; cached, absent and big ones are not asked for.
     */
    @Test
    void smallBlobsFetchedAheadAreReadWithoutAnotherRequest() throws IOException {
        List<byte[]> small = new java.util.ArrayList<>();
        List<castore.service.ChunkMeta> asked = new java.util.ArrayList<>();
        for (int i = 0; i < 5; i++) {
            byte[] data = random(1000 + i, 30 + i);
            small.add(data);
            asked.add(new castore.service.ChunkMeta(remote.add(data), data.length));
        }
        byte[] big = random((int) CachingBlobService.WHOLE_FETCH_MAX + 1, 40);
        asked.add(new castore.service.ChunkMeta(remote.add(big), big.length));
        asked.add(new castore.service.ChunkMeta(castore.hash.Blake3.digest(new byte[] {9}), 1)); // absent
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            assertThat(readAll(store, asked.getFirst().digest())).isEqualTo(small.getFirst()); // cached already
            int before = remote.chunkReads.get();
            store.blobs().fetchAhead(asked);
            assertThat(remote.chunkReads.get() - before).isEqualTo(4); // the other small ones; not the big or cached one
            for (int i = 0; i < small.size(); i++) {
                try (BlobReader r = store.blobs().open(asked.get(i).digest(), small.get(i).length).orElseThrow()) {
                    assertThat(readAll(r)).isEqualTo(small.get(i));
                }
            }
            assertThat(remote.chunkReads.get() - before).isEqualTo(4);
        }
    }

    @Test
    void smallFilesHintedTogetherComeInOneBatchThatTheirReadsWaitFor() throws Exception {
        List<byte[]> small = new java.util.ArrayList<>();
        List<castore.service.ChunkMeta> hinted = new java.util.ArrayList<>();
        for (int i = 0; i < 6; i++) {
            byte[] data = random(2000 + i, 60 + i);
            small.add(data);
            hinted.add(new castore.service.ChunkMeta(remote.add(data), data.length));
        }
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            var gate = new java.util.concurrent.CountDownLatch(1);
            remote.gate = gate;
            store.blobs().willRead(hinted);
            eventually(() -> remote.atGate.get() > 0);
            // The batch is at the remote: a read of one of its blobs waits for it.
            var read = readLater(store, hinted.get(3));
            Thread.sleep(50);
            assertThat(read).isNotDone();
            remote.gate = null;
            gate.countDown();
            assertThat(read.get(30, java.util.concurrent.TimeUnit.SECONDS)).isEqualTo(small.get(3));
            for (int i = 0; i < small.size(); i++) {
                try (BlobReader r = store.blobs().open(hinted.get(i).digest(), small.get(i).length).orElseThrow()) {
                    assertThat(readAll(r)).isEqualTo(small.get(i));
                }
            }
            assertThat(remote.readBlobsCalls).as("one batch").hasValue(1);
            assertThat(remote.chunkReads).as("each blob once, by the batch").hasValue(6);
        } finally {
            remote.gate = null;
        }
    }

    @Test
    void aHintedBlobIsClaimedAtOnceSoThatAReadBeforeTheBatchStartsWaitsForIt() throws Exception {
        // Four hinted blobs held at the remote take every background slot (the test config has
        // 4), so the batch hinted next waits for one; a read of its blob meanwhile must not fetch it too.
        var hold = new java.util.concurrent.CountDownLatch(1);
        List<castore.service.ChunkMeta> held = new java.util.ArrayList<>();
        for (int i = 0; i < 4; i++) {
            byte[] data = random(500 + i, 70 + i);
            B3Digest digest = remote.add(data);
            remote.holds.put(digest, hold);
            held.add(new castore.service.ChunkMeta(digest, data.length));
        }
        byte[] wanted = random(3000, 80);
        var batch = List.of(new castore.service.ChunkMeta(remote.add(wanted), wanted.length),
                new castore.service.ChunkMeta(remote.add(random(3001, 81)), 3001));
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            held.forEach(b -> store.blobs().willRead(b.digest(), b.size()));
            eventually(() -> remote.atHold.get() == 4);
            store.blobs().willRead(batch);
            var read = readLater(store, batch.getFirst());
            Thread.sleep(100);
            assertThat(read).as("waits for the batch, which waits for a slot").isNotDone();
            hold.countDown();
            assertThat(read.get(30, java.util.concurrent.TimeUnit.SECONDS)).isEqualTo(wanted);
            // The read ends with the batch's first blob; its second may still be on its way.
            eventually(() -> remote.chunkReads.get() >= 6);
            assertThat(remote.readBlobsCalls).hasValue(1);
            assertThat(remote.chunkReads).as("the four, then the batch's two, each once").hasValue(6);
        } finally {
            hold.countDown();
            remote.holds.clear();
        }
    }

    /** Opens and reads {@code blob} whole on another thread. */
    static java.util.concurrent.CompletableFuture<byte[]> readLater(Store store, castore.service.ChunkMeta blob) {
        return java.util.concurrent.CompletableFuture.supplyAsync(() -> {
            try (BlobReader r = store.blobs().open(blob.digest(), blob.size()).orElseThrow()) {
                return readAll(r);
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
    }

    @Test
    void aSmallBlobOpenedWithItsSizeIsFetchedWholeWithOneRequestAndKept() throws IOException {
        byte[] data = random(1000, 21);
        B3Digest digest = remote.add(data);
        try (Store store = cached(config(dir, 1L << 30, 0));
             BlobReader r = store.blobs().open(digest, data.length).orElseThrow()) {
            assertThat(r.size()).isEqualTo(data.length);
            assertThat(readAll(r)).isEqualTo(data);
        }
        assertThat(remote.listGets).hasValue(0);
        assertThat(remote.chunkReads).hasValue(1);
        remote.offline = true;
        try (Store store = cached(config(dir, 1L << 30, 0));
             BlobReader r = store.blobs().open(digest, data.length).orElseThrow()) {
            assertThat(readAll(r)).isEqualTo(data);
        }
        assertThat(remote.chunkReads).hasValue(1);
    }

    @Test
    void aWarmOneChunkBlobOpenedWithItsSizeIsNotReadToBeOpenedAndADamagedCopyIsFetchedAgain() throws IOException {
        byte[] data = random(5000, 42);
        B3Digest digest = remote.add(data);
        try (Store store = cached(config(dir, 1L << 30, 0));
             BlobReader r = store.blobs().open(digest, data.length).orElseThrow()) {
            assertThat(readAll(r)).isEqualTo(data);
        }
        remote.offline = true;
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            CachingBlobService blobs = (CachingBlobService) store.blobs();
            try (BlobReader r = blobs.open(digest, data.length).orElseThrow()) {
                assertThat(blobs.inMemory(digest)).as("opening read nothing into the memory tier").isFalse();
                assertThat(readAll(r)).isEqualTo(data);
            }
            assertThat(blobs.wholeReads()).isEqualTo(1);
            assertThat(blobs.inMemory(digest)).isFalse();
            // A size other than the copy's takes the usual way, which reads the chunk and gives its real size.
            try (BlobReader r = blobs.open(digest, data.length + 1).orElseThrow()) {
                assertThat(r.size()).isEqualTo(data.length);
            }
        }
        damage(CachingBlobService.CHUNKS, digest, bytes -> bytes[0] ^= 1);
        remote.offline = false;
        int before = remote.chunkReads.get();
        try (Store store = cached(config(dir, 1L << 30, 0));
             BlobReader r = store.blobs().open(digest, data.length).orElseThrow()) {
            assertThat(readAll(r)).isEqualTo(data);
        }
        assertThat(remote.chunkReads.get() - before).as("the damaged copy, fetched again").isEqualTo(1);
    }

    @Test
    void concurrentOpensOfOneSmallBlobFetchItOnce() throws Exception {
        byte[] data = random(5000, 22);
        B3Digest digest = remote.add(data);
        remote.gate = new CountDownLatch(1);
        try (Store store = cached(config(dir, 1L << 30, 0));
             var pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<byte[]>> reads = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                reads.add(pool.submit(() -> {
                    try (BlobReader r = store.blobs().open(digest, data.length).orElseThrow()) {
                        return readAll(r);
                    }
                }));
            }
            eventually(() -> remote.atGate.get() > 0); // one fetch is held; the others start meanwhile
            Thread.sleep(200);
            assertThat(remote.atGate).as("the other opens wait for that fetch, not at the remote").hasValue(1);
            remote.gate.countDown();
            for (Future<byte[]> read : reads) {
                assertThat(read.get()).isEqualTo(data);
            }
        }
        assertThat(remote.chunkReads).hasValue(1);
        assertThat(remote.listGets).hasValue(0);
    }

    @Test
    void aSmallBlobTheRemoteCannotServeWholeOrAWrongSizeTakeTheUsualWay() throws IOException {
        // Two chunks: the remote has no chunk under the blob digest.
        byte[] twoChunks = random(FakeRemote.CHUNK + 300, 23);
        B3Digest split = remote.add(twoChunks);
        byte[] small = random(700, 24);
        B3Digest one = remote.add(small);
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            try (BlobReader r = store.blobs().open(split, twoChunks.length).orElseThrow()) {
                assertThat(readAll(r)).isEqualTo(twoChunks);
            }
            assertThat(remote.listGets).as("the usual way: the chunk list").hasValue(1);
            // A size that is not the blob's: the request fails its size check, the usual way
            // gives the real size and bytes (the mount refuses the mismatch itself), and the
            // cache keeps nothing wrong.
            try (BlobReader r = store.blobs().open(one, small.length + 1).orElseThrow()) {
                assertThat(r.size()).isEqualTo(small.length);
                assertThat(readAll(r)).isEqualTo(small);
            }
            assertThat(remote.listGets).hasValue(2);
            try (BlobReader r = store.blobs().open(one, small.length).orElseThrow()) {
                assertThat(readAll(r)).isEqualTo(small);
            }
            assertThat(store.blobs().open(Blake3.digest(new byte[] {1}), 1)).isEmpty();
        }
    }

    @Test
    void concurrentMissesFetchAChunkOnce() throws Exception {
        byte[] data = random(3 * FakeRemote.CHUNK, 2);
        B3Digest digest = remote.add(data);
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            store.blobs().chunks(digest); // the chunk list is fetched before the gate closes
            CountDownLatch gate = new CountDownLatch(1);
            remote.gate = gate;
            List<Thread> readers = new ArrayList<>();
            List<byte[]> results = java.util.Collections.synchronizedList(new ArrayList<>());
            for (int i = 0; i < 8; i++) {
                readers.add(Thread.ofVirtual().start(() -> {
                    try (BlobReader r = store.blobs().open(digest).orElseThrow()) {
                        ByteBuffer b = ByteBuffer.allocate(1000);
                        r.read(FakeRemote.CHUNK + 5, b);
                        results.add(b.array());
                    } catch (IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                }));
            }
            CachingBlobService blobs = (CachingBlobService) store.blobs();
            // Let all eight arrive: one loads (held at the gate), the others wait for it.
            Thread.sleep(200);
            gate.countDown();
            for (Thread t : readers) {
                t.join();
            }
            assertThat(results).hasSize(8).allSatisfy(b -> assertThat(b).isEqualTo(Arrays.copyOfRange(data, FakeRemote.CHUNK + 5, FakeRemote.CHUNK + 1005)));
            assertThat(remote.chunkReads).hasValue(1);
            assertThat(blobs.fetches()).isEqualTo(1);
        }
    }

    @Test
    void corruptedCacheEntryIsDroppedAndRefetchedNeverReturned() throws IOException {
        byte[] data = random(2 * FakeRemote.CHUNK, 3);
        B3Digest digest = remote.add(data);
        B3Digest first = remote.lists.get(digest).getFirst().digest();
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            readAll(store, digest);
        }
        damage(CachingBlobService.CHUNKS, first, bytes -> bytes[100] ^= 1);
        int before = remote.chunkReads.get();
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            assertThat(readAll(store, digest)).isEqualTo(data);
        }
        assertThat(remote.chunkReads.get() - before).isEqualTo(1);
        remote.offline = true; // the refetched copy is the one found from now on
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            assertThat(readAll(store, digest)).isEqualTo(data);
        }
    }

    /** Changes the bytes of a cache entry in place, in its segment file. */
    void damage(String kind, B3Digest key, java.util.function.Consumer<byte[]> change) throws IOException {
        try (DiskCache disk = new DiskCache(dir, 1L << 30)) {
            var at = disk.locate(kind, key).orElseThrow();
            byte[] bytes = disk.read(kind, key).orElseThrow();
            change.accept(bytes);
            try (var channel = java.nio.channels.FileChannel.open(at.getKey(), java.nio.file.StandardOpenOption.WRITE)) {
                channel.write(ByteBuffer.wrap(bytes), at.getValue());
            }
        }
    }

    @Test
    void diskStaysWithinItsLimitEvictingLeastRecentlyUsed() throws IOException {
        List<B3Digest> blobs = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            blobs.add(remote.add(random(FakeRemote.CHUNK, 100 + i)));
        }
        long limit = 5L * FakeRemote.CHUNK + 4096; // room for five chunks (and their small chunk lists)
        try (Store store = cached(config(dir, limit, 0))) {
            for (int i = 0; i < 4; i++) {
                readAll(store, blobs.get(i));
            }
            readAll(store, blobs.get(0)); // 0 is now the most recently used of 0..3
            for (int i = 4; i < 10; i++) {
                readAll(store, blobs.get(i));
            }
        }
        long onDisk;
        try (var files = Files.walk(dir)) {
            onDisk = files.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
        }
        assertThat(onDisk).isLessThanOrEqualTo(limit);
        // Reopen (memory tier empty) with the remote gone: the newest survive, the oldest do not.
        remote.offline = true;
        try (Store store = cached(config(dir, limit, 0))) {
            assertThat(readAll(store, blobs.get(9))).hasSize(FakeRemote.CHUNK);
            assertThatThrownBy(() -> readAll(store, blobs.get(1))).isInstanceOf(IOException.class);
        }
    }

    @Test
    void directoriesAreCachedAndVerified() throws IOException {
        Directory leaf = Directory.builder().add("f", new FileNode(remote.add(new byte[] {1}), 1, false)).build();
        Directory root = Directory.builder().add("sub", leaf.toNode()).build();
        remote.directoryStore.put(leaf);
        remote.directoryStore.put(root);
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            assertThat(store.directories().getRecursive(root.digest()).toList()).containsExactly(root, leaf);
            assertThat(store.directories().get(leaf.digest())).contains(leaf);
            assertThat(store.directories().getRecursive(root.digest()).toList()).containsExactly(root, leaf);
        }
        assertThat(remote.recursiveGets).as("both in one streaming call, then from the cache").hasValue(1);
        assertThat(remote.directoryGets).hasValue(0);
        damage(CachingDirectoryService.DIRECTORIES, leaf.digest(), bytes -> {
            for (int i = 0; i + 2 < bytes.length; i++) {
                if (bytes[i] == 0x0a && bytes[i + 1] == 1 && bytes[i + 2] == 'f') {
                    bytes[i + 2] = 'g'; // a valid Directory, but not this one
                    return;
                }
            }
            throw new AssertionError("name not found in the encoded Directory");
        });
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            assertThat(store.directories().get(leaf.digest())).contains(leaf);
            assertThat(store.directories().get(root.digest())).contains(root);
        }
        assertThat(remote.directoryGets).hasValue(1); // only the damaged one was fetched again
    }

    /** root -> a, b, c; each of those -> x (its own), y (its own); each leaf holds one file. */
    private Directory threeLevels() throws IOException {
        var root = Directory.builder();
        for (String name : List.of("a", "b", "c")) {
            var middle = Directory.builder();
            for (String leafName : List.of("x", "y")) {
                byte[] content = (name + leafName).getBytes(java.nio.charset.StandardCharsets.UTF_8);
                Directory leaf = Directory.builder().add("f", new FileNode(remote.add(content), content.length, false)).build();
                remote.directoryStore.put(leaf);
                middle.add(leafName, leaf.toNode());
            }
            Directory built = middle.build();
            remote.directoryStore.put(built);
            root.add(name, built.toNode());
        }
        Directory built = root.add("file", new FileNode(remote.add(new byte[] {7}), 1, false)).build();
        remote.directoryStore.put(built);
        return built;
    }

    @Test
    void aDirectoryGotHasItsSubdirectoriesFetchedAheadOneLevelOnly() throws Exception {
        remote.streamsClosures = false; // a get per Directory, as from S3
        Directory root = threeLevels();
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            var directories = (CachingDirectoryService) store.directories();
            assertThat(directories.get(root.digest())).contains(root);
            awaitFetchedAhead(directories, 3);
            Thread.sleep(100); // nothing further should come
            assertThat(remote.directoryGets).as("the root, then its three subdirectories, not theirs").hasValue(4);
            // The walk goes on: a subdirectory comes from the cache, and its own children are fetched ahead.
            Directory a = subdirectory(root, "a");
            assertThat(directories.get(a.digest())).contains(a);
            awaitFetchedAhead(directories, 5);
            assertThat(remote.directoryGets).hasValue(6);
            assertThat(directories.get(subdirectory(a, "x").digest())).isPresent();
            assertThat(remote.directoryGets).as("fetched ahead, so no fetch of its own").hasValue(6);
        }
        // Cached on disk: a walk of a new process fetches nothing ahead.
        remote.offline = true;
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            var directories = (CachingDirectoryService) store.directories();
            assertThat(directories.get(root.digest())).contains(root);
            assertThat(directories.get(subdirectory(root, "a").digest())).isPresent();
            Thread.sleep(100);
            assertThat(directories.fetches()).isZero();
        }
    }

    @Test
    void aGetOfADirectoryBeingFetchedAheadWaitsForThatFetchAndFailuresAheadAreLeftToTheWalk() throws Exception {
        remote.streamsClosures = false;
        Directory root = threeLevels();
        try (Store store = cached(config(null, 1L << 30, 0))) {
            var directories = (CachingDirectoryService) store.directories();
            assertThat(directories.get(root.digest())).contains(root);
            awaitFetchedAhead(directories, 3);
            Directory b = subdirectory(root, "b");
            // Hold the fetches ahead of b's children at the remote, then ask for one of them.
            var gate = new java.util.concurrent.CountDownLatch(1);
            remote.directoryGate = gate;
            assertThat(directories.get(b.digest())).contains(b);
            long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(30);
            while (remote.directoryGets.get() < 6 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            var got = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                try {
                    return directories.get(subdirectory(b, "y").digest());
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            Thread.sleep(50);
            assertThat(got).as("waits for the fetch ahead").isNotDone();
            gate.countDown();
            remote.directoryGate = null;
            assertThat(got.get(30, java.util.concurrent.TimeUnit.SECONDS)).isPresent();
            assertThat(remote.directoryGets).as("one fetch of each of b's children").hasValue(6);
            // The remote goes away: c's children fail to come ahead, and the walk's own get reports it.
            remote.offline = true;
            Directory c = subdirectory(root, "c");
            assertThat(directories.get(c.digest())).contains(c);
            Thread.sleep(100);
            assertThatThrownBy(() -> directories.get(subdirectory(c, "x").digest())).isInstanceOf(IOException.class);
            remote.offline = false;
            assertThat(directories.get(subdirectory(c, "x").digest())).isPresent();
        }
    }

    @Test
    void aSmallTreeComesInOneStreamThatAWalkTakesEveryDirectoryFrom() throws Exception {
        Directory root = threeLevels();
        try (Store store = cached(config(null, 1L << 30, 0))) {
            var directories = (CachingDirectoryService) store.directories();
            assertThat(walk(directories, root.digest())).isEqualTo(10);
            assertThat(remote.directoryGets).as("the root alone, one get").hasValue(1);
            assertThat(remote.recursiveGets).as("everything below it, one stream").hasValue(1);
            assertThat(directories.closureStreams()).isEqualTo(1);
            assertThat(directories.fetches()).as("the root, then the nine below it").isEqualTo(10);
        }
    }

    @Test
    void aTreeOverTheLimitIsReadAheadALevelAtATimeAndItsSmallSubtreesAreStreamedOnceEntered() throws Exception {
        Directory root = threeLevels(); // 16 entries; a, b and c 4 each
        try (var directories = new CachingDirectoryService(remote.directories, null, config(null, 1L << 30, 0), 6)) {
            assertThat(directories.get(root.digest())).contains(root);
            awaitFetchedAhead(directories, 3);
            assertThat(remote.recursiveGets).as("the root's tree is over the limit").hasValue(0);
            Directory a = subdirectory(root, "a");
            assertThat(directories.get(a.digest())).contains(a);
            for (String leaf : List.of("x", "y")) {
                assertThat(directories.get(subdirectory(a, leaf).digest())).isPresent();
            }
            assertThat(remote.recursiveGets).as("a's tree, once entered").hasValue(1);
            assertThat(remote.directoryGets).as("the root and its three subdirectories, nothing below").hasValue(4);
        }
    }

    @Test
    void aStreamThatKeepsAGetWaitingIsNotWaitedForAgain() throws Exception {
        Directory root = threeLevels();
        var gate = new java.util.concurrent.CountDownLatch(1);
        remote.recursiveGate = gate; // the stream sends the root, then stalls
        try (Store store = cached(config(null, 1L << 30, 0))) {
            var directories = (CachingDirectoryService) store.directories();
            assertThat(directories.get(root.digest())).contains(root);
            for (String name : List.of("a", "b", "c")) {
                Directory sub = subdirectory(root, name);
                assertThat(directories.get(sub.digest())).contains(sub);
            }
            // Had the walk waited for the stalled stream, it would still be waiting.
            assertThat(remote.directoryGets.get()).as("the root, then a, b and c by gets of their own").isGreaterThanOrEqualTo(4);
            gate.countDown();
            assertThat(walk(directories, root.digest())).isEqualTo(10);
        } finally {
            remote.recursiveGate = null;
        }
    }

    @Test
    void aGetOfADirectoryFarAheadOfTheStreamDoesNotWaitForIt() throws Exception {
        // root -> big (1,200 files), small (one file): the stream brings big's entries before small.
        var big = Directory.builder();
        for (int i = 0; i < 1200; i++) {
            byte[] content = ("file " + i).getBytes(java.nio.charset.StandardCharsets.UTF_8);
            big.add(String.format("f%04d", i), new FileNode(remote.add(content), content.length, false));
        }
        Directory bigDir = big.build();
        Directory smallDir = Directory.builder().add("only", new FileNode(remote.add(new byte[] {1}), 1, false)).build();
        Directory root = Directory.builder().add("big", bigDir.toNode()).add("small", smallDir.toNode()).build();
        for (Directory d : List.of(bigDir, smallDir, root)) {
            remote.directoryStore.put(d);
        }
        var gate = new java.util.concurrent.CountDownLatch(1);
        remote.recursiveGate = gate; // the stream sends the root, then stalls
        try (Store store = cached(config(null, 1L << 30, 0))) {
            var directories = (CachingDirectoryService) store.directories();
            assertThat(directories.get(root.digest())).contains(root);
            assertThat(directories.get(smallDir.digest())).contains(smallDir);
            assertThat(directories.streamWaitsGivenUp()).as("small is 1,200 entries off: fetched at once").isZero();
            assertThat(directories.get(bigDir.digest())).contains(bigDir);
            assertThat(directories.streamWaitsGivenUp()).as("big is next: waited for, in vain").isEqualTo(1);
            assertThat(remote.directoryGets).hasValue(3);
        } finally {
            gate.countDown();
            remote.recursiveGate = null;
        }
    }

    @Test
    void aBreadthFirstStreamOrOneThatBreaksStillGivesAWalkEveryDirectory() throws Exception {
        Directory root = threeLevels();
        remote.breadthFirst = true; // as a tvix server sends a closure
        try (Store store = cached(config(null, 1L << 30, 0))) {
            assertThat(walk((CachingDirectoryService) store.directories(), root.digest())).isEqualTo(10);
        }
        remote.breadthFirst = false;
        remote.recursiveBreaksAfter = 3;
        remote.directoryGets.set(0);
        try (Store store = cached(config(null, 1L << 30, 0))) {
            var directories = (CachingDirectoryService) store.directories();
            assertThat(walk(directories, root.digest())).isEqualTo(10);
            assertThat(remote.directoryGets.get()).as("what the broken stream did not bring").isBetween(2, 8);
        } finally {
            remote.recursiveBreaksAfter = -1;
        }
    }

    /** Gets every Directory below {@code digest} as find would, depth-first in name order; how many. */
    private static int walk(CachingDirectoryService directories, B3Digest digest) throws IOException {
        Directory d = directories.get(digest).orElseThrow();
        int count = 1;
        for (int i = 0; i < d.entryCount(); i++) {
            if (d.node(i) instanceof castore.model.DirectoryNode child) {
                count += walk(directories, child.digest());
            }
        }
        return count;
    }

    private Directory subdirectory(Directory parent, String name) throws IOException {
        var node = (castore.model.DirectoryNode) parent.get(castore.model.Name.of(name));
        return remote.directoryStore.get(node.digest()).orElseThrow();
    }

    private static void awaitFetchedAhead(CachingDirectoryService directories, long count) throws InterruptedException {
        long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(30);
        while (directories.fetchedAhead() < count && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertThat(directories.fetchedAhead()).isEqualTo(count);
    }

    @Test
    void aSmallBlobToBeReadIsFetchedInTheBackgroundOnceAndALargeOneIsLeftToItsRead() throws Exception {
        byte[] small = random(3000, 51);
        B3Digest smallDigest = remote.add(small);
        byte[] large = random((int) CachingBlobService.WHOLE_FETCH_MAX + 1, 52);
        B3Digest largeDigest = remote.add(large);
        byte[] gone = random(2000, 53);
        B3Digest goneDigest = remote.add(gone);
        try (Store store = cached(config(null, 1L << 30, 0))) {
            var blobs = (CachingBlobService) store.blobs();
            blobs.willRead(smallDigest, small.length);
            long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(30);
            while (blobs.fetches() < 1 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            int reads = remote.chunkReads.get();
            assertThat(reads).isEqualTo(1);
            try (BlobReader r = blobs.open(smallDigest, small.length).orElseThrow()) {
                assertThat(readAll(r)).isEqualTo(small);
            }
            assertThat(remote.chunkReads).as("read from the cache").hasValue(reads);
            blobs.willRead(smallDigest, small.length); // cached: nothing to do
            blobs.willRead(largeDigest, large.length); // its own read-ahead starts with its first read
            assertThat(blobs.filesAhead()).isEqualTo(1);
            // A fetch ahead that fails is left to the read, which reports it.
            remote.offline = true;
            blobs.willRead(goneDigest, gone.length);
            Thread.sleep(100);
            assertThatThrownBy(() -> readAll(store, goneDigest)).isInstanceOf(IOException.class);
        }
        assertThat(remote.chunkReads).hasValue(1);
    }

    @Test
    void sequentialReaderGetsReadAhead() throws Exception {
        byte[] data = random(20 * FakeRemote.CHUNK, 4);
        B3Digest digest = remote.add(data);
        try (Store store = cached(config(null, 1L << 30, 8L * FakeRemote.CHUNK))) {
            CachingBlobService blobs = (CachingBlobService) store.blobs();
            try (BlobReader r = store.blobs().open(digest).orElseThrow()) {
                r.read(0, ByteBuffer.allocate(4096));
                eventually(() -> blobs.fetches() == 9); // chunks 0..8 cover [4096, 4096 + 8 chunks)
                remote.offline = true; // what follows must come from what was read ahead
                ByteBuffer next = ByteBuffer.allocate(8 * FakeRemote.CHUNK);
                assertThat(r.read(4096, next)).isEqualTo(8 * FakeRemote.CHUNK);
                assertThat(next.array()).isEqualTo(Arrays.copyOfRange(data, 4096, 4096 + 8 * FakeRemote.CHUNK));
            }
        }
    }

    /** A memory tier of 1 MiB: blobs from 256 KiB (4 chunks) up stream through a sequential reader. */
    static CacheConfig smallMemory(Path dir, long readAhead) {
        return new CacheConfig(Optional.ofNullable(dir), 1L << 30, 1L << 20, 4, readAhead);
    }

    static byte[] readSequentially(BlobReader r, int piece) throws IOException {
        ByteBuffer all = ByteBuffer.allocate((int) r.size());
        while (all.hasRemaining()) {
            ByteBuffer b = all.slice(all.position(), Math.min(piece, all.remaining()));
            int n = r.read(all.position(), b);
            assertThat(n).isPositive();
            all.position(all.position() + n);
        }
        return all.array();
    }

    @Test
    void aLargeBlobReadSequentiallyGoesToDiskNotToTheMemoryTier() throws Exception {
        byte[] data = random(40 * FakeRemote.CHUNK + 7, 20);
        B3Digest digest = remote.add(data);
        List<castore.service.ChunkMeta> list = remote.lists.get(digest);
        try (Store store = cached(smallMemory(dir, 4L * FakeRemote.CHUNK))) {
            CachingBlobService blobs = (CachingBlobService) store.blobs();
            try (BlobReader r = blobs.open(digest).orElseThrow()) {
                assertThat(readSequentially(r, 128 * 1024)).isEqualTo(data);
            }
            assertThat(list).noneMatch(c -> blobs.inMemory(c.digest()));
            assertThat(blobs.knownBound(digest)).isTrue(); // the whole-blob check ran on the streamed chunks
            assertThat(blobs.fetches()).isEqualTo(list.size());
        }
        remote.offline = true; // every chunk is on disk
        try (Store store = cached(smallMemory(dir, 4L * FakeRemote.CHUNK))) {
            assertThat(readAll(store, digest)).isEqualTo(data);
        }
    }

    /** Chunk sizes taken in turn: content-defined chunks differ in size, and slots hold the largest. */
    static final int[] UNEVEN = {40_000, 97_000, 65_536, 13_001, 120_000, 1, 77_777};

    /** Reads {@code digest} once (filling the disk tier and binding its chunk list); then the cache is warm. */
    void warmUp(B3Digest digest, byte[] data) throws IOException {
        try (Store store = cached(smallMemory(dir, 4L * FakeRemote.CHUNK))) {
            assertThat(readAll(store, digest)).isEqualTo(data);
            assertThat(((CachingBlobService) store.blobs()).knownBound(digest)).isTrue();
        }
    }

    @Test
    void aWarmReadThatTakesWholeChunksGetsThemStraightFromDiskPastTheMemoryTierAndADamagedOneIsRefetched() throws IOException {
        byte[] data = random(3 * FakeRemote.CHUNK + 500, 41);
        B3Digest digest = remote.add(data);
        List<castore.service.ChunkMeta> list = remote.lists.get(digest);
        warmUp(digest, data);
        remote.offline = true;
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            CachingBlobService blobs = (CachingBlobService) store.blobs();
            try (BlobReader r = blobs.open(digest).orElseThrow()) {
                // Into the middle of an array: the reply buffer a filesystem hands over may be a slice.
                ByteBuffer dst = ByteBuffer.wrap(new byte[data.length + 7]).position(7).slice();
                assertThat(r.read(0, dst)).isEqualTo(data.length);
                assertThat(Arrays.copyOfRange(dst.array(), 7, 7 + data.length)).isEqualTo(data);
                for (long at = 0; at < data.length; at += FakeRemote.CHUNK) {
                    assertThat(((ChunkedBlobReader) r).lendRecentChunk(at, (start, bytes, length) -> { }))
                            .as("no chunk went through an array").isFalse();
                }
            }
            assertThat(blobs.wholeReads()).isEqualTo(list.size());
            assertThat(blobs.cachedLoads()).isZero();
            assertThat(list).noneMatch(c -> blobs.inMemory(c.digest()));
        }
        damage(CachingBlobService.CHUNKS, list.get(1).digest(), bytes -> bytes[7] ^= 1);
        remote.offline = false;
        int before = remote.chunkReads.get();
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            CachingBlobService blobs = (CachingBlobService) store.blobs();
            assertThat(readAll(store, digest)).isEqualTo(data);
            assertThat(blobs.wholeReads()).isEqualTo(list.size() - 1);
        }
        assertThat(remote.chunkReads.get() - before).as("the damaged chunk, fetched again").isEqualTo(1);
    }

    @Test
    void aWarmStreamReadsItsChunksFromDiskIntoReusedBuffersWithExactBytes() throws Exception {
        byte[] data = random(6_000_000 + 17, 40);
        B3Digest digest = remote.add(data, UNEVEN);
        List<castore.service.ChunkMeta> list = remote.lists.get(digest);
        warmUp(digest, data);
        remote.offline = true; // every chunk comes from disk
        for (boolean direct : new boolean[] {false, true}) {
            try (Store store = cached(smallMemory(dir, 4L * FakeRemote.CHUNK).withDirectReads(direct))) {
                CachingBlobService blobs = (CachingBlobService) store.blobs();
                try (BlobReader r = blobs.open(digest).orElseThrow()) {
                    assertThat(readSequentially(r, 128 * 1024 - 3)).isEqualTo(data);
                }
                // Each chunk read once into a few reused buffers: the 16 slots, or past the page
                // cache (O_DIRECT: the test directory is on a file system that has it) into a
                // direct stream's.
                assertThat(list.size()).isGreaterThan(4 * 16);
                assertThat(blobs.slotLoads()).as("direct %s", direct).isEqualTo(list.size());
                if (direct) {
                    assertThat(blobs.directLoads()).as("chunks read with O_DIRECT").isGreaterThanOrEqualTo(list.size() - 2);
                    // The chunks were stored one after another as they were fetched: a read takes
                    // several at once (spans of up to 1 MiB; these chunks are 64 KiB on average).
                    assertThat(blobs.spanLoads()).as("loads of several chunks").isPositive().isLessThan(list.size() / 4);
                    assertThat(blobs.directBuffersHeld()).as("buffers given back when the reader closed").isZero();
                } else {
                    assertThat(blobs.directLoads()).isZero();
                    assertThat(blobs.spanLoads()).isZero();
                }
                assertThat(list).noneMatch(c -> blobs.inMemory(c.digest()));
            }
        }
    }

    @Test
    void twoNearbyRandomReadsDoNotStartADirectStreamAThirdInARowDoes() throws Exception {
        byte[] data = random(6_000_000 + 11, 43);
        B3Digest digest = remote.add(data, UNEVEN);
        warmUp(digest, data);
        remote.offline = true;
        try (Store store = cached(smallMemory(dir, 4L * FakeRemote.CHUNK).withDirectReads(true))) {
            CachingBlobService blobs = (CachingBlobService) store.blobs();
            try (BlobReader r = blobs.open(digest).orElseThrow()) {
                // Pairs of 4 KiB reads, each second one near the first (the kernel's random reads
                // land so now and then): read-ahead past the page cache would be wasted on them.
                for (int at : new int[] {1_000_000, 3_000_000, 5_000_000}) {
                    checkRange(r, data, at, 4096);
                    checkRange(r, data, at + 50_000, 4096);
                }
                assertThat(blobs.directLoads()).as("chunks read ahead for random reads").isZero();
                assertThat(blobs.slotLoads()).as("the second of each pair, into a slot").isPositive();
                checkRange(r, data, 3_100_000, 4096); // the third in a row: a stream
                assertThat(blobs.directLoads()).as("chunks read by a direct stream").isPositive();
            }
        }
    }

    @Test
    void readersOfOtherRangesWhileStreamsRunAlwaysGetTheRightBytes() throws Exception {
        byte[] data = random(6_000_000 + 5, 41);
        B3Digest digest = remote.add(data, UNEVEN);
        warmUp(digest, data);
        remote.offline = true;
        // Two slots for six threads: loads overwrite slots while others copy from them; with
        // direct reads, four streams and random readers share each reader's direct streams.
        for (boolean direct : new boolean[] {false, true}) {
            try (DiskCache disk = new DiskCache(dir, 1L << 30);
                    CachingBlobService blobs = new CachingBlobService(remote.blobs, disk, smallMemory(dir, 4L * FakeRemote.CHUNK).withDirectReads(direct), 2)) {
                try (BlobReader r = blobs.open(digest).orElseThrow()) {
                    java.util.concurrent.atomic.AtomicReference<Throwable> failure = new java.util.concurrent.atomic.AtomicReference<>();
                    java.util.concurrent.atomic.AtomicLong checked = new java.util.concurrent.atomic.AtomicLong();
                    List<Thread> threads = new ArrayList<>();
                    // Four streams (as four processes reading quarters of one file) overwrite each
                    // other's slots all along, and two threads read anywhere in between.
                    for (int s = 0; s < 4; s++) {
                        int from = s * data.length / 4;
                        int to = (s + 1) * data.length / 4;
                        int piece = 20_000 + 7 * s;
                        threads.add(Thread.ofPlatform().uncaughtExceptionHandler((t, e) -> failure.set(e)).start(() -> {
                            for (int pass = 0; pass < 3; pass++) {
                                for (int at = from; at < to; at += piece) {
                                    checkRange(r, data, at, Math.min(piece, to - at));
                                    checked.incrementAndGet();
                                }
                            }
                        }));
                    }
                    for (int t = 0; t < 2; t++) {
                        long seed = t;
                        threads.add(Thread.ofPlatform().uncaughtExceptionHandler((th, e) -> failure.set(e)).start(() -> {
                            SplittableRandom random = new SplittableRandom(seed);
                            for (int i = 0; i < 1500; i++) {
                                int at = random.nextInt(data.length);
                                checkRange(r, data, at, Math.min(1 + random.nextInt(300_000), data.length - at));
                                checked.incrementAndGet();
                            }
                        }));
                    }
                    for (Thread t : threads) {
                        t.join();
                    }
                    assertThat(failure.get()).isNull();
                    assertThat(checked.get()).isGreaterThan(3000);
                    assertThat(blobs.slotLoads()).isPositive();
                }
            }
        }
    }

    /** Reads {@code [at, at + length)} through {@code r} and compares it to the source. */
    static void checkRange(BlobReader r, byte[] data, int at, int length) {
        ByteBuffer b = ByteBuffer.allocate(length);
        try {
            int n = r.read(at, b);
            assertThat(n).isEqualTo(length);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        if (!Arrays.equals(b.array(), 0, length, data, at, at + length)) {
            throw new AssertionError("wrong bytes at " + at + " (+" + length + ")");
        }
    }

    @Test
    void aCorruptedEntryOnTheStreamPathIsRefetchedOrAnErrorNeverReturned() throws Exception {
        byte[] data = random(3_000_000, 42);
        B3Digest digest = remote.add(data, UNEVEN);
        List<castore.service.ChunkMeta> list = remote.lists.get(digest);
        warmUp(digest, data);
        damage(CachingBlobService.CHUNKS, list.get(20).digest(), bytes -> bytes[bytes.length / 2] ^= 1);
        int before = remote.chunkReads.get();
        try (Store store = cached(smallMemory(dir, 4L * FakeRemote.CHUNK))) {
            CachingBlobService blobs = (CachingBlobService) store.blobs();
            try (BlobReader r = blobs.open(digest).orElseThrow()) {
                assertThat(readSequentially(r, 64 * 1024 + 1)).isEqualTo(data);
            }
            assertThat(blobs.slotLoads()).isEqualTo(list.size() - 1);
        }
        assertThat(remote.chunkReads.get() - before).isEqualTo(1);
        damage(CachingBlobService.CHUNKS, list.get(30).digest(), bytes -> bytes[0] ^= 1);
        remote.offline = true;
        try (Store store = cached(smallMemory(dir, 4L * FakeRemote.CHUNK));
                BlobReader r = store.blobs().open(digest).orElseThrow()) {
            ByteBuffer all = ByteBuffer.allocate(data.length);
            assertThatThrownBy(() -> {
                while (all.hasRemaining()) {
                    ByteBuffer b = all.slice(all.position(), Math.min(64 * 1024, all.remaining()));
                    all.position(all.position() + r.read(all.position(), b));
                }
            }).isInstanceOf(IOException.class);
            // Everything served before the failure was right.
            assertThat(all.position()).isGreaterThan(0);
            assertThat(Arrays.equals(all.array(), 0, all.position(), data, 0, all.position())).isTrue();
        }
    }

    @Test
    void parallelSequentialReadersOfOneBlobAreEachReadAheadAndNothingIsFetchedTwice() throws Exception {
        // 12 MiB: the two halves lie farther apart than a stream keeps chunks behind and ahead of it.
        byte[] data = random(192 * FakeRemote.CHUNK, 25);
        B3Digest digest = remote.add(data);
        try (Store store = cached(smallMemory(dir, 4L * FakeRemote.CHUNK))) {
            CachingBlobService blobs = (CachingBlobService) store.blobs();
            try (BlobReader r = blobs.open(digest).orElseThrow()) {
                // Two readers in turn, one from chunk 1 and one from chunk 97, 32 KiB at a time, as
                // two processes reading halves of one file do: each is a stream of its own.
                int piece = 32 * 1024;
                long[] at = {FakeRemote.CHUNK, 97L * FakeRemote.CHUNK};
                long[] stop = {96L * FakeRemote.CHUNK, 192L * FakeRemote.CHUNK};
                for (int round = 0; at[0] < stop[0] || at[1] < stop[1]; round++) {
                    for (int s = 0; s < 2; s++) {
                        if (at[s] >= stop[s]) {
                            continue;
                        }
                        ByteBuffer b = ByteBuffer.allocate(piece);
                        int n = r.read(at[s], b);
                        assertThat(Arrays.copyOf(b.array(), n)).isEqualTo(Arrays.copyOfRange(data, (int) at[s], (int) at[s] + n));
                        at[s] += n;
                    }
                    if (round == 5) {
                        // Six reads each (3 chunks per stream touched): both streams are read ahead
                        // by 4 chunks (with one rule for the reader, alternating reads looked random).
                        eventually(() -> blobs.fetches() >= 2 * (3 + 4));
                    }
                }
            }
            assertThat(blobs.fetches()).isLessThanOrEqualTo(remote.lists.get(digest).size());
            assertThat(inOrderOnDisk(blobs, remote.lists.get(digest).subList(1, 96))).as("the first stream's chunks").isTrue();
            assertThat(inOrderOnDisk(blobs, remote.lists.get(digest).subList(97, 192))).as("the second's").isTrue();
        }
        remote.offline = true; // every chunk either stream read reached the disk
        try (Store store = cached(smallMemory(dir, 4L * FakeRemote.CHUNK))) {
            readChunks(store, digest, data, 1, 96);
            readChunks(store, digest, data, 97, 192);
        }
    }

    /** Whether each chunk of {@code list} lies right after the one before it in the disk tier. */
    static boolean inOrderOnDisk(CachingBlobService blobs, List<castore.service.ChunkMeta> list) {
        for (int i = 0; i + 1 < list.size(); i++) {
            if (blobs.diskSpan(list.subList(i, i + 2)) != 2) {
                return false;
            }
        }
        return true;
    }

    /** A blob of 16 chunks whose chunk 1 is fetched only once {@code late} opens. */
    record HeldBlob(byte[] data, B3Digest digest, List<castore.service.ChunkMeta> list, CountDownLatch late) {
    }

    HeldBlob blobWithChunkOneHeld(long seed) {
        byte[] data = random(16 * FakeRemote.CHUNK, seed);
        B3Digest digest = remote.add(data);
        List<castore.service.ChunkMeta> list = remote.lists.get(digest);
        CountDownLatch late = new CountDownLatch(1);
        remote.holds.put(list.get(1).digest(), late);
        return new HeldBlob(data, digest, list, late);
    }

    /** What a held-blob test checks while its reader is open. */
    interface WhileOpen {
        void check(CachingBlobService blobs, BlobReader reader) throws Exception;
    }

    /** What a held-blob test checks once its reader is closed, in the same cache. */
    interface Afterwards {
        void check(CachingBlobService blobs) throws Exception;
    }

    /**
     * Reads {@code held} through a cache with 8 chunks of memory: chunk 0 first, so that the
     * read-ahead fetches 1..8 four at a time, then waits until 1 waits while the ones begun after
     * it end, and runs {@code whileOpen} on the reader and {@code afterwards} once it is closed.
     * Then every chunk must have reached the disk: the blob reads back with the remote offline.
     */
    void readPastChunkOne(HeldBlob held, WhileOpen whileOpen, Afterwards afterwards) throws Exception {
        try (Store store = cached(smallMemory(dir, 8L * FakeRemote.CHUNK))) {
            CachingBlobService blobs = (CachingBlobService) store.blobs();
            try (BlobReader r = blobs.open(held.digest()).orElseThrow()) {
                r.read(0, ByteBuffer.allocate(4096));
                eventually(() -> remote.chunkReads.get() >= 6);
                whileOpen.check(blobs, r);
            }
            afterwards.check(blobs);
        }
        remote.offline = true;
        try (Store store = cached(smallMemory(dir, 8L * FakeRemote.CHUNK))) {
            assertThat(readAll(store, held.digest())).isEqualTo(held.data());
        }
    }

    @Test
    void chunksFetchedOutOfOrderReachTheDiskInOrderSoAWarmStreamReadsThemInSpans() throws Exception {
        HeldBlob held = blobWithChunkOneHeld(27);
        List<castore.service.ChunkMeta> list = held.list();
        readPastChunkOne(held, (blobs, r) -> {
            assertThat(blobs.diskSpan(list.subList(2, 3))).as("held back behind chunk 1").isZero();
            held.late().countDown();
            assertThat(readSequentially(r, 128 * 1024)).isEqualTo(held.data());
        }, blobs -> {
            assertThat(inOrderOnDisk(blobs, list)).isTrue();
            assertThat(blobs.diskSpan(list)).isEqualTo(list.size());
        });
    }

    @Test
    void aFetchThatFailsLetsTheChunksHeldBehindItGoToDisk() throws Exception {
        HeldBlob held = blobWithChunkOneHeld(28);
        List<castore.service.ChunkMeta> list = held.list();
        remote.failOnce.add(list.get(1).digest());
        readPastChunkOne(held, (blobs, r) -> {
            remote.holds.clear();
            held.late().countDown(); // the read-ahead's fetch of chunk 1 fails
            // Chunks 2..8, fetched while 1 was under way, were held back; now they are written.
            eventually(() -> list.subList(2, 9).stream().allMatch(c -> blobs.diskSpan(List.of(c)) == 1));
            assertThat(inOrderOnDisk(blobs, list.subList(2, 9))).isTrue();
            assertThat(blobs.diskSpan(list.subList(1, 2))).as("chunk 1 not fetched yet").isZero();
            assertThat(readSequentially(r, 128 * 1024)).isEqualTo(held.data()); // fetched again by the reader
        }, blobs -> eventually(() -> { // the check goes on from disk after the reader closes
            try {
                return blobs.knownBound(held.digest());
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }));
    }

    @Test
    void aReaderWithReadAheadTellsTheFilesystemItReadsAheadItself() throws IOException {
        B3Digest digest = remote.add(random(8 * FakeRemote.CHUNK, 26));
        try (Store store = cached(config(null, 1L << 30, 4L * FakeRemote.CHUNK));
                BlobReader r = store.blobs().open(digest).orElseThrow()) {
            assertThat(r.readsAhead()).isTrue();
        }
        try (Store store = cached(config(null, 1L << 30, 0));
                BlobReader r = store.blobs().open(digest).orElseThrow()) {
            assertThat(r.readsAhead()).isFalse();
        }
    }

    @Test
    void randomReadsOfALargeBlobStillUseTheMemoryTier() throws IOException {
        byte[] data = random(40 * FakeRemote.CHUNK, 21);
        B3Digest digest = remote.add(data);
        try (Store store = cached(smallMemory(dir, 4L * FakeRemote.CHUNK))) {
            CachingBlobService blobs = (CachingBlobService) store.blobs();
            try (BlobReader r = blobs.open(digest).orElseThrow()) {
                r.read(30L * FakeRemote.CHUNK + 5, ByteBuffer.allocate(100));
                r.read(10L * FakeRemote.CHUNK + 5, ByteBuffer.allocate(100));
            }
            assertThat(blobs.inMemory(remote.lists.get(digest).get(30).digest())).isTrue();
            assertThat(blobs.inMemory(remote.lists.get(digest).get(10).digest())).isTrue();
        }
    }

    @Test
    void warmRandomReadsKeepWhatTheyReadFromDiskInTheReaderNotInTheMemoryTier() throws IOException {
        byte[] data = random(40 * FakeRemote.CHUNK, 27);
        B3Digest digest = remote.add(data);
        List<castore.service.ChunkMeta> list = remote.lists.get(digest);
        warmUp(digest, data);
        remote.offline = true;
        try (Store store = cached(smallMemory(dir, 4L * FakeRemote.CHUNK))) {
            CachingBlobService blobs = (CachingBlobService) store.blobs();
            try (BlobReader r = blobs.open(digest).orElseThrow()) {
                checkRange(r, data, 30 * FakeRemote.CHUNK + 5, 100);
                checkRange(r, data, 30 * FakeRemote.CHUNK + 4000, 100); // the reader's own copy
                checkRange(r, data, 10 * FakeRemote.CHUNK + 5, 5000);
                // What the filesystem would hand to the kernel: the whole chunk, right bytes.
                var lent = new java.util.concurrent.atomic.AtomicReference<byte[]>();
                assertThat(((ChunkedBlobReader) r).lendRecentChunk(10L * FakeRemote.CHUNK + 5, (start, bytes, length) -> {
                    assertThat(start).isEqualTo(10L * FakeRemote.CHUNK);
                    lent.set(Arrays.copyOf(bytes, length));
                })).isTrue();
                assertThat(lent.get()).isEqualTo(Arrays.copyOfRange(data, 10 * FakeRemote.CHUNK, 11 * FakeRemote.CHUNK));
                checkRange(r, data, 30 * FakeRemote.CHUNK + 60_000, 5536);
            }
            assertThat(blobs.cachedLoads()).isEqualTo(2);
            assertThat(blobs.inMemory(list.get(30).digest())).isFalse();
            assertThat(blobs.inMemory(list.get(10).digest())).isFalse();
        }
    }

    @Test
    void concurrentRandomReadersOfAWarmCacheGetExactBytesAndRefetchCorruptedChunks() throws Exception {
        byte[] data = random(6_000_000 + 3, 28);
        B3Digest digest = remote.add(data, UNEVEN);
        List<castore.service.ChunkMeta> list = remote.lists.get(digest);
        warmUp(digest, data);
        damage(CachingBlobService.CHUNKS, list.get(17).digest(), bytes -> bytes[bytes.length - 1] ^= 1);
        damage(CachingBlobService.CHUNKS, list.get(60).digest(), bytes -> bytes[0] ^= 1);
        int before = remote.chunkReads.get();
        // A memory tier of 1 MiB (chunks fetched again join it and are evicted while others read).
        try (Store store = cached(smallMemory(dir, 4L * FakeRemote.CHUNK))) {
            CachingBlobService blobs = (CachingBlobService) store.blobs();
            try (BlobReader r = blobs.open(digest).orElseThrow()) {
                java.util.concurrent.atomic.AtomicReference<Throwable> failure = new java.util.concurrent.atomic.AtomicReference<>();
                List<Thread> threads = new ArrayList<>();
                for (int t = 0; t < 6; t++) {
                    long seed = 100 + t;
                    threads.add(Thread.ofPlatform().uncaughtExceptionHandler((th, e) -> failure.set(e)).start(() -> {
                        SplittableRandom random = new SplittableRandom(seed);
                        for (int i = 0; i < 1500; i++) {
                            int at = random.nextInt(data.length);
                            checkRange(r, data, at, Math.min(1 + random.nextInt(9000), data.length - at));
                            // The chunk a filesystem would push to the kernel is right while it is lent. (None
                            // may be: reads that happen to continue one another are served from reused
                            // slots, which are never the last chunk read.)
                            ((ChunkedBlobReader) r).lendRecentChunk(at, (start, bytes, length) -> {
                                if (!Arrays.equals(bytes, 0, length, data, (int) start, (int) start + length)) {
                                    throw new AssertionError("wrong bytes in the last chunk read, at " + start);
                                }
                            });
                        }
                    }));
                }
                for (Thread t : threads) {
                    t.join();
                }
                assertThat(failure.get()).isNull();
            }
            // Disk hits skipped the memory tier; only the two refetched chunks may be there.
            assertThat(list.stream().filter(c -> blobs.inMemory(c.digest())).map(c -> list.indexOf(c)).toList()).isSubsetOf(17, 60);
        }
        assertThat(remote.chunkReads.get() - before).isEqualTo(2);
    }

    @Test
    void aWrongChunkListFailsAStreamedReadToo() {
        byte[] data = random(40 * FakeRemote.CHUNK, 22);
        byte[] other = random(40 * FakeRemote.CHUNK, 23);
        B3Digest digest = remote.add(data);
        remote.lists.put(digest, remote.lists.get(remote.add(other)));
        assertThatThrownBy(() -> {
            try (Store store = cached(smallMemory(dir, 4L * FakeRemote.CHUNK));
                    BlobReader r = store.blobs().open(digest).orElseThrow()) {
                readSequentially(r, 128 * 1024);
            }
        }).isInstanceOf(castore.service.CorruptedDataException.class).hasMessageContaining("do not make up the blob");
    }

    @Test
    void readsOfOneStreamRunningAtTheSameTimeCountAsSequential() throws Exception {
        byte[] data = random(16 * FakeRemote.CHUNK, 24);
        B3Digest digest = remote.add(data);
        try (Store store = cached(config(null, 1L << 30, 2L * FakeRemote.CHUNK))) {
            CachingBlobService blobs = (CachingBlobService) store.blobs();
            try (BlobReader r = blobs.open(digest).orElseThrow()) {
                remote.gate = new CountDownLatch(1);
                // Three reads of two chunks each, as a filesystem's read-ahead windows issue them:
                // each starts before the one before has ended (all wait at the gate).
                List<Thread> readers = new ArrayList<>();
                for (int i = 0; i < 3; i++) {
                    long at = i * 2L * FakeRemote.CHUNK;
                    Thread t = Thread.ofPlatform().start(() -> {
                        try {
                            r.read(at, ByteBuffer.allocate(2 * FakeRemote.CHUNK));
                        } catch (IOException e) {
                            throw new java.io.UncheckedIOException(e);
                        }
                    });
                    readers.add(t);
                    eventually(() -> t.getState() == Thread.State.WAITING || t.getState() == Thread.State.TIMED_WAITING);
                }
                remote.gate.countDown();
                for (Thread t : readers) {
                    t.join();
                }
                // The third read is the third in a row: chunks 0-5 read, 6-7 read ahead.
                eventually(() -> blobs.fetches() == 8);
            }
        }
    }

    @Test
    void prefetchClosureFetchesTheWholeTree() throws Exception {
        byte[] a = random(3 * FakeRemote.CHUNK, 5);
        byte[] b = random(FakeRemote.CHUNK / 2, 6);
        Directory leaf = Directory.builder().add("b", new FileNode(remote.add(b), b.length, false)).build();
        B3Digest aDigest = remote.add(a);
        Directory root = Directory.builder().add("a", new FileNode(aDigest, a.length, true)).add("sub", leaf.toNode()).build();
        remote.directoryStore.put(leaf);
        remote.directoryStore.put(root);
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            Prefetcher prefetcher = Prefetcher.forStore(store);
            assertThat(prefetcher.isActive()).isTrue();
            var result = prefetcher.prefetchClosure(root.toNode()).get();
            assertThat(result).isEqualTo(new Prefetcher.ClosureResult(2, 2, 0));
            assertThat(remote.listGets).as("only the file of several chunks needed its list").hasValue(1);
            assertThat(prefetcher.prefetchClosure(root.toNode()).get()).isSameAs(result);
            assertThat(remote.recursiveGets.get()).as("the Directories in one streaming call").isEqualTo(1);
            assertThat(remote.directoryGets.get()).isZero();
            remote.offline = true;
            assertThat(store.directories().getRecursive(root.digest()).toList()).containsExactly(root, leaf);
            assertThat(readAll(store, aDigest)).isEqualTo(a);
        }
        remote.offline = false;
        try (Store memoryOnly = cached(config(null, 1L << 30, 0))) {
            // Without a disk tier only the Directories are prefetched.
            var result = Prefetcher.forStore(memoryOnly).prefetchClosure(root.toNode()).get();
            assertThat(result).isEqualTo(new Prefetcher.ClosureResult(2, 0, 0));
        }
    }

    /** A read trace's entries: fetched as listed, nothing more; what the remote lacks counted as failures. */
    @Test
    void prefetchInOrderFetchesExactlyTheEntriesGivenAndCountsTheMissing() throws Exception {
        byte[] a = random(3 * FakeRemote.CHUNK, 11);
        byte[] b = random(FakeRemote.CHUNK / 2, 12);
        byte[] unlisted = random(FakeRemote.CHUNK / 2, 13);
        FileNode fa = new FileNode(remote.add(a), a.length, false);
        FileNode fb = new FileNode(remote.add(b), b.length, false);
        Directory leaf = Directory.builder().add("b", fb).add("u", new FileNode(remote.add(unlisted), unlisted.length, false)).build();
        Directory root = Directory.builder().add("a", fa).add("sub", leaf.toNode()).build();
        remote.directoryStore.put(leaf);
        remote.directoryStore.put(root);
        FileNode absentFile = new FileNode(castore.hash.Blake3.digest(random(100, 14)), 100, false);
        FileNode absentLargeFile = new FileNode(castore.hash.Blake3.digest(random(100, 15)), 64L << 20, false);
        var absentDirectory = Directory.builder().add("x", castore.model.SymlinkNode.of("y")).build().toNode();
        List<castore.model.Node> trace = List.of(root.toNode(), fb, absentDirectory, leaf.toNode(), fa, absentFile, absentLargeFile);
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            var result = Prefetcher.forStore(store).prefetchInOrder(trace).get();
            assertThat(result).isEqualTo(new Prefetcher.ClosureResult(2, 2, 3));
            assertThat(remote.recursiveGets.get()).isZero();
            remote.offline = true;
            assertThat(store.directories().get(leaf.digest())).contains(leaf);
            assertThat(readAll(store, fa.digest())).isEqualTo(a);
            assertThat(readAll(store, fb.digest())).isEqualTo(b);
            assertThatThrownBy(() -> readAll(store, remote.add(unlisted))).as("not in the trace: not fetched").isInstanceOf(IOException.class);
        }
        remote.offline = false;
        try (Store memoryOnly = cached(config(null, 1L << 30, 0))) {
            // Without a disk tier only the Directories are prefetched.
            var result = Prefetcher.forStore(memoryOnly).prefetchInOrder(trace).get();
            assertThat(result).isEqualTo(new Prefetcher.ClosureResult(2, 0, 1));
        }
    }

    @Test
    void aClosureStreamThatBreaksIsContinuedOneDirectoryAtATime() throws Exception {
        byte[] a = random(2 * FakeRemote.CHUNK, 8);
        byte[] b = random(FakeRemote.CHUNK / 3, 9);
        Directory deep = Directory.builder().add("b", new FileNode(remote.add(b), b.length, false)).build();
        Directory middle = Directory.builder().add("deep", deep.toNode()).build();
        Directory root = Directory.builder().add("a", new FileNode(remote.add(a), a.length, false)).add("m", middle.toNode()).build();
        remote.directoryStore.put(deep);
        remote.directoryStore.put(middle);
        remote.directoryStore.put(root);
        remote.recursiveBreaksAfter = 1; // the root arrives, then the stream breaks
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            var result = Prefetcher.forStore(store).prefetchClosure(root.toNode()).get();
            assertThat(result).isEqualTo(new Prefetcher.ClosureResult(3, 2, 0));
            assertThat(remote.directoryGets.get()).as("the rest one by one").isEqualTo(2);
            remote.offline = true;
            assertThat(store.directories().getRecursive(root.digest()).toList()).containsExactly(root, middle, deep);
            assertThat(readAll(store, remote.add(b))).isEqualTo(b);
        }
        remote.offline = false;
        remote.recursiveBreaksAfter = -1;
        remote.streamsClosures = false; // as over S3: parallel gets, no recursive call
        remote.directoryGets.set(0);
        remote.recursiveGets.set(0);
        try (Store store = cached(config(dir.resolve("other"), 1L << 30, 0))) {
            var result = Prefetcher.forStore(store).prefetchClosure(root.toNode()).get();
            assertThat(result).isEqualTo(new Prefetcher.ClosureResult(3, 2, 0));
            assertThat(remote.directoryGets.get()).isEqualTo(3);
            assertThat(remote.recursiveGets.get()).isZero();
        }
    }

    @Test
    void fileOpenedPrefetchesItsFirstChunks() throws Exception {
        byte[] data = random(4 * FakeRemote.CHUNK, 7);
        B3Digest digest = remote.add(data);
        try (Store store = cached(config(null, 1L << 30, 2L * FakeRemote.CHUNK))) {
            Prefetcher.forStore(store).fileOpened(digest);
            CachingBlobService blobs = (CachingBlobService) store.blobs();
            eventually(() -> blobs.fetches() == 2);
            remote.offline = true;
            try (BlobReader r = store.blobs().open(digest).orElseThrow()) {
                ByteBuffer two = ByteBuffer.allocate(2 * FakeRemote.CHUNK);
                assertThat(r.read(0, two)).isEqualTo(2 * FakeRemote.CHUNK);
                assertThatThrownBy(() -> r.read(3L * FakeRemote.CHUNK, ByteBuffer.allocate(1))).isInstanceOf(IOException.class);
            }
        }
    }

    @Test
    void aFailingRemoteFailsTheReadThenRecovers() throws IOException {
        byte[] data = random(2 * FakeRemote.CHUNK, 8);
        B3Digest digest = remote.add(data);
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            store.blobs().chunks(digest);
            remote.offline = true;
            assertThatThrownBy(() -> readAll(store, digest)).isInstanceOf(IOException.class).hasMessageContaining("offline");
            remote.offline = false;
            assertThat(readAll(store, digest)).isEqualTo(data);
        }
    }

    @Test
    void remotesWithoutChunkAccessAreReadByBlobRange() throws IOException {
        remote.servesChunks = false;
        byte[] data = random(5 * FakeRemote.CHUNK + 7, 9);
        B3Digest digest = remote.add(data);
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            assertThat(readAll(store, digest)).isEqualTo(data);
            assertThat(readAll(store, digest)).isEqualTo(data);
        }
        assertThat(remote.chunkReads).hasValue(6);
    }

    /**
     * A blob the remote keeps whole (a tvix server without chunk lists: the gRPC client lists it
     * as one chunk of its full size) and larger than an array can be: read through the remote's
     * own reader, neither fetched into one array nor read ahead as one chunk.
     */
    @Test
    void aChunkTooLargeForAnArrayIsReadThroughTheRemotesReader() throws Exception {
        long size = 3L << 30;
        B3Digest digest = Blake3.digest("a blob kept whole".getBytes());
        var chunkReads = new java.util.concurrent.atomic.AtomicInteger();
        var opens = new java.util.concurrent.atomic.AtomicInteger();
        castore.service.BlobService whole = new castore.service.BlobService() {
            @Override
            public boolean has(B3Digest d) {
                return d.equals(digest);
            }

            @Override
            public Optional<BlobReader> open(B3Digest d) {
                if (!d.equals(digest)) {
                    return Optional.empty();
                }
                opens.incrementAndGet();
                return Optional.of(new BlobReader() {
                    @Override
                    public long size() {
                        return size;
                    }

                    @Override
                    public int read(long position, ByteBuffer dst) {
                        if (position >= size) {
                            return -1;
                        }
                        int n = (int) Math.min(dst.remaining(), size - position);
                        for (int i = 0; i < n; i++) {
                            dst.put(pattern(position + i));
                        }
                        return n;
                    }
                });
            }

            @Override
            public Optional<byte[]> readChunk(castore.service.ChunkMeta chunk) throws IOException {
                chunkReads.incrementAndGet();
                return castore.service.BlobService.super.readChunk(chunk);
            }

            @Override
            public castore.service.BlobWriter create() {
                throw new UnsupportedOperationException();
            }

            @Override
            public Optional<List<castore.service.ChunkMeta>> chunks(B3Digest d) {
                return d.equals(digest) ? Optional.of(List.of(new castore.service.ChunkMeta(digest, size))) : Optional.empty();
            }
        };
        try (Store store = StoreCache.wrap(new Store(whole, remote.directories, new MemoryRootService()), config(dir, 1L << 30, 8L << 20));
             BlobReader r = store.blobs().open(digest, size).orElseThrow()) {
            assertThat(r.size()).isEqualTo(size);
            for (long at : new long[] {0, 4096, 8192, size / 2, size - 100}) {
                ByteBuffer got = ByteBuffer.allocate(4096);
                int n = r.read(at, got);
                assertThat(n).isEqualTo((int) Math.min(4096, size - at));
                for (int i = 0; i < n; i++) {
                    assertThat(got.get(i)).as("at %d", at + i).isEqualTo(pattern(at + i));
                }
            }
        }
        assertThat(chunkReads).as("no fetch of the whole chunk, also not ahead").hasValue(0);
        assertThat(opens).as("one reader of the remote for the cache's reader").hasValue(1);
    }

    private static byte pattern(long position) {
        return (byte) (position * 31 + (position >>> 20));
    }

    @Test
    void aChunkListOfValidChunksOfOtherDataFailsTheReadAndIsDropped() throws IOException {
        byte[] data = random(3 * FakeRemote.CHUNK, 10);
        byte[] other = random(3 * FakeRemote.CHUNK, 11);
        B3Digest digest = remote.add(data);
        B3Digest otherDigest = remote.add(other);
        List<castore.service.ChunkMeta> honest = remote.lists.get(digest);
        remote.lists.put(digest, remote.lists.get(otherDigest)); // every chunk verifies, the blob does not
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            assertThatThrownBy(() -> readAll(store, digest)).isInstanceOf(castore.service.CorruptedDataException.class)
                    .hasMessageContaining("do not make up the blob");
            remote.lists.put(digest, honest); // the wrong list was not kept: the next open asks again
            assertThat(readAll(store, digest)).isEqualTo(data);
            assertThat(((CachingBlobService) store.blobs()).knownBound(digest)).isTrue();
        }
    }

    @Test
    void aWrongChunkListDroppedStaysDroppedAfterARestart() throws IOException {
        byte[] data = random(3 * FakeRemote.CHUNK, 12);
        byte[] other = random(3 * FakeRemote.CHUNK, 13);
        B3Digest digest = remote.add(data);
        B3Digest otherDigest = remote.add(other);
        List<castore.service.ChunkMeta> honest = remote.lists.get(digest);
        remote.lists.put(digest, remote.lists.get(otherDigest));
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            assertThatThrownBy(() -> readAll(store, digest)).isInstanceOf(castore.service.CorruptedDataException.class)
                    .hasMessageContaining("do not make up the blob");
        }
        // The remote is fixed while nothing runs: the next process must ask it, not take the
        // dropped list back from the disk tier.
        remote.lists.put(digest, honest);
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            assertThat(readAll(store, digest)).isEqualTo(data);
        }
        // An empty list for a blob that is not empty is refused and dropped the same way.
        byte[] small = random(FakeRemote.CHUNK / 2, 14);
        B3Digest smallDigest = remote.add(small);
        List<castore.service.ChunkMeta> smallList = remote.lists.get(smallDigest);
        remote.lists.put(smallDigest, List.of());
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            assertThatThrownBy(() -> store.blobs().open(smallDigest)).isInstanceOf(castore.service.CorruptedDataException.class);
        }
        remote.lists.put(smallDigest, smallList);
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            assertThat(readAll(store, smallDigest)).isEqualTo(small);
        }
    }

    /**
     * A list whose wrong sizes show only when the chunks are fetched (the remote refuses a chunk
     * of another size than asked for): the read fails, and the list is not kept, so the blob reads
     * once the remote lists it right, in this process and the next.
     */
    @Test
    void aListWhoseChunkFetchFailsAsCorruptedIsNotKept() throws IOException {
        int c = FakeRemote.CHUNK;
        byte[] data = random(3 * c, 44);
        B3Digest digest = remote.add(data);
        List<castore.service.ChunkMeta> honest = remote.lists.get(digest);
        List<castore.service.ChunkMeta> lie = List.of(honest.get(0), new castore.service.ChunkMeta(honest.get(1).digest(), c + 5),
                new castore.service.ChunkMeta(honest.get(2).digest(), c - 5));
        remote.lists.put(digest, lie);
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            assertThatThrownBy(() -> readAll(store, digest)).isInstanceOf(castore.service.CorruptedDataException.class);
            remote.lists.put(digest, honest);
            assertThat(readAll(store, digest)).isEqualTo(data);
        }
        remote.lists.put(digest, lie);
        Path other = dir.resolve("other");
        try (Store store = cached(config(other, 1L << 30, 0))) {
            assertThatThrownBy(() -> readAll(store, digest)).isInstanceOf(castore.service.CorruptedDataException.class);
        }
        remote.lists.put(digest, honest);
        try (Store store = cached(config(other, 1L << 30, 0))) {
            assertThat(readAll(store, digest)).isEqualTo(data);
        }
        // A lone chunk that is the blob, listed with another size: "bound" by its digest, still not kept.
        byte[] small = random(c / 2, 45);
        B3Digest smallDigest = remote.add(small);
        remote.lists.put(smallDigest, List.of(new castore.service.ChunkMeta(smallDigest, c / 2 + 5)));
        try (Store store = cached(config(dir.resolve("small"), 1L << 30, 0))) {
            assertThatThrownBy(() -> readAll(store, smallDigest)).isInstanceOf(castore.service.CorruptedDataException.class);
            remote.lists.put(smallDigest, List.of(new castore.service.ChunkMeta(smallDigest, c / 2)));
            assertThat(readAll(store, smallDigest)).isEqualTo(small);
        }
    }

    /** Every read of the blob either fails as corrupted or gives its true bytes; none hangs. */
    private static void neverWrongBytes(Store store, B3Digest digest, byte[] data, long... positions) {
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
            try (BlobReader r = store.blobs().open(digest).orElseThrow()) {
                for (long p : positions) {
                    ByteBuffer got = ByteBuffer.allocate(10);
                    try {
                        int n = r.read(p, got);
                        assertThat(Arrays.copyOf(got.array(), n)).as("at %d", p)
                                .isEqualTo(Arrays.copyOfRange(data, (int) p, (int) p + n));
                    } catch (castore.service.CorruptedDataException refused) {
                        assertThat(refused).hasMessageContaining("wrong chunk list");
                    }
                }
            } catch (castore.service.CorruptedDataException refusedAtOpen) {
                assertThat(refusedAtOpen).hasMessageContaining("wrong chunk list");
            }
        });
    }

    @Test
    void aChunkListedWithAnotherSizeThanItsOwnIsRefusedNotServedAtAnotherPlace() throws IOException {
        // x three times: a list that gives its three places sizes C, C+5 and C-5 adds up, and the
        // chunks, hashed as they are, make up the blob: only the sizes betray it.
        int c = FakeRemote.CHUNK;
        byte[] x = random(c, 40);
        byte[] data = new byte[3 * c];
        for (int i = 0; i < 3; i++) {
            System.arraycopy(x, 0, data, i * c, c);
        }
        B3Digest digest = remote.add(data);
        List<castore.service.ChunkMeta> honest = remote.lists.get(digest);
        B3Digest chunk = honest.getFirst().digest();
        List<castore.service.ChunkMeta> lie = List.of(new castore.service.ChunkMeta(chunk, c),
                new castore.service.ChunkMeta(chunk, c + 5), new castore.service.ChunkMeta(chunk, c - 5));
        for (long readAhead : new long[] {0, 8L * c}) {
            remote.lists.put(digest, lie);
            try (Store store = cached(config(dir.resolve("repeat-" + readAhead), 1L << 30, readAhead))) {
                // Refused at open, whatever reads race: one digest, two sizes.
                assertThatThrownBy(() -> store.blobs().open(digest)).isInstanceOf(castore.service.CorruptedDataException.class)
                        .hasMessageContaining("gives chunk " + chunk + " two sizes, " + c + " and " + (c + 5) + " bytes (wrong chunk list)");
                neverWrongBytes(store, digest, data, 0, c, c + 3, 2L * c, 2L * c + 5, 3L * c - 1);
                assertThatThrownBy(() -> readAll(store, digest)).isInstanceOf(castore.service.CorruptedDataException.class);
                assertThat(((CachingBlobService) store.blobs()).knownBound(digest)).as("read-ahead %d", readAhead).isFalse();
                remote.lists.put(digest, honest); // the wrong list was dropped: the next open asks again
                assertThat(readAll(store, digest)).isEqualTo(data);
            }
        }
        // Chunks cached for another blob, listed with sizes not their own (one 5 bytes short, the next 5 over).
        byte[] a = random(c, 41);
        byte[] b = random(c, 42);
        byte[] z = random(c, 43);
        B3Digest ab = remote.add(concat(a, b));
        byte[] abz = concat(concat(a, b), z);
        B3Digest digestAbz = remote.add(abz);
        List<castore.service.ChunkMeta> listed = remote.lists.get(digestAbz);
        remote.lists.put(digestAbz, List.of(new castore.service.ChunkMeta(listed.get(0).digest(), c - 5),
                new castore.service.ChunkMeta(listed.get(1).digest(), c + 5), listed.get(2)));
        try (Store store = cached(config(dir.resolve("shifted"), 1L << 30, 0))) {
            assertThat(readAll(store, ab)).isEqualTo(concat(a, b));
            neverWrongBytes(store, digestAbz, abz, 0, c - 5, c - 1, c, 2L * c, 3L * c - 1);
            assertThat(((CachingBlobService) store.blobs()).knownBound(digestAbz)).isFalse();
        }
    }

    private static byte[] concat(byte[] first, byte[] second) {
        byte[] out = Arrays.copyOf(first, first.length + second.length);
        System.arraycopy(second, 0, out, first.length, second.length);
        return out;
    }

    @Test
    void anEmptyChunkListForABlobThatIsNotEmptyIsRefused() throws IOException {
        byte[] data = random(3 * FakeRemote.CHUNK, 44);
        B3Digest digest = remote.add(data);
        List<castore.service.ChunkMeta> honest = remote.lists.get(digest);
        remote.lists.put(digest, List.of());
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            assertThatThrownBy(() -> readAll(store, digest)).isInstanceOf(castore.service.CorruptedDataException.class)
                    .hasMessageContaining("wrong chunk list");
            remote.lists.put(digest, honest);
            assertThat(readAll(store, digest)).isEqualTo(data);
        }
    }

    @Test
    void aBoundMarkVouchesForTheListThatWasCheckedNotForAnotherGivenLater() throws IOException {
        byte[] data = random(3 * FakeRemote.CHUNK, 45);
        byte[] other = random(3 * FakeRemote.CHUNK, 46);
        B3Digest digest = remote.add(data);
        B3Digest otherDigest = remote.add(other);
        // Memory only, tiers so small that one 3-chunk list and one mark fit: the list leaves
        // the cache, its mark stays.
        try (Store store = cached(new CacheConfig(Optional.empty(), 1L << 30, 6400, 4, 0))) {
            CachingBlobService blobs = (CachingBlobService) store.blobs();
            assertThat(readAll(store, digest)).isEqualTo(data);
            assertThat(blobs.knownBound(digest)).isTrue();
            blobs.chunks(otherDigest); // its list takes the place of the first one's
            remote.lists.put(digest, remote.lists.get(otherDigest)); // every chunk verifies, the blob does not
            assertThatThrownBy(() -> readAll(store, digest)).isInstanceOf(castore.service.CorruptedDataException.class)
                    .hasMessageContaining("do not make up the blob");
        }
    }

    @Test
    void aFetchThatOutlivesTheStoreWritesNothingToItsDiskTier() throws Exception {
        byte[] data = random(40_000, 47); // one chunk: fetched whole, ahead of its read
        B3Digest digest = remote.add(data);
        CountDownLatch hold = new CountDownLatch(1);
        remote.holds.put(digest, hold);
        remote.holdsIgnoreInterrupts = true; // as a network call may, for a while
        Path segments;
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            store.blobs().willRead(digest, data.length);
            eventually(() -> remote.atHold.get() == 1);
            segments = dir.resolve("segments");
        } // waits a while for the fetch, then closes the disk tier under it
        Set<Path> before;
        try (var files = Files.list(segments)) {
            before = files.collect(java.util.stream.Collectors.toSet());
        }
        hold.countDown();
        eventually(() -> remote.atHold.get() == 0);
        Thread.sleep(200); // the fetch's store step, had it any
        try (var files = Files.list(segments)) {
            assertThat(files.collect(java.util.stream.Collectors.toSet())).as("no segment started after close").isEqualTo(before);
        }
        // Reads and hints after close fail or do nothing; none hangs or throws unchecked.
        Store closed = cached(config(dir.resolve("closed"), 1L << 30, 8L * FakeRemote.CHUNK));
        byte[] big = random(12 * FakeRemote.CHUNK, 48);
        B3Digest bigDigest = remote.add(big);
        BlobReader r = closed.blobs().open(bigDigest).orElseThrow();
        closed.close();
        closed.blobs().willRead(digest, data.length);
        ((CachingBlobService) closed.blobs()).prefetch(bigDigest, 0, big.length);
        assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
            try {
                r.read(0, ByteBuffer.allocate(10));
            } catch (IOException expected) {
                // the cache is closed
            }
        });
    }

    @Test
    void aChunkThatRepeatsInABlobIsFetchedOnceAndEveryPlaceOfItIsChecked() throws IOException {
        // A run of zeros: one 64 KiB chunk listed 40 times between two chunks of data.
        byte[] data = new byte[42 * FakeRemote.CHUNK];
        System.arraycopy(random(FakeRemote.CHUNK, 13), 0, data, 0, FakeRemote.CHUNK);
        System.arraycopy(random(FakeRemote.CHUNK, 14), 0, data, 41 * FakeRemote.CHUNK, FakeRemote.CHUNK);
        B3Digest digest = remote.add(data);
        for (long readAhead : new long[] {0, 8L * FakeRemote.CHUNK}) {
            remote.chunkReads.set(0);
            try (Store store = cached(config(dir.resolve("cache-" + readAhead), 1L << 30, readAhead))) {
                assertThat(readAll(store, digest)).isEqualTo(data);
                assertThat(remote.chunkReads).as("read-ahead %d", readAhead).hasValue(3);
                assertThat(((CachingBlobService) store.blobs()).knownBound(digest)).as("the check took every place").isTrue();
            }
        }
        // A list of valid chunks that repeat but do not make up the blob is still refused.
        byte[] other = data.clone();
        other[20 * FakeRemote.CHUNK] = 1; // one place differs: its chunk is valid, and the list with it is a lie
        B3Digest otherDigest = remote.add(other);
        List<castore.service.ChunkMeta> lie = new ArrayList<>(remote.lists.get(digest));
        lie.set(20, remote.lists.get(otherDigest).get(20));
        remote.lists.put(digest, lie);
        try (Store store = cached(config(dir.resolve("cache-lie"), 1L << 30, 0))) {
            assertThatThrownBy(() -> readAll(store, digest)).isInstanceOf(castore.service.CorruptedDataException.class)
                    .hasMessageContaining("do not make up the blob");
        }
    }

    @Test
    void aChunkListCheckedOnceIsRememberedAcrossRestarts() throws IOException {
        byte[] data = random(4 * FakeRemote.CHUNK + 1, 12);
        B3Digest digest = remote.add(data);
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            try (BlobReader r = store.blobs().open(digest).orElseThrow()) {
                r.read(FakeRemote.CHUNK, ByteBuffer.allocate(10)); // out of order: nothing to check yet
            }
            assertThat(((CachingBlobService) store.blobs()).knownBound(digest)).isFalse();
            assertThat(readAll(store, digest)).isEqualTo(data);
            assertThat(((CachingBlobService) store.blobs()).knownBound(digest)).isTrue();
        }
        remote.offline = true;
        try (Store store = cached(config(dir, 1L << 30, 0))) {
            assertThat(((CachingBlobService) store.blobs()).knownBound(digest)).isTrue();
            assertThat(readAll(store, digest)).isEqualTo(data);
        }
    }

    /** Reads chunks {@code from} until {@code to} (exclusive) of a blob of CHUNK-sized chunks through one reader, checking the bytes. */
    private static void readChunks(Store store, B3Digest digest, byte[] data, int from, int to) throws IOException {
        try (BlobReader r = store.blobs().open(digest).orElseThrow()) {
            for (int i = from; i < to; i++) {
                ByteBuffer b = ByteBuffer.allocate(FakeRemote.CHUNK);
                assertThat(r.read((long) i * FakeRemote.CHUNK, b)).isEqualTo(FakeRemote.CHUNK);
                assertThat(b.array()).isEqualTo(Arrays.copyOfRange(data, i * FakeRemote.CHUNK, (i + 1) * FakeRemote.CHUNK));
            }
        }
    }

    private static void awaitBound(CachingBlobService blobs, B3Digest digest) throws IOException, InterruptedException {
        for (int i = 0; i < 3000 && !blobs.knownBound(digest); i++) { // 30 s: the check runs in the background
            Thread.sleep(10);
        }
    }

    @Test
    void aListReadOutOfOrderIsCheckedWithTheChunksOnDisk() throws Exception {
        byte[] data = random(20 * FakeRemote.CHUNK, 30);
        B3Digest digest = remote.add(data);
        try (Store store = cached(new CacheConfig(Optional.of(dir), 1L << 30, 4L * FakeRemote.CHUNK, 4, 0))) {
            CachingBlobService blobs = (CachingBlobService) store.blobs();
            readChunks(store, digest, data, 10, 20); // the second half first, by a reader that then closes
            assertThat(blobs.knownBound(digest)).isFalse();
            readChunks(store, digest, data, 0, 10);  // the check reaches chunk 10, which is only on disk
            awaitBound(blobs, digest);
            assertThat(blobs.knownBound(digest)).as("checked with the second half read back from disk").isTrue();
            assertThat(remote.chunkReads).as("nothing fetched twice").hasValue(20);
        }
    }

    @Test
    void aCheckUnderWayWhenTheStoreClosesIsFinishedAndKept() throws Exception {
        byte[] data = random(64 * FakeRemote.CHUNK, 33);
        B3Digest digest = remote.add(data);
        CacheConfig config = new CacheConfig(Optional.of(dir), 1L << 30, 4L * FakeRemote.CHUNK, 4, 0);
        try (Store store = cached(config)) {
            readChunks(store, digest, data, 1, 64);
            readChunks(store, digest, data, 0, 1); // the check starts, the rest is on disk: closing at once
        }
        remote.offline = true;
        try (Store store = cached(config)) {
            assertThat(((CachingBlobService) store.blobs()).knownBound(digest)).as("the check was finished at close").isTrue();
        }
    }

    @Test
    void aWrongListReadOutOfOrderIsCaughtWithTheChunksOnDisk() throws Exception {
        byte[] data = random(20 * FakeRemote.CHUNK, 31);
        byte[] other = random(20 * FakeRemote.CHUNK, 32);
        B3Digest digest = remote.add(data);
        B3Digest otherDigest = remote.add(other);
        remote.lists.put(digest, remote.lists.get(otherDigest)); // every chunk verifies, the blob does not
        try (Store store = cached(new CacheConfig(Optional.of(dir), 1L << 30, 4L * FakeRemote.CHUNK, 4, 0));
                BlobReader r = store.blobs().open(digest).orElseThrow()) {
            readChunks(store, digest, other, 10, 20);
            // The first half through a reader that stays open: the check ends on disk, in the
            // background, and from then on (maybe before this loop ends) every read fails.
            boolean caught = false;
            for (int i = 0; i < 3010 && !caught; i++) { // up to 30 s for the background check
                try {
                    r.read((long) Math.min(i, 9) * FakeRemote.CHUNK, ByteBuffer.allocate(10));
                    if (i >= 10) {
                        Thread.sleep(10);
                    }
                } catch (castore.service.CorruptedDataException e) {
                    assertThat(e).hasMessageContaining("do not make up the blob");
                    caught = true;
                }
            }
            assertThat(caught).as("the reader fails once the check found the list wrong").isTrue();
            assertThat(((CachingBlobService) store.blobs()).knownBound(digest)).isFalse();
        }
    }

    @Test
    void readsAcrossChunkBoundariesWithReadAheadReturnExactBytes() throws IOException {
        byte[] data = random(12 * FakeRemote.CHUNK + 333, 13);
        B3Digest digest = remote.add(data);
        try (Store store = cached(config(dir, 1L << 30, 3L * FakeRemote.CHUNK));
                BlobReader r = store.blobs().open(digest).orElseThrow()) {
            for (long boundary = FakeRemote.CHUNK; boundary < data.length; boundary += FakeRemote.CHUNK) {
                for (long at : new long[] {boundary - 1, boundary - 100, boundary}) {
                    ByteBuffer b = ByteBuffer.allocate(300);
                    int n = r.read(at, b);
                    int expected = (int) Math.min(300, data.length - at);
                    assertThat(n).isEqualTo(expected);
                    assertThat(Arrays.copyOf(b.array(), n)).isEqualTo(Arrays.copyOfRange(data, (int) at, (int) at + n));
                }
            }
        }
    }

    @Test
    void localStoresAreNotWrappedRemoteOnesAre() throws IOException {
        Store plain = new Store(remote.blobs, remote.directories, new MemoryRootService());
        assertThat(StoreCache.apply(plain, List.of("memory://"), Optional.empty(), 1 << 20)).isSameAs(plain);
        assertThat(StoreCache.apply(plain, List.of("/some/dir"), Optional.empty(), 1 << 20)).isSameAs(plain);
        Store remoteStore = StoreCache.apply(plain, List.of("s3://bucket/p?endpoint=http://127.0.0.1:1"), Optional.empty(), 1 << 20);
        assertThat(remoteStore.blobs()).isInstanceOf(CachingBlobService.class);
        assertThat(StoreCache.configOf(remoteStore).orElseThrow().directory()).isEmpty();
        Store onDisk = StoreCache.apply(plain, List.of("memory://"), Optional.of(dir), 1 << 20);
        assertThat(onDisk.directories()).isInstanceOf(CachingDirectoryService.class);
        assertThat(Prefetcher.forStore(plain)).isSameAs(Prefetcher.NONE);
    }

    /** What a mount's warm-up serves its synthetic tree through: a cache like the mount's, over another store, in another directory. */
    @Test
    void aScratchCacheIsLikeItsCacheInItsOwnDirectoryOverTheStoreGiven() throws IOException {
        Store plain = new Store(remote.blobs, remote.directories, new MemoryRootService());
        Store scratch = new Store(new castore.service.memory.MemoryBlobService(), new castore.service.memory.MemoryDirectoryService(),
                new MemoryRootService());
        Path own = Files.createDirectories(dir.resolve("scratch"));
        try (Store mounted = StoreCache.wrap(plain, CacheConfig.onDisk(dir.resolve("mounted"), 1L << 30).withDirectReads(true));
                Store layered = Store.layeredLike(mounted.scratchLayers(), scratch, own)) {
            CacheConfig config = StoreCache.configOf(layered).orElseThrow();
            assertThat(config.directory()).hasValueSatisfying(d -> assertThat(d).startsWith(own));
            assertThat(config.directReads()).as("through the page cache").isFalse();
            assertThat(config.memoryLimit()).isEqualTo(StoreCache.SCRATCH_MEMORY_LIMIT);
            assertThat(((CachingDirectoryService) layered.directories()).inner()).isSameAs(scratch.directories());
            Directory d = Directory.builder().add("f", new FileNode(Blake3.digest(new byte[] {1}), 1, false)).build();
            layered.directories().put(d);
            assertThat(layered.directories().get(d.digest())).contains(d);
            assertThat(scratch.directories().get(d.digest())).as("written through to the scratch store").contains(d);
        }
        try (Store memoryOnly = StoreCache.wrap(plain, CacheConfig.memoryOnly());
                Store layered = Store.layeredLike(memoryOnly.scratchLayers(), scratch, own)) {
            assertThat(StoreCache.configOf(layered).orElseThrow().directory()).as("memory only, as the mount's").isEmpty();
        }
        assertThat(Store.layeredLike(List.of(), scratch, own)).as("no layers: the scratch store itself").isSameAs(scratch);
    }

    @Test
    void sizesParse() {
        assertThat(CacheConfig.parseSize("10G")).isEqualTo(10L << 30);
        assertThat(CacheConfig.parseSize("512MiB")).isEqualTo(512L << 20);
        assertThat(CacheConfig.parseSize("4096")).isEqualTo(4096);
        assertThat(CacheConfig.parseSize("1t")).isEqualTo(1L << 40);
        for (String bad : List.of("", "G", "-1G", "ten", "0", "99999999999T")) {
            assertThatThrownBy(() -> CacheConfig.parseSize(bad)).isInstanceOf(InvalidDataException.class).hasMessageContaining("invalid size");
        }
    }
}

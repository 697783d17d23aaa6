package castore.store.local;

import static castore.service.BlobServiceContract.assertRange;
import static castore.service.BlobServiceContract.randomBytes;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.InvalidDataException;
import castore.model.Name;
import castore.model.Node;
import castore.service.BlobReader;
import castore.service.BlobWriter;
import castore.service.ChunkMeta;
import castore.service.CorruptedDataException;
import castore.service.Store;
import castore.service.StoreBusyException;
import castore.service.StoreMaintenance;
import castore.service.StoreOptions;
import castore.service.Stores;
import java.io.Closeable;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LocalStoreTest {
    @TempDir
    Path tmp;

    private Path dir() {
        return tmp.resolve("store");
    }

    private LocalStore open() throws IOException {
        return LocalStore.open(dir(), LocalStore.Options.defaults());
    }

    /** Sequential readers read through the page cache, as on a file system without O_DIRECT (DirectStreamTest covers the other way). */
    private LocalStore openBuffered() throws IOException {
        return LocalStore.open(dir(), LocalStore.Options.defaults().withDirectReads(false));
    }

    /** Stores {@code blobs} and {@code dir}, and points root {@code name} at it (a commit: the next writes go to new packs). */
    private static void putTree(Store store, String name, Directory dir, byte[]... blobs) throws IOException {
        for (byte[] blob : blobs) {
            put(store, blob);
        }
        store.directories().put(dir);
        store.roots().put(Name.of(name), dir.toNode());
    }

    static B3Digest put(Store store, byte[] data) throws IOException {
        try (BlobWriter w = store.blobs().create()) {
            w.write(data, 0, data.length);
            return w.finish();
        }
    }

    static byte[] read(Store store, B3Digest digest) throws IOException {
        try (BlobReader r = store.blobs().open(digest).orElseThrow()) {
            return r.inputStream(0).readAllBytes();
        }
    }

    private static List<Node.NamedNode> list(Store store) throws IOException {
        try (Stream<Node.NamedNode> s = store.roots().list()) {
            return s.toList();
        }
    }

    /** Flips one byte of a file (packs are created read-only, so open it as root/owner anyway). */
    static void flipByte(Path file, long offset) throws IOException {
        file.toFile().setWritable(true);
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.seek(offset);
            int b = f.read();
            f.seek(offset);
            f.write(b ^ 0x40);
        }
    }

    private static List<Path> files(Path dir, String glob) throws IOException {
        List<Path> out = new ArrayList<>();
        try (var s = Files.newDirectoryStream(dir, glob)) {
            s.forEach(out::add);
        }
        return out;
    }

    @Test
    void chunkBoundariesDoNotDependOnHowTheBlobIsWritten() throws IOException {
        byte[] data = randomBytes(6, 5 * 1024 * 1024 + 777);
        // FastCDC over the whole blob at once, as the crate (and tvix) cut it.
        List<Integer> expected = new ArrayList<>();
        for (int at = 0; at < data.length; ) {
            int cut = castore.chunk.FastCdc.TVIX.cut(data, at, Math.min(castore.chunk.FastCdc.TVIX.maxSize(), data.length - at));
            expected.add(cut);
            at += cut;
        }
        // One big write (chunks cut from the caller's array), small writes (through the buffer), and a mix.
        int[][] patterns = {{data.length}, {4096}, {1_000_000, 17, 3 << 20}, {524_288, 1}};
        try (LocalStore local = open(); Store store = local.asStore()) {
            for (int[] pattern : patterns) {
                B3Digest d;
                try (BlobWriter w = store.blobs().create()) {
                    int at = 0;
                    for (int i = 0; at < data.length; i++) {
                        int n = Math.min(pattern[i % pattern.length], data.length - at);
                        w.write(data, at, n);
                        at += n;
                    }
                    d = w.finish();
                }
                assertThat(d).isEqualTo(Blake3.digest(data));
                assertThat(store.blobs().chunks(d).orElseThrow().stream().map(c -> (int) c.size()).toList())
                        .as("chunk sizes for writes of %s", java.util.Arrays.toString(pattern)).isEqualTo(expected);
                assertThat(read(store, d)).isEqualTo(data);
            }
        }
    }

    @Test
    void interleavedSequentialReadersOfOneBlobEachGetTheirNextChunksAnnounced() throws IOException {
        byte[] data = randomBytes(11, 12 * 1024 * 1024);
        try (LocalStore local = openBuffered(); Store store = local.asStore()) {
            B3Digest d = put(store, data);
            List<ChunkMeta> chunks = store.blobs().chunks(d).orElseThrow();
            assertThat(chunks.size()).isGreaterThan(30);
            // Two readers, one from the start and one from the middle, a chunk at a time in turn:
            // each continues its own stream, which a single "last miss" would see as random.
            try (var reader = (LocalBlobReader) store.blobs().open(d).orElseThrow()) {
                int half = chunks.size() / 2;
                long[] starts = new long[chunks.size()];
                for (int i = 1; i < starts.length; i++) {
                    starts[i] = starts[i - 1] + chunks.get(i - 1).size();
                }
                int[] next = {0, half};
                for (int i = 0; i < 6; i++) {
                    for (int stream = 0; stream < 2; stream++) {
                        int index = next[stream]++;
                        int size = (int) chunks.get(index).size();
                        long[] at = {starts[index], starts[index]};
                        ByteBuffer dst = ByteBuffer.allocate(size);
                        assertThat(reader.read(at[stream], dst)).isEqualTo(size);
                        assertThat(java.util.Arrays.equals(dst.array(), 0, size, data, (int) at[stream], (int) at[stream] + size)).isTrue();
                    }
                }
                // Each stream announces AHEAD chunks on its second miss, and more as it goes.
                assertThat(reader.announcedChunks()).isGreaterThanOrEqualTo(2 * LocalBlobReader.AHEAD);
                assertThat(reader.readsAhead()).isTrue();
            }
        }
    }

    @Test
    void parallelStreamsAndRandomReadsOfOneReaderReturnExactBytesAndStreamsLoadEachChunkOnce() throws Exception {
        byte[] data = randomBytes(13, 24 * 1024 * 1024);
        try (LocalStore local = openBuffered(); Store store = local.asStore()) {
            B3Digest d = put(store, data);
            int chunkCount = store.blobs().chunks(d).orElseThrow().size();
            // One sequential reader alone: every chunk loaded once (into reused buffers after the first).
            try (var reader = (LocalBlobReader) store.blobs().open(d).orElseThrow()) {
                ByteBuffer dst = ByteBuffer.allocate(4096);
                for (int at = 0; at < data.length; at += 4096) {
                    dst.clear();
                    reader.read(at, dst);
                    assertThat(java.util.Arrays.equals(dst.array(), 0, 4096, data, at, at + 4096)).as("at %d", at).isTrue();
                }
                assertThat(reader.loadedChunks()).isEqualTo(chunkCount);
                assertThat(reader.hasStreamSlots()).isTrue();
            }
            // A blob of a few chunks read the same way gets no reused buffers (they would only cost).
            B3Digest small = put(store, java.util.Arrays.copyOf(data, 2 * 1024 * 1024));
            try (var reader = (LocalBlobReader) store.blobs().open(small).orElseThrow()) {
                ByteBuffer dst = ByteBuffer.allocate(65536);
                for (int at = 0; at < 2 * 1024 * 1024; at += 65536) {
                    dst.clear();
                    reader.read(at, dst);
                    assertThat(java.util.Arrays.equals(dst.array(), 0, 65536, data, at, at + 65536)).isTrue();
                }
                assertThat(reader.loadedChunks()).isEqualTo(store.blobs().chunks(small).orElseThrow().size());
                assertThat(reader.hasStreamSlots()).isFalse();
            }
            // Four streams over quarters and two random readers at once, on one reader: reused
            // buffers are overwritten while others copy, which must never show.
            try (var reader = (LocalBlobReader) store.blobs().open(d).orElseThrow();
                    var pool = java.util.concurrent.Executors.newFixedThreadPool(6)) {
                List<java.util.concurrent.Future<Void>> jobs = new ArrayList<>();
                int quarter = data.length / 4;
                for (int t = 0; t < 6; t++) {
                    int thread = t;
                    jobs.add(pool.submit(() -> {
                        var random = new java.util.SplittableRandom(thread);
                        int at = thread < 4 ? thread * quarter : 0;
                        for (int i = 0; i < 400; i++) {
                            int size = random.nextInt(1, 131_073);
                            if (thread >= 4) {
                                at = random.nextInt(data.length);
                            } else if (at >= (thread + 1) * quarter) {
                                break;
                            }
                            ByteBuffer dst = ByteBuffer.allocate(size);
                            int n = reader.read(at, dst);
                            int expected = Math.min(size, data.length - at);
                            assertThat(n).isEqualTo(expected);
                            assertThat(java.util.Arrays.equals(dst.array(), 0, n, data, at, at + n))
                                    .as("thread %d at %d+%d", thread, at, n).isTrue();
                            at += n;
                        }
                        return null;
                    }));
                }
                for (var job : jobs) {
                    job.get();
                }
            }
        }
    }

    @Test
    void concurrentReadsOfOneChunkLoadItOnce() throws Exception {
        byte[] data = randomBytes(12, 4 * 1024 * 1024);
        try (LocalStore local = open(); Store store = local.asStore()) {
            B3Digest d = put(store, data);
            long second = store.blobs().chunks(d).orElseThrow().getFirst().size();
            for (int round = 0; round < 5; round++) {
                try (var reader = (LocalBlobReader) store.blobs().open(d).orElseThrow();
                        var pool = java.util.concurrent.Executors.newFixedThreadPool(8)) {
                    var start = new java.util.concurrent.CyclicBarrier(8);
                    List<java.util.concurrent.Future<byte[]>> reads = new ArrayList<>();
                    for (int t = 0; t < 8; t++) {
                        long at = second + t * 4096L; // all inside the second chunk
                        reads.add(pool.submit(() -> {
                            start.await();
                            ByteBuffer dst = ByteBuffer.allocate(4096);
                            reader.read(at, dst);
                            return dst.array();
                        }));
                    }
                    for (int t = 0; t < 8; t++) {
                        int at = (int) second + t * 4096;
                        assertThat(reads.get(t).get()).isEqualTo(java.util.Arrays.copyOfRange(data, at, at + 4096));
                    }
                    assertThat(reader.loadedChunks()).isEqualTo(1);
                }
            }
        }
    }

    @Test
    void chunksOfZerosAreNamedByTheirDigestsAndStoredOnce() throws IOException {
        // Zeros (a hole), data, zeros with one stray byte, zeros to an odd end.
        byte[] data = new byte[(9 << 20) + 5];
        System.arraycopy(randomBytes(3, 1 << 20), 0, data, 3 << 20, 1 << 20);
        data[(6 << 20) + 12345] = 7;
        try (LocalStore local = open(); Store store = local.asStore()) {
            B3Digest d = put(store, data);
            assertThat(d).isEqualTo(Blake3.digest(data));
            List<ChunkMeta> chunks = store.blobs().chunks(d).orElseThrow();
            long at = 0;
            for (ChunkMeta c : chunks) {
                byte[] slice = java.util.Arrays.copyOfRange(data, (int) at, (int) (at + c.size()));
                assertThat(c.digest()).as("chunk at %d", at).isEqualTo(Blake3.digest(slice));
                assertThat(read(store, c.digest())).isEqualTo(slice);
                at += c.size();
            }
            assertThat(chunks.stream().map(ChunkMeta::digest).distinct().count()).as("the zero chunks stored once")
                    .isLessThan(chunks.size() - 4);
            assertThat(read(store, d)).isEqualTo(data);
        }
    }

    @Test
    void multiChunkBlobIsStoredAsChunksAndReadsAcrossChunkBoundaries() throws IOException {
        byte[] data = randomBytes(1, 3 * 1024 * 1024 + 4321);
        try (LocalStore local = open(); Store store = local.asStore()) {
            B3Digest d = put(store, data);
            List<ChunkMeta> chunks = store.blobs().chunks(d).orElseThrow();
            assertThat(chunks).hasSizeGreaterThan(2);
            try (BlobReader r = store.blobs().open(d).orElseThrow()) {
                long boundary = 0;
                for (ChunkMeta c : chunks) {
                    assertThat(store.blobs().has(c.digest())).as("a chunk is a blob of its own").isTrue();
                    if (boundary > 0) {
                        assertRange(r, data, boundary - 1, 2);
                        assertRange(r, data, boundary - 4096, 8192);
                    }
                    boundary += c.size();
                }
                // Sequential 4 KiB reads, as a FUSE reader would issue them.
                for (long at = 0; at < data.length; at += 4096) {
                    assertRange(r, data, at, 4096);
                }
            }
        }
    }

    @Test
    void reopeningKeepsBlobsDirectoriesAndRoots() throws IOException {
        byte[] small = "small".getBytes(StandardCharsets.UTF_8);
        byte[] big = randomBytes(2, 1_300_000);
        Directory leaf = Directory.builder().add("small", new castore.model.FileNode(Blake3.digest(small), small.length, false))
                .add("big", new castore.model.FileNode(Blake3.digest(big), big.length, true)).build();
        Directory root = Directory.builder().add("leaf", leaf.toNode()).build();
        Name name = Name.of(new byte[] {'r', (byte) 0xe9, (byte) 0xff});
        try (LocalStore local = open(); Store store = local.asStore()) {
            put(store, small);
            put(store, big);
            store.directories().put(leaf);
            store.directories().put(root);
            store.roots().put(name, root.toNode());
        }
        try (LocalStore local = open(); Store store = local.asStore()) {
            assertThat(read(store, Blake3.digest(small))).isEqualTo(small);
            assertThat(read(store, Blake3.digest(big))).isEqualTo(big);
            assertThat(store.directories().get(root.digest())).contains(root);
            try (var all = store.directories().getRecursive(root.digest())) {
                assertThat(all.toList()).containsExactly(root, leaf);
            }
            assertThat(store.roots().get(name)).contains(root.toNode());
            assertThat(list(store)).containsExactly(new Node.NamedNode(name, root.toNode()));
            assertThat(local.verifyStored(p -> { throw new AssertionError(p); }).objectsChecked()).isGreaterThan(3);
        }
    }

    @Test
    void metadataIsPackedApartFromChunkData() throws IOException {
        byte[] big = randomBytes(5, 1_300_000);
        Directory leaf = Directory.builder().add("big", new castore.model.FileNode(Blake3.digest(big), big.length, false)).build();
        Directory root = Directory.builder().add("leaf", leaf.toNode()).build();
        try (LocalStore local = open(); Store store = local.asStore()) {
            put(store, big); // several chunks and a chunk list
            store.directories().put(leaf);
            store.directories().put(root);
        }
        // A cold walk reads directories from packs of their own, never from between chunk data.
        List<Set<ObjectKind>> kindsPerPack = new ArrayList<>();
        for (Path index : files(dir().resolve("packs"), "*.idx")) {
            Pack pack = Pack.open(index);
            Set<ObjectKind> kinds = java.util.EnumSet.noneOf(ObjectKind.class);
            for (int i = 0; i < pack.count(); i++) {
                kinds.add(pack.entry(i).kind());
            }
            kindsPerPack.add(kinds);
        }
        assertThat(kindsPerPack).containsExactlyInAnyOrder(
                Set.of(ObjectKind.CHUNK), Set.of(ObjectKind.BLOB, ObjectKind.DIRECTORY));
    }

    @Test
    void absentAndEmptyDirectoriesBecomeStores() throws IOException {
        try (LocalStore local = open()) {
            assertThat(dir().resolve(StoreLayout.MARKER)).isRegularFile();
        }
        Path empty = Files.createDirectory(tmp.resolve("empty"));
        try (LocalStore local = LocalStore.open(empty, LocalStore.Options.defaults())) {
            assertThat(empty.resolve(StoreLayout.MARKER)).isRegularFile();
        }
    }

    @Test
    void aDirectoryThatIsNotAStoreIsRefusedAndLeftAlone() throws IOException {
        Path home = Files.createDirectory(tmp.resolve("home"));
        Files.writeString(home.resolve("notes.txt"), "mine");
        assertThatThrownBy(() -> LocalStore.open(home, LocalStore.Options.defaults()))
                .isInstanceOf(InvalidDataException.class)
                .hasMessage(home + " is not a castore store (it is not empty and has no castore-store marker)");
        try (var s = Files.list(home)) {
            assertThat(s.toList()).containsExactly(home.resolve("notes.txt"));
        }
        Path file = Files.writeString(tmp.resolve("file"), "x");
        assertThatThrownBy(() -> LocalStore.open(file, LocalStore.Options.defaults()))
                .isInstanceOf(InvalidDataException.class).hasMessageContaining("is not a castore store");
        Path other = Files.createDirectory(tmp.resolve("other"));
        Files.writeString(other.resolve(StoreLayout.MARKER), "castore local store\nlayout 99\n");
        assertThatThrownBy(() -> LocalStore.open(other, LocalStore.Options.defaults()))
                .isInstanceOf(InvalidDataException.class).hasMessageContaining("layout 99");
    }

    @Test
    void storesOpensPlainPathsFileUrisAndLocalUris() throws IOException {
        byte[] data = "via address".getBytes(StandardCharsets.UTF_8);
        B3Digest d;
        try (Store store = Stores.open(dir().toString(), StoreOptions.DEFAULT)) {
            d = put(store, data);
        }
        try (Store store = Stores.open("local://" + dir(), StoreOptions.DEFAULT)) {
            assertThat(read(store, d)).isEqualTo(data);
        }
        try (Store store = Stores.open(dir().toUri().toString(), StoreOptions.DEFAULT)) {
            assertThat(read(store, d)).isEqualTo(data);
        }
        try (Store store = Stores.open("file://localhost" + dir() + "?fsync=false", StoreOptions.DEFAULT)) {
            assertThat(read(store, d)).isEqualTo(data);
        }
        assertThatThrownBy(() -> Stores.open("local://relative/dir", StoreOptions.DEFAULT))
                .isInstanceOf(InvalidDataException.class).hasMessageContaining("local:///absolute/path");
        // A host is not a directory: file://data/store is not /store.
        assertThatThrownBy(() -> Stores.open("file://somehost" + dir(), StoreOptions.DEFAULT))
                .isInstanceOf(InvalidDataException.class).hasMessageContaining("'somehost' is a host name");
        // Parameters reach the local store, unknown ones refused as with local://.
        assertThatThrownBy(() -> Stores.open(dir().toUri() + "?bogus", StoreOptions.DEFAULT))
                .isInstanceOf(InvalidDataException.class).hasMessageContaining("unknown parameter 'bogus'");
        // A known scheme without "//" is not a relative directory name.
        for (String address : List.of("memory:", "local:" + dir(), "file:" + dir(), "grpc+unix:/run/x.sock")) {
            assertThatThrownBy(() -> Stores.open(address, StoreOptions.DEFAULT)).as(address)
                    .isInstanceOf(InvalidDataException.class).hasMessageContaining("invalid store address '" + address + "': write ");
        }
        assertThatThrownBy(() -> Stores.open("local://" + dir() + "?fsync=maybe", StoreOptions.DEFAULT))
                .isInstanceOf(InvalidDataException.class).hasMessageContaining("unknown parameter 'fsync=maybe'")
                .hasMessageContaining("direct-reads=true|false");
    }

    @Test
    void corruptedChunkIsAnErrorNamingItAndVerifyReportsIt() throws IOException {
        byte[] data = randomBytes(3, 1_000_000);
        byte[] other = randomBytes(4, 5000);
        B3Digest d;
        ChunkMeta second;
        try (LocalStore local = open(); Store store = local.asStore()) {
            d = put(store, data);
            put(store, other);
            second = store.blobs().chunks(d).orElseThrow().get(1);
        }
        // Chunk data and chunk lists sit in different packs: find the one holding the chunk.
        Location l = null;
        for (Path index : files(dir().resolve("packs"), "*.idx")) {
            l = l != null ? l : Pack.open(index).find(PackFormat.Key.of(second.digest()), ObjectKind.CHUNK, second.digest());
        }
        assertThat(l).as("the chunk's pack entry").isNotNull();
        flipByte(((Pack) l.source()).packPath(), l.offset() + 1000);

        try (LocalStore local = open(); Store store = local.asStore(); BlobReader r = store.blobs().open(d).orElseThrow()) {
            assertThatThrownBy(() -> r.inputStream(0).readAllBytes())
                    .isInstanceOf(CorruptedDataException.class)
                    .hasMessageContaining(second.digest().toString());
            // The chunks around it still read, and the corrupted one keeps failing: never wrong bytes.
            long firstSize = store.blobs().chunks(d).orElseThrow().getFirst().size();
            assertRange(r, data, 0, (int) firstSize);
            assertThatThrownBy(() -> r.read(firstSize + 5, ByteBuffer.allocate(10))).isInstanceOf(CorruptedDataException.class);
            assertThat(read(store, Blake3.digest(other))).isEqualTo(other);

            List<String> problems = new ArrayList<>();
            local.verifyStored(problems::add);
            assertThat(problems).hasSize(1);
            assertThat(problems.getFirst()).contains("chunk " + second.digest()).contains("corrupted");
        }
    }

    @Test
    void readsThatTakeWholeChunksGetThemStraightIntoTheirBufferAndACorruptedOneLeavesTheBufferWhereItWas() throws IOException {
        byte[] data = randomBytes(21, 1_000_000);
        byte[] small = randomBytes(22, 3000);
        B3Digest d;
        B3Digest s;
        List<ChunkMeta> chunks;
        try (LocalStore local = open(); Store store = local.asStore()) {
            d = put(store, data);
            s = put(store, small);
            chunks = store.blobs().chunks(d).orElseThrow();
            assertThat(chunks).hasSizeBetween(2, 12); // a short blob: no stream slots, no direct stream
            for (ByteBuffer dst : List.of(ByteBuffer.allocate(data.length), ByteBuffer.allocateDirect(data.length),
                    ByteBuffer.wrap(new byte[data.length + 9]).position(9).slice())) {
                try (var reader = (LocalBlobReader) store.blobs().open(d).orElseThrow()) {
                    assertThat(reader.read(0, dst)).isEqualTo(data.length);
                    byte[] got = new byte[data.length];
                    dst.flip().get(got);
                    assertThat(got).isEqualTo(data);
                    assertThat(reader.loadedChunks()).isEqualTo(chunks.size());
                    assertThat(reader.lendRecentChunk(0, (start, bytes, length) -> { }))
                            .as("no chunk was loaded into a buffer of the reader's").isFalse();
                    // A read that takes part of a chunk still goes through one, which stays for the next read.
                    assertRange(reader, data, chunks.getFirst().size() - 100, 200);
                    assertThat(reader.lendRecentChunk(chunks.getFirst().size(), (start, bytes, length) -> { })).isTrue();
                }
            }
        }
        Location second = null;
        Location smallChunk = null;
        for (Path index : files(dir().resolve("packs"), "*.idx")) {
            Pack pack = Pack.open(index);
            second = second != null ? second : pack.find(PackFormat.Key.of(chunks.get(1).digest()), ObjectKind.CHUNK, chunks.get(1).digest());
            smallChunk = smallChunk != null ? smallChunk : pack.find(PackFormat.Key.of(s), ObjectKind.CHUNK, s);
        }
        flipByte(((Pack) second.source()).packPath(), second.offset() + second.length() - 1);
        flipByte(((Pack) smallChunk.source()).packPath(), smallChunk.offset());

        try (LocalStore local = open(); Store store = local.asStore();
                BlobReader r = store.blobs().open(d).orElseThrow(); BlobReader sr = store.blobs().open(s).orElseThrow()) {
            long at = chunks.getFirst().size();
            ByteBuffer dst = ByteBuffer.allocate((int) chunks.get(1).size());
            assertThatThrownBy(() -> r.read(at, dst)).isInstanceOf(CorruptedDataException.class)
                    .hasMessageContaining(chunks.get(1).digest().toString());
            assertThat(dst.position()).isZero();
            ByteBuffer whole = ByteBuffer.allocate(8192);
            assertThatThrownBy(() -> sr.read(0, whole)).isInstanceOf(CorruptedDataException.class)
                    .hasMessageContaining(s.toString());
            assertThat(whole.position()).isZero();
            // The chunk before still reads whole, and the damaged one keeps failing: never wrong bytes.
            assertRange(r, data, 0, (int) at);
            assertThatThrownBy(() -> r.read(at, ByteBuffer.allocate(dst.capacity()))).isInstanceOf(CorruptedDataException.class);
        }
    }

    @Test
    void corruptedDirectoryIsAnErrorAndVerifyReportsIt() throws IOException {
        Directory d = castore.service.DirectoryServiceContract.leaf("a", "b", "c");
        try (LocalStore local = open(); Store store = local.asStore()) {
            store.directories().put(d);
        }
        Pack pack = Pack.open(files(dir().resolve("packs"), "*.idx").getFirst());
        Location l = pack.find(PackFormat.Key.of(d.digest()), ObjectKind.DIRECTORY, d.digest());
        flipByte(pack.packPath(), l.offset() + 3);
        try (LocalStore local = open(); Store store = local.asStore()) {
            assertThatThrownBy(() -> store.directories().get(d.digest()))
                    .isInstanceOf(CorruptedDataException.class).hasMessageContaining(d.digest().toString());
            List<String> problems = new ArrayList<>();
            local.verifyStored(problems::add);
            assertThat(problems).singleElement().asString().contains("directory " + d.digest());
        }
    }

    @Test
    void damagedIndexIsReportedByVerify() throws IOException {
        try (LocalStore local = open(); Store store = local.asStore()) {
            put(store, randomBytes(5, 100));
        }
        Path index = files(dir().resolve("packs"), "*.idx").getFirst();
        flipByte(index, PackFormat.INDEX_HEADER + PackFormat.FANOUT + 5);
        try (LocalStore local = open()) {
            List<String> problems = new ArrayList<>();
            local.verifyStored(problems::add);
            assertThat(problems).singleElement().asString().contains(Pack.idOf(index)).contains("checksum");
        }
    }

    @Test
    void secondInstanceSeesObjectsAndRootsOnceCommitted() throws IOException {
        byte[] data = randomBytes(6, 700_000);
        Directory dirWithFile = Directory.builder()
                .add("f", new castore.model.FileNode(Blake3.digest(data), data.length, false)).build();
        try (LocalStore writer = open(); Store w = writer.asStore(); LocalStore reader = open(); Store r = reader.asStore()) {
            assertThat(list(r)).isEmpty();
            B3Digest d = put(w, data);
            w.directories().put(dirWithFile);
            assertThat(w.blobs().has(d)).as("a writer sees its own writes at once").isTrue();
            assertThat(w.directories().get(dirWithFile.digest())).contains(dirWithFile);
            assertThat(r.blobs().has(d)).as("not published yet").isFalse();

            w.roots().put(Name.of("new"), dirWithFile.toNode());
            assertThat(r.roots().get(Name.of("new"))).contains(dirWithFile.toNode());
            assertThat(r.directories().get(dirWithFile.digest())).contains(dirWithFile);
            assertThat(read(r, d)).isEqualTo(data);

            w.roots().put(Name.of("new"), Directory.empty().toNode());
            assertThat(r.roots().get(Name.of("new"))).contains(Directory.empty().toNode());
            assertThat(w.roots().remove(Name.of("new"))).isTrue();
            assertThat(list(r)).isEmpty();
        }
    }

    @Test
    void gcKeepsWhatIsReachableAndRemovesTheRest() throws IOException {
        // The blobs share their first 700 kB, so content-defined chunking gives them common chunks.
        byte[] live = randomBytes(7, 1_200_000);
        byte[] dead = live.clone();
        for (int i = 700_000; i < dead.length; i++) {
            dead[i] ^= 0x5a;
        }
        Directory liveDir = Directory.builder().add("live", new castore.model.FileNode(Blake3.digest(live), live.length, false)).build();
        Directory deadDir = Directory.builder().add("dead", new castore.model.FileNode(Blake3.digest(dead), dead.length, false)).build();
        try (LocalStore local = open(); Store store = local.asStore()) {
            putTree(store, "live", liveDir, live);
            putTree(store, "dead", deadDir, dead);
            store.roots().remove(Name.of("dead"));
        }
        StoreMaintenance.SweepResult result;
        try (LocalStore local = open(); Closeable lock = local.exclusive()) {
            result = local.sweep(Set.of(Blake3.digest(live)), Set.of(liveDir.digest()));
        }
        assertThat(result.objectsRemoved()).isGreaterThanOrEqualTo(3); // dead blob list, its own chunks, deadDir
        assertThat(result.bytesFreed()).isGreaterThan(400_000);
        try (LocalStore local = open(); Store store = local.asStore()) {
            assertThat(read(store, Blake3.digest(live))).isEqualTo(live);
            assertThat(store.directories().get(liveDir.digest())).contains(liveDir);
            assertThat(store.blobs().has(Blake3.digest(dead))).isFalse();
            assertThat(store.directories().has(deadDir.digest())).isFalse();
            for (ChunkMeta c : store.blobs().chunks(Blake3.digest(live)).orElseThrow()) {
                assertThat(store.blobs().has(c.digest())).isTrue();
            }
            assertThat(local.verifyStored(p -> { throw new AssertionError(p); }).objectsChecked()).isPositive();
        }
    }

    /** Makes {@code dir} refuse new entries, also to root (chattr +i), or lets it take them again. */
    private static void refuseNewFiles(Path dir, boolean refuse) throws IOException, InterruptedException {
        boolean root = "root".equals(System.getProperty("user.name"));
        ProcessBuilder pb = root ? new ProcessBuilder("chattr", refuse ? "+i" : "-i", dir.toString())
                : new ProcessBuilder("chmod", refuse ? "0555" : "0755", dir.toString());
        assertThat(pb.inheritIO().start().waitFor()).isZero();
    }

    @Test
    void aPackThatFailsToPublishWhenFullIsPublishedByTheNextCommitNotLost() throws Exception {
        byte[] first = randomBytes(63, 600_000);
        byte[] second = randomBytes(64, 900_000);
        B3Digest secondDigest = Blake3.digest(second);
        Path packs = dir().resolve("packs");
        try (LocalStore local = LocalStore.open(dir(), LocalStore.Options.defaults().withPackSize(1 << 20));
                Store store = local.asStore()) {
            put(store, first);
            refuseNewFiles(packs, true); // the pack fills up with the second blob, and its index cannot be written
            try {
                assertThatThrownBy(() -> put(store, second)).isInstanceOf(IOException.class);
            } finally {
                refuseNewFiles(packs, false);
            }
            // Written again: whatever this process counts as stored is published before the root.
            assertThat(put(store, second)).isEqualTo(secondDigest);
            store.roots().put(Name.of("second"), new castore.model.FileNode(secondDigest, second.length, false));
        }
        try (LocalStore local = open(); Store store = local.asStore()) {
            assertThat(read(store, secondDigest)).isEqualTo(second);
            assertThat(local.verifyStored(p -> { throw new AssertionError(p); }).objectsChecked()).isPositive();
        }
    }

    @Test
    void aMetadataPackThatFillsUpIsNotPublishedBeforeTheChunksItNames() throws IOException {
        long packSize = 1 << 20;
        byte[] data = randomBytes(65, 600_000);
        B3Digest blob = Blake3.digest(data);
        int chunks = 0;
        for (int at = 0; at < data.length; chunks++) {
            at += castore.chunk.FastCdc.TVIX.cut(data, at, Math.min(castore.chunk.FastCdc.TVIX.maxSize(), data.length - at));
        }
        assertThat(chunks).as("a blob of several chunks, all in one data pack").isBetween(2, 4);
        long listEntry = PackFormat.ENTRY_HEADER + 8 + 4 + 36L * chunks + 4;
        try (LocalStore local = LocalStore.open(dir(), LocalStore.Options.defaults().withPackSize(packSize));
                Store store = local.asStore()) {
            // Directories fill the metadata pack to just below its roll size, so the blob's chunk
            // list is what fills it up, while the chunks it names sit in a data pack still open.
            long metadata = PackFormat.PACK_HEADER;
            for (int i = 0; ; i++) {
                Directory d = Directory.builder().add(String.format("f%07d", i), new castore.model.FileNode(blob, 1, false)).build();
                long entry = PackFormat.ENTRY_HEADER + d.encode().length;
                assertThat(entry).isLessThanOrEqualTo(listEntry);
                if (metadata + entry >= packSize) {
                    break;
                }
                store.directories().put(d);
                metadata += entry;
            }
            assertThat(files(dir().resolve("packs"), "*.idx")).as("nothing published yet").isEmpty();
            assertThat(put(store, data)).isEqualTo(blob);
            // Another process (a mount, a daemon, or the store after this one is killed) sees what
            // is published now: a chunk list it can see must not name chunks it cannot.
            try (LocalStore other = LocalStore.open(dir(), LocalStore.Options.defaults().withReadOnly(true));
                    Store otherStore = other.asStore()) {
                if (otherStore.blobs().has(blob)) {
                    assertThat(read(otherStore, blob)).isEqualTo(data);
                }
                List<String> problems = new ArrayList<>();
                other.verifyStored(problems::add);
                assertThat(problems).isEmpty();
            }
        }
    }

    @Test
    void verifyReportsADamagedEntryHeaderThatWouldStopGc() throws IOException {
        byte[] small = randomBytes(66, 5_000);
        B3Digest chunk = Blake3.digest(small);
        Directory dir = Directory.builder().add("small", new castore.model.FileNode(chunk, small.length, false)).build();
        try (LocalStore local = open(); Store store = local.asStore()) {
            put(store, small);
            store.directories().put(dir);
        }
        // The pack's own header of each entry (kind, length, digest), which gc's copy checks.
        for (Path index : files(dir().resolve("packs"), "*.idx")) {
            Pack pack = Pack.open(index);
            for (var entry : java.util.Arrays.asList(pack.find(PackFormat.Key.of(chunk), ObjectKind.CHUNK, chunk),
                    pack.find(PackFormat.Key.of(dir.digest()), ObjectKind.DIRECTORY, dir.digest()))) {
                if (entry != null) {
                    flipByte(pack.packPath(), entry.offset() - PackFormat.ENTRY_HEADER + 8);
                }
            }
        }
        try (LocalStore local = open()) {
            List<String> problems = new ArrayList<>();
            local.verifyStored(problems::add);
            assertThat(problems).hasSize(2).anySatisfy(p -> assertThat(p).contains(chunk.toString()))
                    .anySatisfy(p -> assertThat(p).contains(dir.digest().toString()));
        }
        // What verify must have named: gc's copy of the two small packs stops at those headers.
        try (LocalStore local = open(); Closeable lock = local.exclusive()) {
            assertThatThrownBy(() -> local.sweep(Set.of(chunk), Set.of(dir.digest()))).isInstanceOf(IOException.class)
                    .hasMessageContaining("nothing deleted").hasMessageContaining("header");
        }
    }

    @Test
    void gcRemovesADuplicateOfALargePackWhoseEntriesAreAllLive() throws IOException {
        // Two processes importing the same data at once each store it (neither sees the other's
        // open packs): packs too large to be merged, all of whose entries are live.
        byte[] data = randomBytes(67, (int) Sweeper.SMALL_PACK + (1 << 20));
        B3Digest blob = Blake3.digest(data);
        LocalStore.Options options = LocalStore.Options.defaults().withSync(false);
        try (LocalStore local = LocalStore.open(dir(), options); Store store = local.asStore()) {
            put(store, data);
        }
        Path packs = dir().resolve("packs");
        Path large = files(packs, "*.pack").stream().filter(p -> p.toFile().length() > Sweeper.SMALL_PACK).findFirst().orElseThrow();
        String copy = "fffffffffff-0000000000000000";
        Files.copy(large, packs.resolve(copy + ".pack"));
        Files.copy(large.resolveSibling(Pack.idOf(large) + ".idx"), packs.resolve(copy + ".idx"));
        try (LocalStore local = LocalStore.open(dir(), options); Closeable lock = local.exclusive()) {
            StoreMaintenance.SweepResult result = local.sweep(Set.of(blob), Set.of());
            assertThat(result.bytesFreed()).isGreaterThan(Sweeper.SMALL_PACK);
        }
        assertThat(files(packs, "*.pack").stream().filter(p -> p.toFile().length() > Sweeper.SMALL_PACK)).hasSize(1);
        try (LocalStore local = LocalStore.open(dir(), options); Store store = local.asStore()) {
            assertThat(read(store, blob)).isEqualTo(data);
            assertThat(local.verifyStored(p -> { throw new AssertionError(p); }).objectsChecked()).isPositive();
        }
    }

    /** The index of the pack that holds {@code blob}'s chunk list (its data packs hold only chunks). */
    private Path chunkListIndex(B3Digest blob) throws IOException {
        Path listIndex = null;
        for (Path index : files(dir().resolve("packs"), "*.idx")) {
            if (Pack.open(index).find(PackFormat.Key.of(blob), ObjectKind.BLOB, blob) != null) {
                listIndex = index;
            }
        }
        assertThat(listIndex).as("the chunk list's pack").isNotNull();
        return listIndex;
    }

    @Test
    void anIndexWhosePackFileIsGoneIsReportedNotIgnored() throws IOException {
        byte[] data = randomBytes(68, 1_200_000);
        B3Digest blob = Blake3.digest(data);
        try (LocalStore local = open(); Store store = local.asStore()) {
            put(store, data);
        }
        // The metadata pack (the blob's chunk list) lost, its index left: the chunks alone are
        // valid objects, so nothing but the index says what is missing.
        Path listIndex = chunkListIndex(blob);
        Files.delete(listIndex.resolveSibling(Pack.idOf(listIndex) + ".pack"));
        try (LocalStore local = open()) {
            List<String> problems = new ArrayList<>();
            local.verifyStored(problems::add);
            assertThat(problems).singleElement().asString().contains(Pack.idOf(listIndex)).contains("missing");
            try (Closeable lock = local.exclusive()) {
                assertThatThrownBy(() -> local.sweep(Set.of(blob), Set.of())).isInstanceOf(IOException.class)
                        .hasMessageContaining("nothing deleted");
            }
        }
    }

    @Test
    void gcRefusesToSweepPastAPackWhoseIndexCannotBeRead() throws IOException {
        byte[] data = randomBytes(62, 1_200_000);
        B3Digest blob = Blake3.digest(data);
        try (LocalStore local = open(); Store store = local.asStore()) {
            put(store, data);
        }
        Path listIndex = chunkListIndex(blob);
        byte[] intact = Files.readAllBytes(listIndex);
        flipByte(listIndex, intact.length / 2);
        try (LocalStore local = open(); Closeable lock = local.exclusive()) {
            assertThatThrownBy(() -> local.sweep(Set.of(blob), Set.of())).isInstanceOf(IOException.class)
                    .hasMessageContaining("nothing deleted").hasMessageContaining("cannot be read");
        }
        // Nothing was deleted: with the index mended, the blob reads whole.
        listIndex.toFile().setWritable(true);
        Files.write(listIndex, intact);
        try (LocalStore local = open(); Store store = local.asStore()) {
            assertThat(read(store, blob)).isEqualTo(data);
        }
    }

    @Test
    void aStoreOpenedBeforeAGcWritesAgainWhatTheGcRemoved() throws IOException {
        byte[] data = randomBytes(61, 1_200_000);
        B3Digest blob = Blake3.digest(data);
        Directory leaf = Directory.builder().add("f", new castore.model.FileNode(blob, data.length, false)).build();
        try (LocalStore w = open(); Store store = w.asStore()) {
            put(store, data);
            store.directories().put(leaf); // nothing roots either: gc removes both
        }
        try (LocalStore a = open(); Store store = a.asStore()) {
            assertThat(store.blobs().has(blob)).isTrue(); // a reader: it holds no lock, and gc may run
            assertThat(store.directories().has(leaf.digest())).isTrue();
            try (LocalStore g = open(); Closeable lock = g.exclusive()) {
                assertThat(g.sweep(Set.of(), Set.of()).objectsRemoved()).isPositive();
            }
            // The same process writes them again, and roots them: its first write sees the packs as gc left them.
            try (BlobWriter writer = store.blobs().create()) {
                writer.write(data, 0, data.length);
                assertThat(writer.finish()).isEqualTo(blob);
                assertThat(writer.bytesStored()).as("stored again, not taken for present").isPositive();
            }
            store.directories().put(leaf);
            store.roots().put(Name.of("again"), leaf.toNode());
        }
        try (LocalStore local = open(); Store store = local.asStore()) {
            assertThat(read(store, blob)).isEqualTo(data);
            assertThat(store.directories().get(leaf.digest())).contains(leaf);
            assertThat(local.verifyStored(p -> { throw new AssertionError(p); }).objectsChecked()).isPositive();
        }
    }

    @Test
    void gcIsRefusedWhileAWriterIsActiveAndWritersWhileGcRuns() throws IOException {
        try (LocalStore gc = open(); LocalStore importer = open(); Store store = importer.asStore()) {
            try (BlobWriter w = store.blobs().create()) {
                w.write(new byte[] {1}, 0, 1);
                assertThatThrownBy(gc::exclusive).isInstanceOf(StoreBusyException.class).hasMessageContaining("an import is running");
                w.finish();
            }
            // The importer's session lasts until it closes; in this process it cannot hold gc either.
            assertThatThrownBy(gc::exclusive).isInstanceOf(StoreBusyException.class);
            importer.close();
            try (Closeable lock = gc.exclusive(); LocalStore late = open(); Store lateStore = late.asStore()) {
                assertThatThrownBy(() -> lateStore.blobs().create()).isInstanceOf(StoreBusyException.class)
                        .hasMessageContaining("garbage-collected");
                assertThatThrownBy(() -> lateStore.roots().put(Name.of("x"), Directory.empty().toNode()))
                        .isInstanceOf(StoreBusyException.class);
            }
            try (LocalStore after = open(); Store afterStore = after.asStore()) {
                assertThat(read(afterStore, put(afterStore, new byte[] {2}))).containsExactly(2);
            }
        }
    }

    @Test
    void readOnlyStoreRefusesWrites() throws IOException {
        try (LocalStore local = open()) {
            // initialise
        }
        try (LocalStore ro = LocalStore.open(dir(), LocalStore.Options.defaults().withReadOnly(true)); Store store = ro.asStore()) {
            assertThatThrownBy(() -> store.blobs().create()).isInstanceOf(IOException.class).hasMessageContaining("read-only");
            assertThatThrownBy(() -> store.directories().put(Directory.empty())).hasMessageContaining("read-only");
            assertThat(list(store)).isEmpty();
        }
    }

    @Test
    void packsRollAtTheConfiguredSizeAndAllStayReadable() throws IOException {
        List<byte[]> blobs = new ArrayList<>();
        try (LocalStore local = LocalStore.open(dir(), LocalStore.Options.defaults().withPackSize(1 << 20)); Store store = local.asStore()) {
            for (int i = 0; i < 6; i++) {
                blobs.add(randomBytes(10 + i, 700_000));
                put(store, blobs.getLast());
            }
        }
        assertThat(files(dir().resolve("packs"), "*.idx")).hasSizeGreaterThanOrEqualTo(3);
        try (LocalStore local = open(); Store store = local.asStore()) {
            for (byte[] b : blobs) {
                assertThat(read(store, Blake3.digest(b))).isEqualTo(b);
            }
        }
    }

    @Test
    void tornJournalRecordIsIgnoredAndOverwritten() throws IOException {
        try (LocalStore local = open(); Store store = local.asStore()) {
            store.roots().put(Name.of("kept"), Directory.empty().toNode());
        }
        Path journal = dir().resolve("roots").resolve("journal");
        Files.write(journal, new byte[] {40, 0, 0, 0, 1, 2, 3}, java.nio.file.StandardOpenOption.APPEND);
        try (LocalStore local = open(); Store store = local.asStore()) {
            assertThat(list(store)).extracting(Node.NamedNode::name).containsExactly(Name.of("kept"));
            store.roots().put(Name.of("next"), Directory.empty().toNode());
        }
        try (LocalStore local = open(); Store store = local.asStore()) {
            assertThat(list(store)).extracting(Node.NamedNode::name).containsExactly(Name.of("kept"), Name.of("next"));
        }
    }

    /** A journal of two root puts, "first" then "second". */
    private Path journalOfTwoRoots() throws IOException {
        try (LocalStore local = open(); Store store = local.asStore()) {
            store.roots().put(Name.of("first"), Directory.empty().toNode());
            store.roots().put(Name.of("second"), Directory.empty().toNode());
        }
        return dir().resolve("roots").resolve("journal");
    }

    /** The journal's first record reads as damage, never as a torn tail that the next put would cut off. */
    private void assertFirstRecordReportedDamaged(Path journal) throws IOException {
        long size = Files.size(journal);
        try (LocalStore local = open(); Store store = local.asStore()) {
            assertThatThrownBy(() -> store.roots().get(Name.of("second")))
                    .isInstanceOf(CorruptedDataException.class).hasMessageContaining("damaged at offset 16");
            assertThatThrownBy(() -> store.roots().put(Name.of("third"), Directory.empty().toNode()))
                    .isInstanceOf(CorruptedDataException.class);
            List<String> problems = new ArrayList<>();
            local.verifyStored(problems::add);
            assertThat(problems).singleElement().asString().contains("journal");
        }
        assertThat(Files.size(journal)).as("nothing was truncated").isEqualTo(size);
    }

    @Test
    void damageInsideTheJournalIsReportedNotOverwritten() throws IOException {
        Path journal = journalOfTwoRoots();
        flipByte(journal, 16 + 8 + 4); // inside the first record, with the second intact after it
        assertFirstRecordReportedDamaged(journal);
    }

    @Test
    void aRecordLengthDamagedToRunPastTheEndIsDamageNotATornTail() throws IOException {
        Path journal = journalOfTwoRoots();
        flipByte(journal, 16 + 2); // the first record's length, now far past the end of the file
        assertFirstRecordReportedDamaged(journal);
        flipByte(journal, 16 + 2);
        try (RandomAccessFile f = new RandomAccessFile(journal.toFile(), "rw")) {
            f.seek(16 + 3);
            f.write(0xff); // now negative
        }
        assertFirstRecordReportedDamaged(journal);
    }

    @Test
    void rootsSurviveCompactionAndReopenInNameOrder() throws IOException {
        List<Name> names = new ArrayList<>();
        for (int i = 0; i < 300; i++) {
            byte[] suffix = ("r" + i).getBytes(StandardCharsets.US_ASCII);
            byte[] name = new byte[suffix.length + 1];
            name[0] = (byte) (0xff - i % 7);
            System.arraycopy(suffix, 0, name, 1, suffix.length);
            names.add(Name.of(name));
        }
        try (LocalStore local = LocalStore.open(dir(), LocalStore.Options.defaults().withRootCompactRecords(40).withSync(false));
                Store store = local.asStore()) {
            for (Name n : names) {
                store.roots().put(n, Directory.empty().toNode());
            }
        }
        try (LocalStore local = open(); Store store = local.asStore()) {
            assertThat(list(store)).extracting(Node.NamedNode::name).containsExactlyElementsOf(names.stream().sorted().toList());
            for (Name n : names) {
                assertThat(store.roots().get(n)).contains(Directory.empty().toNode());
            }
        }
    }

    /**
     * Compaction runs after a put's record is in the journal: when it fails (a full disk, here
     * a directory in the way of its temporary file) the root is set all the same, so the put
     * must not report a failure (an import said "No space left on device", exit 5, and had
     * re-pointed the name). The next put compacts again.
     */
    @Test
    void aCompactionThatFailsDoesNotFailThePutWhoseRecordIsStored() throws IOException {
        Path obstacle = dir().resolve("roots").resolve("base.tmp");
        try (LocalStore local = LocalStore.open(dir(), LocalStore.Options.defaults().withRootCompactRecords(3).withSync(false));
                Store store = local.asStore()) {
            store.roots().put(Name.of("a"), Directory.empty().toNode());
            store.roots().put(Name.of("b"), Directory.empty().toNode());
            Files.createDirectories(obstacle.resolve("in-the-way"));
            store.roots().put(Name.of("c"), Directory.empty().toNode()); // the third record: compacts
            assertThat(store.roots().get(Name.of("c"))).contains(Directory.empty().toNode());
            assertThat(dir().resolve("roots").resolve("base")).doesNotExist();
            Files.delete(obstacle.resolve("in-the-way"));
            Files.delete(obstacle);
            store.roots().put(Name.of("d"), Directory.empty().toNode());
            assertThat(dir().resolve("roots").resolve("base")).exists();
        }
        try (LocalStore local = open(); Store store = local.asStore()) {
            assertThat(list(store)).extracting(Node.NamedNode::name)
                    .containsExactly(Name.of("a"), Name.of("b"), Name.of("c"), Name.of("d"));
        }
    }

    /**
     * A full disk is when gc is wanted most. gc copied the live entries of every pack it
     * rewrites (and merges small packs) before deleting anything, so on a full disk it failed
     * with ENOSPC and freed nothing, even with whole packs of garbage. A pack with nothing to
     * copy now goes first, which makes the room to copy the rest.
     */
    @Test
    void gcOnAFullDiskDeletesPacksWithNothingLiveFirstAndSucceeds() throws Exception {
        byte[] live = randomBytes(41, 2_500_000);
        byte[] dead = randomBytes(42, 2_500_000);
        Directory liveDir = Directory.builder().add("live", new castore.model.FileNode(Blake3.digest(live), live.length, false)).build();
        Directory deadDir = Directory.builder().add("dead", new castore.model.FileNode(Blake3.digest(dead), dead.length, false)).build();
        try (LocalStore local = open(); Store s = local.asStore()) {
            putTree(s, "live", liveDir, live);
            putTree(s, "dead", deadDir, dead);
            s.roots().remove(Name.of("dead"));
        }
        StoreMaintenance.SweepResult result = sweepACopyOnAFullDisk(400_000, Set.of(Blake3.digest(live)), Set.of(liveDir.digest()),
                (local, s, storeDir) -> {
                    assertThat(read(s, Blake3.digest(live))).isEqualTo(live);
                    assertThat(s.blobs().has(Blake3.digest(dead))).isFalse();
                });
        assertThat(result.bytesFreed()).isGreaterThan(2_000_000);
    }

    /**
     * Merging small packs is optional: on a disk with room for what the packs of garbage freed
     * but not for a copy of the live small packs, gc failed (exit 5) with the write's
     * "No space left on device" after freeing the garbage. It now keeps the small packs as they
     * are and succeeds.
     */
    @Test
    void gcOnADiskTooFullToMergeSmallPacksFreesTheGarbageAndSucceeds() throws Exception {
        byte[] live1 = randomBytes(43, 2_500_000);
        byte[] live2 = randomBytes(44, 2_500_000);
        byte[] dead = randomBytes(45, 1_000_000);
        Directory liveDir = Directory.builder()
                .add("a", new castore.model.FileNode(Blake3.digest(live1), live1.length, false))
                .add("b", new castore.model.FileNode(Blake3.digest(live2), live2.length, false)).build();
        Directory deadDir = Directory.builder().add("dead", new castore.model.FileNode(Blake3.digest(dead), dead.length, false)).build();
        try (LocalStore local = open(); Store s = local.asStore()) {
            put(s, live1);
            s.roots().put(Name.of("one"), Directory.empty().toNode()); // each commit closes the packs: one pack each
            putTree(s, "live", liveDir, live2);
            putTree(s, "dead", deadDir, dead);
            s.roots().remove(Name.of("dead"));
        }
        StoreMaintenance.SweepResult result = sweepACopyOnAFullDisk(0, Set.of(Blake3.digest(live1), Blake3.digest(live2)),
                Set.of(liveDir.digest()), (local, s, storeDir) -> {
                    assertThat(read(s, Blake3.digest(live1))).isEqualTo(live1);
                    assertThat(read(s, Blake3.digest(live2))).isEqualTo(live2);
                    assertThat(s.blobs().has(Blake3.digest(dead))).isFalse();
                    try (Stream<Path> files = Files.list(storeDir.resolve("packs"))) {
                        assertThat(files.map(p -> p.getFileName().toString())).allMatch(n -> n.endsWith(".pack") || n.endsWith(".idx"));
                    }
                });
        assertThat(result.bytesFreed()).isGreaterThan(900_000);
    }

    private interface StoreCheck {
        void check(LocalStore local, Store store, Path storeDir) throws IOException;
    }

    /**
     * Sweeps a copy of the store on an 8 MiB tmpfs filled to within {@code leaveFree} bytes (0:
     * full), then runs {@code check} on it reopened and verifies it. A copy: no descriptor of this
     * JVM's writers is open on it, as after an import by another process.
     */
    private StoreMaintenance.SweepResult sweepACopyOnAFullDisk(long leaveFree, Set<B3Digest> liveBlobs, Set<B3Digest> liveDirectories,
                                                              StoreCheck check) throws Exception {
        Path small = Files.createDirectories(tmp.resolve("small"));
        runCommand("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", small.toString());
        try {
            Path store = small.resolve("store");
            runCommand("cp", "-a", dir().toString(), store.toString());
            try (var out = java.nio.channels.FileChannel.open(small.resolve("filler"), java.nio.file.StandardOpenOption.CREATE_NEW,
                    java.nio.file.StandardOpenOption.WRITE)) {
                while (Files.getFileStore(small).getUsableSpace() > leaveFree) {
                    out.write(ByteBuffer.allocate((int) Math.min(64 << 10, Math.max(4096, Files.getFileStore(small).getUsableSpace() - leaveFree))));
                }
            } catch (IOException full) {
                // the disk is full
            }
            StoreMaintenance.SweepResult result;
            try (LocalStore local = LocalStore.open(store, LocalStore.Options.defaults()); Closeable lock = local.exclusive()) {
                result = local.sweep(liveBlobs, liveDirectories);
            }
            try (LocalStore local = LocalStore.open(store, LocalStore.Options.defaults()); Store s = local.asStore()) {
                check.check(local, s, store);
                assertThat(local.verifyStored(p -> { throw new AssertionError(p); }).objectsChecked()).isPositive();
            }
            return result;
        } finally {
            runCommand("umount", "-l", small.toString());
        }
    }

    /**
     * A file written through a temporary file (the roots journal, the marker) whose write fails
     * leaves no temporary file behind: each put on a full disk left one, named uniquely, that
     * nothing removed.
     */
    @Test
    void aRootPutThatFailsOnAFullDiskLeavesNoTemporaryFile() throws Exception {
        Path small = Files.createDirectories(tmp.resolve("small"));
        runCommand("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small.toString());
        try {
            Path store = small.resolve("store");
            try (LocalStore local = LocalStore.open(store, LocalStore.Options.defaults()); Store s = local.asStore()) {
                Path filler = small.resolve("filler");
                try (var out = java.nio.channels.FileChannel.open(filler, java.nio.file.StandardOpenOption.CREATE_NEW,
                        java.nio.file.StandardOpenOption.WRITE)) {
                    while (true) {
                        out.write(ByteBuffer.allocate(4096));
                    }
                } catch (IOException full) {
                    // the disk is full
                }
                for (int i = 0; i < 3; i++) {
                    assertThatThrownBy(() -> s.roots().put(Name.of("r"), Directory.empty().toNode())).isInstanceOf(IOException.class)
                            .hasMessageContaining(store.resolve("roots").toString());
                }
                try (Stream<Path> files = Files.list(store.resolve("roots"))) {
                    assertThat(files.map(p -> p.getFileName().toString())).noneMatch(n -> n.contains(".tmp"));
                }
                Files.delete(filler);
                s.roots().put(Name.of("r"), Directory.empty().toNode());
                assertThat(s.roots().get(Name.of("r"))).contains(Directory.empty().toNode());
            }
        } finally {
            runCommand("umount", "-l", small.toString());
        }
    }

    /**
     * The error of a root put that fails on a full disk names the file: it was the bare
     * "No space left on device" of a FileChannel, which the command printed as
     * {@code castore: No space left on device}, naming nothing.
     */
    @Test
    void aRootPutThatFailsOnAFullDiskNamesTheJournal() throws Exception {
        Path small = Files.createDirectories(tmp.resolve("small"));
        runCommand("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small.toString());
        try {
            Path store = small.resolve("store");
            try (LocalStore local = LocalStore.open(store, LocalStore.Options.defaults()); Store s = local.asStore()) {
                s.roots().put(Name.of("first"), Directory.empty().toNode());
                fill(small.resolve("filler"));
                IOException failed = null;
                for (int i = 0; i < 200 && failed == null; i++) {
                    try {
                        s.roots().put(Name.of("root-with-a-long-name-" + i), Directory.empty().toNode());
                    } catch (IOException e) {
                        failed = e; // the journal's last page is full
                    }
                }
                assertThat(failed).as("a put that needs a new page of the journal").isNotNull();
                assertThat(failed.getMessage()).contains(store.resolve("roots").resolve("journal").toString());
                assertThat(s.roots().get(Name.of("first"))).contains(Directory.empty().toNode());
            }
        } finally {
            runCommand("umount", "-l", small.toString());
        }
    }

    /** Writes {@code filler} until the disk is full. */
    private static void fill(Path filler) throws IOException {
        try (var out = java.nio.channels.FileChannel.open(filler, java.nio.file.StandardOpenOption.CREATE_NEW,
                java.nio.file.StandardOpenOption.WRITE)) {
            while (true) {
                out.write(ByteBuffer.allocate(4096));
            }
        } catch (IOException full) {
            // the disk is full
        }
    }

    private static void runCommand(String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor()).as("%s: %s", String.join(" ", command), output).isZero();
    }
}

package castore.s3;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.InvalidDataException;
import castore.model.Name;
import castore.model.Node;
import castore.model.SymlinkNode;
import castore.service.BlobReader;
import castore.service.BlobService;
import castore.service.BlobWriter;
import castore.service.ChunkMeta;
import castore.service.CorruptedDataException;
import castore.service.Store;
import castore.service.StoreBusyException;
import castore.service.StoreMaintenance;
import castore.service.StoreOptions;
import castore.service.Stores;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.extension.RegisterExtension;
import software.amazon.awssdk.core.sync.RequestBody;

/** The S3 backend against a real S3-compatible server (S3Proxy) on loopback. */
class S3StoreTest {
    private static final String BUCKET = SharedS3Proxy.BUCKET;
    @RegisterExtension
    static final SharedS3Proxy S3 = new SharedS3Proxy();
    static S3ProxyServer server;

    private String prefix;
    private Store store;

    @BeforeEach
    void open(TestInfo info) throws IOException {
        server = S3.server();
        prefix = "t-" + info.getTestMethod().orElseThrow().getName() + "-" + java.util.UUID.randomUUID();
        store = Stores.open(server.address(BUCKET, prefix), StoreOptions.DEFAULT);
    }

    @AfterEach
    void close() throws IOException {
        store.close();
    }

    static byte[] random(int size, long seed) {
        byte[] data = new byte[size];
        new SplittableRandom(seed).nextBytes(data);
        return data;
    }

    B3Digest writeBlob(Store s, byte[] data) throws IOException {
        try (BlobWriter w = s.blobs().create()) {
            // Uneven writes: the chunker must not depend on how data arrives.
            for (int off = 0; off < data.length; ) {
                int n = Math.min(data.length - off, 100_000 + off % 7);
                w.write(data, off, n);
                off += n;
            }
            return w.finish();
        }
    }

    static byte[] readAll(BlobReader r) throws IOException {
        ByteBuffer all = ByteBuffer.allocate((int) r.size());
        while (all.hasRemaining() && r.read(all.position(), all) > 0) {
            // read until full
        }
        return all.array();
    }

    @Test
    void blobOfSeveralChunksReadsWholeAndAtAnyOffset() throws IOException {
        byte[] data = random(1_700_000, 1);
        B3Digest digest = writeBlob(store, data);
        assertThat(digest).isEqualTo(Blake3.digest(data));
        assertThat(store.blobs().has(digest)).isTrue();
        List<ChunkMeta> chunks = store.blobs().chunks(digest).orElseThrow();
        assertThat(chunks).hasSizeGreaterThan(2);
        assertThat(chunks.stream().mapToLong(ChunkMeta::size).sum()).isEqualTo(data.length);
        try (BlobReader r = store.blobs().open(digest).orElseThrow()) {
            assertThat(r.size()).isEqualTo(data.length);
            assertThat(readAll(r)).isEqualTo(data);
            SplittableRandom random = new SplittableRandom(7);
            for (int i = 0; i < 50; i++) {
                int pos = random.nextInt(data.length);
                int len = random.nextInt(1, 600_000);
                ByteBuffer dst = ByteBuffer.allocate(len);
                int n = r.read(pos, dst);
                assertThat(n).isEqualTo(Math.min(len, data.length - pos));
                assertThat(java.util.Arrays.copyOf(dst.array(), n)).isEqualTo(java.util.Arrays.copyOfRange(data, pos, pos + n));
            }
            assertThat(r.read(data.length, ByteBuffer.allocate(10))).isEqualTo(-1);
        }
        // A chunk digest opens as a one-chunk blob, as tvix clients expect.
        ChunkMeta second = chunks.get(1);
        try (BlobReader r = store.blobs().open(second.digest()).orElseThrow()) {
            assertThat(Blake3.digest(readAll(r))).isEqualTo(second.digest());
        }
        var s3blobs = (S3BlobService) store.blobs();
        assertThat(s3blobs.hasChunk(second.digest())).isTrue();
        assertThat(s3blobs.hasChunk(digest)).isTrue();
        assertThat(s3blobs.hasChunk(Blake3.digest(new byte[] {9}))).isFalse();
        try (BlobReader r = s3blobs.openChunk(second.digest()).orElseThrow()) {
            assertThat(r.size()).isEqualTo(second.size());
            assertThat(Blake3.digest(readAll(r))).isEqualTo(second.digest());
        }
    }

    /**
     * missing (castore copy): a store with few objects for the digests asked about is listed,
     * a larger one asked with HEADs; the answer is the same, each absent digest once, in order. A
     * chunk of a stored blob counts as stored, as has says.
     */
    @Test
    void missingAnswersAlikeFromAListingAndFromHeads() throws IOException {
        List<B3Digest> asked = new java.util.ArrayList<>();
        List<B3Digest> absent = new java.util.ArrayList<>();
        B3Digest big = writeBlob(store, random(1_700_000, 40));
        asked.add(big);
        asked.add(store.blobs().chunks(big).orElseThrow().get(1).digest());
        for (int i = 0; i < 100; i++) {
            byte[] data = random(100 + i, 1000 + i);
            if (i % 2 == 0) {
                asked.add(writeBlob(store, data));
            } else {
                asked.add(Blake3.digest(data));
                absent.add(Blake3.digest(data));
            }
        }
        asked.addAll(asked.subList(0, 10)); // asked twice, answered once
        var s3blobs = (S3BlobService) store.blobs();
        assertThat(s3blobs.missing(asked)).containsExactlyElementsOf(absent); // listed: a few dozen objects
        s3blobs.listedKeysPerDigest(0); // every listing over its budget at its first key
        assertThat(s3blobs.missing(asked)).containsExactlyElementsOf(absent);
        assertThat(s3blobs.missing(asked.subList(0, S3BlobService.LIST_FROM - 1)))
                .containsExactlyElementsOf(absent.stream().filter(asked.subList(0, S3BlobService.LIST_FROM - 1)::contains).toList());
    }

    /**
     * has asks for a blob's chunk first: most blobs are small files stored as their only chunk,
     * so one HEAD each; a blob of several chunks (its list) and an absent one take two. Before
     * session 38 the list came first, and every small file present took two.
     */
    @Test
    void hasTakesOneHeadForABlobOfOneChunk() throws IOException {
        List<B3Digest> small = new java.util.ArrayList<>();
        for (int i = 0; i < 20; i++) {
            byte[] data = random(200 + i, 3000 + i);
            try (BlobWriter w = store.blobs().createDeferred()) { // as an import writes small files
                w.write(data, 0, data.length);
                small.add(w.finish());
            }
        }
        store.blobs().flushWrites();
        B3Digest big = writeBlob(store, random(1_700_000, 41));
        var s3blobs = (S3BlobService) store.blobs();
        long before = s3blobs.heads();
        for (B3Digest d : small) {
            assertThat(s3blobs.has(d)).isTrue();
        }
        assertThat(s3blobs.heads() - before).isEqualTo(20);
        before = s3blobs.heads();
        assertThat(s3blobs.has(big)).isTrue();
        assertThat(s3blobs.has(Blake3.digest(new byte[] {1, 2, 3}))).isFalse();
        assertThat(s3blobs.heads() - before).isEqualTo(4);
    }

    @Test
    void chunksOfZerosAreNamedRightAndStoredOnce() throws IOException {
        byte[] data = new byte[(4 << 20) + 3]; // zeros (a hole), data, zeros to an odd end
        System.arraycopy(random(300_000, 4), 0, data, 1 << 20, 300_000);
        long stored;
        B3Digest digest;
        try (BlobWriter w = store.blobs().create()) {
            w.write(data, 0, data.length);
            digest = w.finish();
            stored = w.bytesStored();
        }
        assertThat(digest).isEqualTo(Blake3.digest(data));
        assertThat(stored).as("the zero chunks of one size stored once").isLessThan(2L << 20);
        var s3blobs = (S3BlobService) store.blobs();
        long at = 0;
        for (ChunkMeta chunk : store.blobs().chunks(digest).orElseThrow()) {
            try (BlobReader r = s3blobs.openChunk(chunk.digest()).orElseThrow()) {
                assertThat(readAll(r)).as("chunk at %d", at)
                        .isEqualTo(java.util.Arrays.copyOfRange(data, (int) at, (int) (at + chunk.size())));
            }
            at += chunk.size();
        }
        try (BlobReader r = store.blobs().open(digest).orElseThrow()) {
            assertThat(readAll(r)).isEqualTo(data);
        }
    }

    @Test
    void sameContentTwiceStoresNothingNew() throws IOException {
        byte[] data = random(900_000, 2);
        long first;
        try (BlobWriter w = store.blobs().create()) {
            w.write(data, 0, data.length);
            w.finish();
            first = w.bytesStored();
        }
        assertThat(first).isEqualTo(data.length);
        try (BlobWriter w = store.blobs().create()) {
            w.write(data, 0, data.length);
            w.finish();
            assertThat(w.bytesStored()).isZero();
        }
    }

    @Test
    void emptyBlobAndAbsentBlob() throws IOException {
        B3Digest empty = writeBlob(store, new byte[0]);
        assertThat(empty).isEqualTo(Blake3.digest(new byte[0]));
        try (BlobReader r = store.blobs().open(empty).orElseThrow()) {
            assertThat(r.size()).isZero();
            assertThat(r.read(0, ByteBuffer.allocate(1))).isEqualTo(-1);
        }
        B3Digest absent = Blake3.digest("absent".getBytes());
        assertThat(store.blobs().has(absent)).isFalse();
        assertThat(store.blobs().open(absent)).isEmpty();
        assertThat(store.blobs().chunks(absent)).isEmpty();
    }

    @Test
    void writerClosedWithoutFinishLeavesNoBlob() throws IOException {
        byte[] data = random(600_000, 3);
        try (BlobWriter w = store.blobs().create()) {
            w.write(data, 0, data.length);
        }
        assertThat(store.blobs().has(Blake3.digest(data))).isFalse();
    }

    @Test
    void readChunkServesChunksAndWholeBlobsCheckedAndNothingElse() throws IOException {
        byte[] small = random(3000, 11);
        B3Digest smallDigest = writeBlob(store, small);
        byte[] large = random(900_000, 12);
        B3Digest largeDigest = writeBlob(store, large);
        List<ChunkMeta> chunks = store.blobs().chunks(largeDigest).orElseThrow();
        assertThat(chunks).hasSizeGreaterThan(1);
        BlobService blobs = store.blobs();
        // A one-chunk blob and a chunk: one object each.
        assertThat(blobs.readChunk(new ChunkMeta(smallDigest, small.length))).hasValueSatisfying(b -> assertThat(b).isEqualTo(small));
        ChunkMeta second = chunks.get(1);
        assertThat(blobs.readChunk(second)).hasValueSatisfying(b -> assertThat(Blake3.digest(b)).isEqualTo(second.digest()));
        // A blob stored as a chunk list is read whole the default way.
        assertThat(blobs.readChunk(new ChunkMeta(largeDigest, large.length))).hasValueSatisfying(b -> assertThat(b).isEqualTo(large));
        assertThat(blobs.readChunk(new ChunkMeta(Blake3.digest(new byte[] {5}), 1))).isEmpty();
        assertThatThrownBy(() -> blobs.readChunk(new ChunkMeta(smallDigest, small.length + 1)))
                .isInstanceOf(CorruptedDataException.class).hasMessageContaining("3000 bytes");
        byte[] bad = random(small.length, 13);
        try (var client = server.client()) {
            client.putObject(b -> b.bucket(BUCKET).key(prefix + "/" + Keys.chunk(smallDigest)), RequestBody.fromBytes(bad));
        }
        assertThatThrownBy(() -> blobs.readChunk(new ChunkMeta(smallDigest, small.length)))
                .isInstanceOf(CorruptedDataException.class).hasMessageContaining(smallDigest.toString());
    }

    @Test
    void readChunkOfABlobWhoseListNamesOtherDataIsAnErrorNeverTheOtherBytes() throws IOException {
        byte[] real = random(900_000, 14);
        List<ChunkMeta> realChunks = store.blobs().chunks(writeBlob(store, real)).orElseThrow();
        // A forged list under another blob's digest: valid chunks, right total size, wrong blob.
        B3Digest forged = Blake3.digest(random(real.length, 15));
        try (var client = server.client()) {
            client.putObject(b -> b.bucket(BUCKET).key(prefix + "/" + Keys.blob(forged)), RequestBody.fromBytes(ChunkList.encode(realChunks)));
        }
        assertThatThrownBy(() -> store.blobs().readChunk(new ChunkMeta(forged, real.length)))
                .isInstanceOf(CorruptedDataException.class).hasMessageContaining(forged.toString());
    }

    @Test
    void corruptedChunkIsAnErrorNeverData() throws IOException {
        byte[] data = random(700_000, 4);
        B3Digest digest = writeBlob(store, data);
        ChunkMeta chunk = store.blobs().chunks(digest).orElseThrow().get(1);
        byte[] bad = random((int) chunk.size(), 99);
        try (var client = server.client()) {
            client.putObject(b -> b.bucket(BUCKET).key(prefix + "/" + Keys.chunk(chunk.digest())), RequestBody.fromBytes(bad));
        }
        try (BlobReader r = store.blobs().open(digest).orElseThrow()) {
            assertThat(r.read(0, ByteBuffer.allocate(1000))).isEqualTo(1000); // chunk 0 is fine
            assertThatThrownBy(() -> readAll(r)).isInstanceOf(CorruptedDataException.class).hasMessageContaining(chunk.digest().toString());
        }
        List<String> problems = new java.util.ArrayList<>();
        store.maintenance().orElseThrow().verifyStored(problems::add);
        assertThat(problems).anyMatch(p -> p.contains(chunk.digest().toString()));
    }

    static Directory leaf(String file, B3Digest blob, long size) {
        return Directory.builder().add(file, new FileNode(blob, size, false))
                .add("link", SymlinkNode.of("target")).build();
    }

    @Test
    void directoriesRoundTripAndChildrenAreChecked() throws IOException {
        B3Digest blob = writeBlob(store, "hello".getBytes());
        Directory leaf = leaf("hello.txt", blob, 5);
        Directory root = Directory.builder().add("sub", leaf.toNode()).add("top", new FileNode(blob, 5, true)).build();
        assertThatThrownBy(() -> store.directories().put(root)).isInstanceOf(InvalidDataException.class).hasMessageContaining("sub");
        assertThat(store.directories().has(root.digest())).isFalse();
        store.directories().put(leaf);
        store.directories().put(root);
        assertThat(store.directories().get(root.digest())).contains(root);
        assertThat(store.directories().getRecursive(root.digest()).toList()).containsExactly(root, leaf);
        Directory lying = Directory.builder().add("sub", new DirectoryNode(leaf.digest(), leaf.size() + 1)).build();
        assertThatThrownBy(() -> store.directories().put(lying)).isInstanceOf(InvalidDataException.class).hasMessageContaining("size");
    }

    @Test
    void rejectedClosureStoresNothing() throws IOException {
        Directory a = leaf("a", Blake3.digest(new byte[0]), 0);
        Directory b = Directory.builder().add("a", a.toNode()).build();
        Directory c = Directory.builder().add("b", b.toNode()).build();
        var putter = store.directories().putClosure();
        putter.put(a);
        assertThatThrownBy(() -> putter.put(c)).isInstanceOf(InvalidDataException.class); // b not sent yet
        assertThat(store.directories().has(a.digest())).isFalse();

        var unreachable = store.directories().putClosure();
        unreachable.put(a);
        unreachable.put(leaf("other", Blake3.digest(new byte[0]), 0));
        assertThatThrownBy(unreachable::finish).isInstanceOf(InvalidDataException.class).hasMessageContaining("not reachable");
        assertThat(store.directories().has(a.digest())).isFalse();

        var good = store.directories().putClosure();
        good.put(a);
        good.put(b);
        good.put(c);
        assertThat(good.finish()).isEqualTo(c.digest());
        assertThat(store.directories().getRecursive(c.digest()).toList()).containsExactly(c, b, a);
    }

    @Test
    void corruptedDirectoryIsAnError() throws IOException {
        Directory a = leaf("a", Blake3.digest(new byte[0]), 0);
        store.directories().put(a);
        Directory other = leaf("b", Blake3.digest(new byte[0]), 0);
        try (var client = server.client()) {
            client.putObject(b -> b.bucket(BUCKET).key(prefix + "/" + Keys.directory(a.digest())), RequestBody.fromBytes(other.encode()));
        }
        assertThatThrownBy(() -> store.directories().get(a.digest())).isInstanceOf(CorruptedDataException.class)
                .hasMessageContaining(a.digest().toString());
    }

    @Test
    void rootsWithAnyBytesListInNameOrder() throws IOException {
        Node file = new FileNode(Blake3.digest(new byte[0]), 0, false);
        Node link = SymlinkNode.of("somewhere");
        Name weird = Name.of(new byte[] {(byte) 0xff, 'x', '\n', ' '});
        store.roots().put(Name.of("b"), file);
        store.roots().put(weird, link);
        store.roots().put(Name.of("a"), link);
        try (var list = store.roots().list()) {
            assertThat(list.map(Node.NamedNode::name).toList()).containsExactly(Name.of("a"), Name.of("b"), weird);
        }
        assertThat(store.roots().get(weird)).contains(link);
        store.roots().put(Name.of("a"), file);
        assertThat(store.roots().get(Name.of("a"))).contains(file);
        assertThat(store.roots().remove(Name.of("a"))).isTrue();
        assertThat(store.roots().remove(Name.of("a"))).isFalse();
        assertThat(store.roots().get(Name.of("a"))).isEmpty();
    }

    @Test
    void listingsGoOnPastAPageOfAThousandKeys() throws Exception {
        // S3 returns at most 1000 keys a page: roots, verify and gc list page by page.
        int count = 1001;
        Node file = new FileNode(Blake3.digest(new byte[0]), 0, false);
        try (var client = server.client(); var pool = java.util.concurrent.Executors.newFixedThreadPool(16)) {
            List<java.util.concurrent.Future<?>> puts = new java.util.ArrayList<>();
            for (int i = 0; i < count; i++) {
                Name name = Name.of(String.format("r%05d", i));
                byte[] body = file.toNodeProto(name).toByteArray();
                puts.add(pool.submit(() -> client.putObject(b -> b.bucket(BUCKET).key(prefix + "/" + Keys.root(name)), RequestBody.fromBytes(body))));
            }
            for (var f : puts) {
                f.get();
            }
        }
        // Their values are read many at once, a few hundred names at a time: still every one, in name order.
        try (var list = store.roots().list()) {
            List<Node.NamedNode> roots = list.toList();
            assertThat(roots).extracting(Node.NamedNode::name).containsExactlyElementsOf(
                    java.util.stream.IntStream.range(0, count).mapToObj(i -> Name.of(String.format("r%05d", i))).toList());
            assertThat(roots).extracting(Node.NamedNode::node).containsOnly(file);
        }
    }

    @Test
    void serverRefusesConflictingConditionalWrites() throws IOException {
        // What the root updates rely on: If-None-Match: * and If-Match are enforced by the server.
        try (var client = server.client()) {
            Bucket bucket = new Bucket(client, S3Location.parse(java.net.URI.create("s3://" + BUCKET + "/" + prefix)));
            assertThat(bucket.putIfAbsent("probe", new byte[] {1})).isTrue();
            assertThat(bucket.putIfAbsent("probe", new byte[] {2})).isFalse();
            String etag = bucket.get("probe").orElseThrow().etag();
            assertThat(bucket.get("probe").orElseThrow().bytes()).containsExactly(1);
            assertThat(bucket.putIfMatch("probe", new byte[] {3}, etag)).isTrue();
            assertThat(bucket.putIfMatch("probe", new byte[] {4}, etag)).isFalse();
            assertThat(bucket.get("probe").orElseThrow().bytes()).containsExactly(3);
        }
    }

    @Test
    void twoWritersCannotLoseAnUpdate() throws IOException {
        Name name = Name.of("shared");
        Node v1 = SymlinkNode.of("v1");
        Node v2 = SymlinkNode.of("v2");
        Node v3 = SymlinkNode.of("v3");
        try (Store other = Stores.open(server.address(BUCKET, prefix), StoreOptions.DEFAULT)) {
            var mine = (S3RootService) store.roots();
            var theirs = (S3RootService) other.roots();
            assertThat(mine.compareAndSet(name, Optional.empty(), v1)).isTrue();
            assertThat(theirs.compareAndSet(name, Optional.empty(), v2)).isFalse();
            assertThat(theirs.compareAndSet(name, Optional.of(v1), v2)).isTrue();
            assertThat(mine.compareAndSet(name, Optional.of(v1), v3)).isFalse(); // stale: sees v2, not v1
            assertThat(store.roots().get(name)).contains(v2);
            // put() re-reads and retries on a failed precondition, so it always lands on the newest state.
            theirs.put(name, v3);
            assertThat(mine.compareAndSet(name, Optional.of(v2), v1)).isFalse();
            assertThat(store.roots().get(name)).contains(v3);
        }
    }

    @Test
    void gcDeletesWhatNoRootReachesAndVerifyPasses() throws IOException {
        byte[] keep = random(800_000, 5);
        byte[] drop = random(800_000, 6);
        B3Digest kept = writeBlob(store, keep);
        B3Digest dropped = writeBlob(store, drop);
        Directory keptDir = leaf("f", kept, keep.length);
        Directory droppedDir = leaf("g", dropped, drop.length);
        store.directories().put(keptDir);
        store.directories().put(droppedDir);
        store.roots().put(Name.of("keep"), keptDir.toNode());
        var maintenance = store.maintenance().orElseThrow();
        store.close();
        try (Store gc = Stores.open(server.address(BUCKET, prefix), StoreOptions.DEFAULT)) {
            var m = gc.maintenance().orElseThrow();
            ((S3Maintenance) m).bucket().pageKeys(2); // every listing goes shard by shard
            try (var lock = m.exclusive()) {
                var result = m.sweep(Set.of(kept), Set.of(keptDir.digest()));
                assertThat(result.objectsRemoved()).isGreaterThanOrEqualTo(3); // blob list, its chunks, the directory
                assertThat(result.bytesFreed()).isGreaterThanOrEqualTo(drop.length);
            }
            assertThat(gc.blobs().has(dropped)).isFalse();
            assertThat(gc.directories().has(droppedDir.digest())).isFalse();
            try (BlobReader r = gc.blobs().open(kept).orElseThrow()) {
                assertThat(readAll(r)).isEqualTo(keep);
            }
            List<String> problems = new java.util.ArrayList<>();
            StoreMaintenance.Verification verification = m.verifyStored(problems::add);
            assertThat(verification.objectsChecked()).isGreaterThan(0);
            assertThat(problems).isEmpty();
            // The blobs it re-hashed, with their sizes, so verify's walk need not ask about them.
            assertThat(verification.soundBlobs().size(kept)).isEqualTo(keep.length);
            assertThat(verification.soundBlobs().size(dropped)).isEqualTo(-1);
            B3Digest firstChunk = gc.blobs().chunks(kept).orElseThrow().getFirst().digest();
            assertThat(verification.soundBlobs().size(firstChunk)).isEqualTo(gc.blobs().chunks(kept).orElseThrow().getFirst().size());
        }
        assertThat(maintenance).isNotNull();
        store = Stores.open(server.address(BUCKET, prefix), StoreOptions.DEFAULT);
    }

    /**
     * Every broken reference of a Directory is one problem naming the entry: a subdirectory
     * missing, one of another size than the entry says, a blob missing, a blob of another size
     * than the entry says (not reported before session 45 for a blob of several chunks). Since
     * verify stopped holding every Directory in memory (subdirectories are checked once all were
     * read), this shows it still finds each one; the good entries give none.
     */
    @Test
    void verifyNamesEveryBrokenEntryOfADirectory() throws IOException {
        byte[] data = random(800_000, 16);
        B3Digest blob = writeBlob(store, data);
        Directory child = leaf("f", blob, data.length);
        store.directories().put(child);
        Directory neverStored = leaf("g", blob, data.length + 1);
        B3Digest noBlob = Blake3.digest(random(10, 17));
        Directory parent = Directory.builder()
                .add("a", child.toNode())
                .add("b", neverStored.toNode())
                .add("c", new DirectoryNode(child.digest(), child.size() + 5))
                .add("d", new FileNode(noBlob, 10, false))
                .add("e", new FileNode(blob, data.length, true))
                .add("f", new FileNode(blob, data.length + 3, false))
                .build();
        try (var client = server.client()) { // past put's checks, as a broken writer or a lost object leaves it
            client.putObject(b -> b.bucket(BUCKET).key(prefix + "/" + Keys.directory(parent.digest())), RequestBody.fromBytes(parent.encode()));
        }
        store.roots().put(Name.of("r"), parent.toNode());
        List<String> problems = new java.util.ArrayList<>();
        store.maintenance().orElseThrow().verifyStored(problems::add);
        String where = "directory " + parent.digest() + " entry ";
        assertThat(problems).containsExactlyInAnyOrder(
                where + "'b': directory " + neverStored.digest() + " missing or corrupted",
                where + "'c': size " + (child.size() + 5) + " but directory has " + child.size(),
                where + "'d': blob " + noBlob + " missing or corrupted",
                where + "'f': blob " + blob + " is " + data.length + " bytes but the entry says " + (data.length + 3));
    }

    /**
     * verify checks objects many at once, in batches of listed objects: past one batch, every bad
     * chunk is still one problem line (each from whichever thread found it), and every object
     * listed is counted. gc's sweep deletes them many at once, and counts each.
     */
    @Test
    void verifyChecksManyObjectsAtOnceAndReportsEveryBadOne() throws IOException {
        int count = S3Maintenance.LISTED_AT_A_TIME + 100;
        List<B3Digest> digests = new java.util.ArrayList<>();
        for (int i = 0; i < count; i++) {
            byte[] data = random(200 + i, 1000 + i);
            try (BlobWriter w = store.blobs().createDeferred()) {
                w.write(data, 0, data.length);
                digests.add(w.finish());
            }
        }
        store.blobs().flushWrites();
        // In the order the bucket lists them: the first, one in the first batch, the last (in the second batch).
        List<B3Digest> listed = digests.stream().sorted(java.util.Comparator.comparing(Keys::chunk)).toList();
        List<B3Digest> corrupted = List.of(listed.getFirst(), listed.get(S3Maintenance.LISTED_AT_A_TIME / 2), listed.getLast());
        try (var client = server.client()) {
            for (B3Digest bad : corrupted) {
                client.putObject(b -> b.bucket(BUCKET).key(prefix + "/" + Keys.chunk(bad)), RequestBody.fromBytes(random(300, 7)));
            }
        }
        ((S3Maintenance) store.maintenance().orElseThrow()).bucket().pageKeys(100); // listed shard by shard
        List<String> problems = new java.util.ArrayList<>(); // not thread-safe: verify must hand lines over one at a time
        StoreMaintenance.Verification verification = store.maintenance().orElseThrow().verifyStored(problems::add);
        assertThat(verification.objectsChecked()).isGreaterThanOrEqualTo(count);
        assertThat(problems).hasSize(corrupted.size());
        for (B3Digest bad : corrupted) {
            assertThat(problems).anyMatch(p -> p.contains(bad.toString()));
            assertThat(verification.soundBlobs().size(bad)).isEqualTo(-1);
        }
        for (int i = 1; i < count; i += 97) {
            if (!corrupted.contains(digests.get(i))) {
                assertThat(verification.soundBlobs().size(digests.get(i))).isEqualTo(200 + i); // stored as its one chunk
            }
        }
        // gc deletes many at once too, past one batch: with no root, every chunk goes, and each is counted.
        store.close(); // its lease would keep gc out
        try (Store gc = Stores.open(server.address(BUCKET, prefix), StoreOptions.DEFAULT)) {
            var m = gc.maintenance().orElseThrow();
            try (var lock = m.exclusive()) {
                var result = m.sweep(Set.of(), Set.of());
                assertThat(result.objectsRemoved()).isEqualTo(count);
                long bytes = 0;
                for (int i = 0; i < count; i++) {
                    bytes += corrupted.contains(digests.get(i)) ? 300 : 200 + i;
                }
                assertThat(result.bytesFreed()).isEqualTo(bytes);
            }
            try (var listing = ((S3Maintenance) m).bucket().list(Keys.CHUNKS)) {
                assertThat(listing.toList()).isEmpty();
            }
        }
        store = Stores.open(server.address(BUCKET, prefix), StoreOptions.DEFAULT);
    }

    /**
     * A listing of more than a page goes shard by shard (here pages of 3 keys, so the listing of
     * the shards and a shard of 4 foreign keys take several pages too): the same keys in the same
     * order as a plain listing, with foreign keys beside the shards and in a shard no digest names.
     */
    @Test
    void aListingOfMoreThanAPageGoesShardByShardAndGivesWhatAPlainOneGives() throws IOException {
        for (int i = 0; i < 40; i++) {
            byte[] data = random(100 + i, 3000 + i);
            try (BlobWriter w = store.blobs().createDeferred()) {
                w.write(data, 0, data.length);
                w.finish();
            }
        }
        store.blobs().flushWrites();
        try (var client = server.client()) {
            for (String key : List.of("foreign", "zz/odd", "00/w", "00/x", "00/y", "00/z")) {
                client.putObject(b -> b.bucket(BUCKET).key(prefix + "/" + Keys.CHUNKS + key), RequestBody.fromBytes(random(5, 9)));
            }
        }
        Bucket bucket = ((S3Maintenance) store.maintenance().orElseThrow()).bucket();
        List<Bucket.Listed> plain;
        try (var listing = bucket.list(Keys.CHUNKS)) {
            plain = listing.toList();
        }
        assertThat(plain).hasSize(46);
        bucket.pageKeys(3);
        try (var listing = bucket.listSharded(Keys.CHUNKS)) {
            assertThat(listing.toList()).containsExactlyElementsOf(plain);
        }
        try (var listing = bucket.listSharded(Keys.DIRECTORIES)) {
            assertThat(listing.toList()).isEmpty();
        }
        bucket.pageKeys(1000); // one page: no shards listed
        try (var listing = bucket.listSharded(Keys.CHUNKS)) {
            assertThat(listing.toList()).containsExactlyElementsOf(plain);
        }
    }

    /** A clock tests move: a store on it sees its own lease lapse (gc goes by the server's clock). */
    private static final class MovableClock extends java.time.Clock {
        private volatile java.time.Instant now = java.time.Instant.now();

        void advance(java.time.Duration by) {
            now = now.plus(by);
        }

        @Override
        public java.time.ZoneId getZone() {
            return java.time.ZoneOffset.UTC;
        }

        @Override
        public java.time.Clock withZone(java.time.ZoneId zone) {
            return this;
        }

        @Override
        public java.time.Instant instant() {
            return now;
        }
    }

    private Store openOn(java.time.Clock clock) {
        return S3StoreProvider.open(server.client(), S3Location.parse(java.net.URI.create(server.address(BUCKET, prefix))), clock);
    }

    @Test
    void aDirectorySeenStoredBeforeTheLeaseIsLookedForAgainWhenItsParentIsPut() throws IOException {
        Directory child = Directory.builder().add("l", castore.model.SymlinkNode.of("t")).build();
        Directory parent = Directory.builder().add("c", child.toNode()).build();
        store.directories().put(child); // by another writer, who leaves
        store.close();
        try (Store reader = Stores.open(server.address(BUCKET, prefix), StoreOptions.DEFAULT)) {
            assertThat(reader.directories().get(child.digest())).contains(child); // seen while it held no lease
            try (Store gc = Stores.open(server.address(BUCKET, prefix), StoreOptions.DEFAULT);
                    var lock = gc.maintenance().orElseThrow().exclusive()) {
                gc.maintenance().orElseThrow().sweep(Set.of(), Set.of()); // nothing roots it
            }
            assertThatThrownBy(() -> reader.directories().put(parent)).isInstanceOf(castore.model.InvalidDataException.class)
                    .hasMessageContaining("is not stored");
        }
        store = Stores.open(server.address(BUCKET, prefix), StoreOptions.DEFAULT);
    }

    @Test
    void writersWhoseLeaseLapsedDoNotStoreWhatAGcMayHaveRemoved() throws IOException {
        MovableClock clock = new MovableClock();
        Directory child = Directory.builder().add("l", castore.model.SymlinkNode.of("u")).build();
        Directory parent = Directory.builder().add("c", child.toNode()).build();
        store.directories().put(child);
        store.close();
        try (Store writer = openOn(clock)) {
            BlobWriter blob = writer.blobs().create();
            blob.write(random(100_000, 9), 0, 100_000); // less than a chunk: sent at finish, after the gc
            var closure = writer.directories().putClosure();
            closure.put(parent); // its child is stored, now
            clock.advance(WriteLease.STALE.plusMinutes(1)); // no write for longer than a lease lasts
            for (String lease : leases()) { // and so, on the server, its lease is as old
                server.backdate(BUCKET, lease, WriteLease.STALE.plusMinutes(1));
            }
            try (Store gc = openOn(clock); var lock = gc.maintenance().orElseThrow().exclusive()) {
                gc.maintenance().orElseThrow().sweep(Set.of(), Set.of()); // the writer's lease looks stale: gc runs
            }
            assertThatThrownBy(blob::finish).isInstanceOf(IOException.class).hasMessageContaining("lapsed");
            blob.close();
            assertThatThrownBy(closure::finish).isInstanceOf(castore.model.InvalidDataException.class)
                    .hasMessageContaining("is not stored");
            assertThat(writer.directories().has(parent.digest())).isFalse();
        }
        store = Stores.open(server.address(BUCKET, prefix), StoreOptions.DEFAULT);
    }

    /** A deferred writer whose lease lapsed stores nothing either: flushWrites says why. */
    @Test
    void aDeferredWriterWhoseLeaseLapsedFailsAtFlush() throws IOException {
        MovableClock clock = new MovableClock();
        store.close();
        try (Store writer = openOn(clock)) {
            byte[] data = random(100_000, 19);
            BlobWriter blob = writer.blobs().createDeferred();
            blob.write(data, 0, data.length); // less than a chunk: sent at finish
            clock.advance(WriteLease.STALE.plusMinutes(1)); // no write for longer than a lease lasts
            assertThat(blob.finish()).isEqualTo(Blake3.digest(data)); // returns before the upload
            blob.close();
            assertThatThrownBy(() -> writer.blobs().flushWrites()).isInstanceOf(IOException.class).hasMessageContaining("lapsed");
            assertThat(writer.blobs().has(Blake3.digest(data))).isFalse();
            assertThat(writer.blobs().flushWrites()).isZero(); // reported once
        }
        store = Stores.open(server.address(BUCKET, prefix), StoreOptions.DEFAULT);
    }

    /**
     * Deferred writers of small blobs (an import's files) finish without waiting for S3 and are
     * all stored by flushWrites, which counts their bytes; a blob of one chunk is stored as that
     * chunk alone, without a chunk list object (a HEAD and a PUT fewer per small file), and reads,
     * verifies and survives gc as before. A blob of several chunks keeps its list.
     */
    @Test
    void deferredSmallBlobsAreStoredByFlushAsTheirOnlyChunk() throws IOException {
        List<byte[]> contents = new java.util.ArrayList<>();
        for (int i = 0; i < 200; i++) {
            contents.add(random(1 + i * 97, 100 + i));
        }
        List<B3Digest> digests = new java.util.ArrayList<>();
        for (byte[] data : contents) {
            try (BlobWriter w = store.blobs().createDeferred()) {
                w.write(data, 0, data.length);
                digests.add(w.finish());
            }
        }
        assertThat(store.blobs().flushWrites()).isEqualTo(contents.stream().mapToLong(b -> b.length).sum());
        assertThat(store.blobs().flushWrites()).isZero();
        byte[] big = random(1_500_000, 20);
        B3Digest bigDigest = writeBlob(store, big);
        try (var client = server.client()) {
            for (int i = 0; i < contents.size(); i++) {
                B3Digest digest = digests.get(i);
                assertThat(digest).isEqualTo(Blake3.digest(contents.get(i)));
                assertThat(store.blobs().has(digest)).isTrue();
                assertThat(store.blobs().chunks(digest)).contains(List.of(new ChunkMeta(digest, contents.get(i).length)));
                try (BlobReader r = store.blobs().open(digest).orElseThrow()) {
                    assertThat(readAll(r)).isEqualTo(contents.get(i));
                }
            }
            B3Digest first = digests.getFirst();
            assertThat(client.listObjectsV2(b -> b.bucket(BUCKET).prefix(prefix + "/" + Keys.blob(first))).contents()).isEmpty();
            assertThat(client.listObjectsV2(b -> b.bucket(BUCKET).prefix(prefix + "/" + Keys.chunk(first))).contents()).hasSize(1);
            assertThat(client.listObjectsV2(b -> b.bucket(BUCKET).prefix(prefix + "/" + Keys.blob(bigDigest))).contents()).hasSize(1);
        }
        Directory dir = leaf("f", digests.getFirst(), contents.getFirst().length);
        store.directories().put(dir);
        store.roots().put(Name.of("r"), dir.toNode());
        store.close(); // gc waits for writers to leave
        try (Store gc = Stores.open(server.address(BUCKET, prefix), StoreOptions.DEFAULT)) {
            var m = gc.maintenance().orElseThrow();
            ((S3Maintenance) m).bucket().pageKeys(2); // every listing goes shard by shard
            try (var lock = m.exclusive()) {
                m.sweep(Set.of(digests.getFirst()), Set.of(dir.digest()));
            }
            assertThat(gc.blobs().has(digests.getFirst())).isTrue();
            assertThat(gc.blobs().has(digests.get(1))).isFalse(); // unreachable: gone
            List<String> problems = new java.util.ArrayList<>();
            m.verifyStored(problems::add);
            assertThat(problems).isEmpty();
        }
        store = Stores.open(server.address(BUCKET, prefix), StoreOptions.DEFAULT);
    }

    /** The keys (bucket-relative) of the leases under this test's prefix. */
    private List<String> leases() {
        try (var client = server.client()) {
            return client.listObjectsV2(b -> b.bucket(BUCKET).prefix(prefix + "/leases/")).contents().stream()
                    .map(software.amazon.awssdk.services.s3.model.S3Object::key).toList();
        }
    }

    @Test
    void gcJudgesLeasesByTheServersClockNotItsOwn() throws IOException {
        try (BlobWriter w = store.blobs().create()) { // a live writer: its lease is fresh
            w.write(new byte[] {1}, 0, 1);
            w.finish();
        }
        MovableClock ahead = new MovableClock();
        ahead.advance(java.time.Duration.ofHours(1)); // a gc host whose clock runs an hour fast
        try (Store gc = openOn(ahead)) {
            assertThatThrownBy(() -> gc.maintenance().orElseThrow().exclusive()).isInstanceOf(StoreBusyException.class)
                    .hasMessageContaining("writer");
        }
        List<String> live = leases();
        assertThat(live).hasSize(1);
        server.backdate(BUCKET, live.getFirst(), WriteLease.STALE.plusMinutes(1)); // now as a crashed writer's
        MovableClock behind = new MovableClock();
        behind.advance(java.time.Duration.ofHours(-1)); // and one an hour slow
        try (Store gc = openOn(behind); var lock = gc.maintenance().orElseThrow().exclusive()) {
            gc.maintenance().orElseThrow().sweep(Set.of(), Set.of());
        }
        assertThat(leases()).as("the stale lease, swept").isEmpty();
    }

    @Test
    void closingWithUploadsInFlightLeavesNoLeaseBehind() throws IOException {
        BlobWriter abandoned = store.blobs().create();
        abandoned.write(random(3_000_000, 10), 0, 3_000_000); // several chunks queued for upload
        store.close(); // with the writer still open: its uploads finish first, then the lease goes
        try (var client = server.client();
                var leases = java.util.stream.Stream.of(client.listObjectsV2(b -> b.bucket(BUCKET).prefix(prefix + "/leases/")))) {
            assertThat(leases.flatMap(r -> r.contents().stream()).toList()).as("leases left").isEmpty();
        }
        store = Stores.open(server.address(BUCKET, prefix), StoreOptions.DEFAULT);
        try (var lock = store.maintenance().orElseThrow().exclusive()) {
            assertThat(lock).isNotNull(); // no lease blocks a gc
        }
    }

    @Test
    void gcIsRefusedWhileAWriterIsActiveAndWritersWhileGcRuns() throws IOException {
        try (BlobWriter w = store.blobs().create()) { // takes the write lease
            w.write(new byte[] {1, 2, 3}, 0, 3);
            w.finish();
        }
        try (Store gc = Stores.open(server.address(BUCKET, prefix), StoreOptions.DEFAULT)) {
            assertThatThrownBy(() -> gc.maintenance().orElseThrow().exclusive()).isInstanceOf(StoreBusyException.class)
                    .hasMessageContaining("writer");
            store.close(); // releases the lease
            try (var lock = gc.maintenance().orElseThrow().exclusive()) {
                store = Stores.open(server.address(BUCKET, prefix), StoreOptions.DEFAULT);
                assertThatThrownBy(() -> store.blobs().create()).isInstanceOf(StoreBusyException.class)
                        .hasMessageContaining("garbage collection");
                assertThatThrownBy(() -> gc.maintenance().orElseThrow().exclusive()).isInstanceOf(StoreBusyException.class);
            }
            try (BlobWriter w = store.blobs().create()) {
                w.write(new byte[] {4}, 0, 1);
                assertThat(w.finish()).isEqualTo(Blake3.digest(new byte[] {4}));
            }
        }
    }

    @Test
    void badAddressesGiveClearErrors() {
        assertThatThrownBy(() -> Stores.open("s3:///nobucket", StoreOptions.DEFAULT)).isInstanceOf(InvalidDataException.class)
                .hasMessageContaining("no bucket");
        assertThatThrownBy(() -> Stores.open("s3://b/p?endpoint=ftp://x", StoreOptions.DEFAULT)).isInstanceOf(InvalidDataException.class)
                .hasMessageContaining("endpoint");
        assertThatThrownBy(() -> Stores.open("s3://b/p?colour=red", StoreOptions.DEFAULT)).isInstanceOf(InvalidDataException.class)
                .hasMessageContaining("unknown parameter 'colour'");
        assertThatThrownBy(() -> Stores.open(server.address("no-such-bucket", "p"), StoreOptions.DEFAULT))
                .isInstanceOf(InvalidDataException.class).hasMessageContaining("does not exist");
    }
}

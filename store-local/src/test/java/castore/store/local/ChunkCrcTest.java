package castore.store.local;

import static castore.service.BlobServiceContract.randomBytes;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.hash.RecordedCrc;
import castore.model.B3Digest;
import castore.model.InvalidDataException;
import castore.service.BlobReader;
import castore.service.ChunkMeta;
import castore.service.CorruptedDataException;
import castore.service.StoreMaintenance;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import java.io.Closeable;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Chunks record a CRC32C in their index entry and reads check it instead of hashing again
 * ({@link ChunkCrc}); {@code digest-reads=true} hashes anyway; entries without one (packs written
 * before CRCs) are checked by digest; {@code verify} checks both. Each case edits real pack and
 * index files and reads them through the store, buffered and with O_DIRECT read-ahead.
 */
class ChunkCrcTest {
    private static final int MiB = 1 << 20;

    @TempDir
    Path tmp;

    private Path dir() {
        return tmp.resolve("store");
    }

    private LocalStore open(boolean directReads, boolean digestReads) throws IOException {
        return LocalStore.open(dir(), LocalStore.Options.defaults().withDirectReads(directReads).withDigestReads(digestReads));
    }

    private B3Digest publish(byte[] data) throws IOException {
        try (LocalStore local = open(false, false); Store store = local.asStore()) {
            return LocalStoreTest.put(store, data);
        }
    }

    private List<ChunkMeta> chunks(B3Digest blob) throws IOException {
        try (LocalStore local = open(false, false); Store store = local.asStore()) {
            return store.blobs().chunks(blob).orElseThrow();
        }
    }

    /** Where the chunk's entry is: its location, and the index file that lists it. */
    private record Entry(Location location, Path index) {
    }

    private Entry entry(B3Digest chunk) throws IOException {
        try (var s = Files.newDirectoryStream(dir().resolve("packs"), "*.idx")) {
            for (Path index : s) {
                Location l = Pack.open(index).find(PackFormat.Key.of(chunk), ObjectKind.CHUNK, chunk);
                if (l != null) {
                    return new Entry(l, index);
                }
            }
        }
        throw new AssertionError("no entry for chunk " + chunk);
    }

    private static byte[] payload(Location l) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(((Pack) l.source()).packPath().toFile(), "r")) {
            byte[] out = new byte[l.length()];
            f.seek(l.offset());
            f.readFully(out);
            return out;
        }
    }

    private static long crcAux(byte[] data) {
        CRC32C crc = new CRC32C();
        crc.update(data);
        return RecordedCrc.PRESENT | crc.getValue();
    }

    /**
     * Rewrites the aux field of the chunk's index entry and the index's own CRC32C, as a writer of
     * both files could (or a store from before CRCs looks, with 0).
     */
    private static void rewriteAux(Entry e, long aux) throws IOException {
        Path index = e.index();
        byte[] bytes = Files.readAllBytes(index);
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int count = b.getInt(12);
        byte[] digest = e.location().digest().toByteArray();
        int found = -1;
        for (int i = 0; i < count; i++) {
            int at = PackFormat.INDEX_HEADER + PackFormat.FANOUT + i * PackFormat.INDEX_ENTRY;
            if (bytes[at + 32] == 1 && java.util.Arrays.equals(bytes, at, at + 32, digest, 0, 32)) {
                found = at;
            }
        }
        assertThat(found).as("the chunk's index entry").isNotNegative();
        b.putLong(found + 48, aux);
        CRC32C crc = new CRC32C();
        crc.update(bytes, 0, bytes.length - PackFormat.INDEX_TRAILER);
        b.putInt(bytes.length - PackFormat.INDEX_TRAILER, (int) crc.getValue());
        index.toFile().setWritable(true);
        Files.write(index, bytes);
    }

    private static void readWhole(LocalStore local, B3Digest blob, byte[] expected) throws IOException {
        try (Store store = local.asStore(); BlobReader r = store.blobs().open(blob).orElseThrow()) {
            assertThat(r.inputStream(0).readAllBytes()).isEqualTo(expected);
        }
    }

    private static void readFails(LocalStore local, B3Digest blob, B3Digest chunk) throws IOException {
        try (Store store = local.asStore(); BlobReader r = store.blobs().open(blob).orElseThrow()) {
            assertThatThrownBy(() -> r.inputStream(0).readAllBytes())
                    .isInstanceOf(CorruptedDataException.class).hasMessageContaining(chunk.toString());
        }
    }

    /** With direct reads on, the chunks did come through the O_DIRECT read-ahead, whose checks are under test too. */
    private static void assertDirectReads(LocalStore local, boolean directReads) {
        if (directReads) {
            assertThat(local.packStore().directReads().direct.sum()).as("chunks read with O_DIRECT").isPositive();
        }
    }

    /** Flips a byte {@code within} the chunk's payload in its pack file. */
    private static void damage(Location l, long within) throws IOException {
        LocalStoreTest.flipByte(((Pack) l.source()).packPath(), l.offset() + within);
    }

    /** Verify finds exactly one problem, with this chunk, described with {@code words}. */
    private void assertVerifyReports(ChunkMeta chunk, String words) throws IOException {
        assertThat(verify()).singleElement().asString().contains("chunk " + chunk.digest()).contains(words);
    }

    private List<String> verify() throws IOException {
        List<String> problems = new ArrayList<>();
        try (LocalStore local = open(false, false)) {
            local.verifyStored(problems::add);
        }
        return problems;
    }

    @Test
    void everyNewChunkRecordsTheCrc32cOfItsBytes() throws IOException {
        byte[] data = randomBytes(41, 3 * MiB);
        B3Digest blob = publish(data);
        List<ChunkMeta> chunks = chunks(blob);
        assertThat(chunks).hasSizeGreaterThan(2);
        for (ChunkMeta c : chunks) {
            Location l = entry(c.digest()).location();
            assertThat(ChunkCrc.recorded(l)).isTrue();
            assertThat(l.aux()).isEqualTo(crcAux(payload(l)));
        }
        assertThat(verify()).isEmpty();
    }

    /** A wrong CRC on intact bytes shows which check a read makes: it fails by CRC, and passes by digest. */
    @ParameterizedTest(name = "direct reads {0}")
    @ValueSource(booleans = {false, true})
    void readsCheckTheRecordedCrcUnlessDigestReadsAreOn(boolean directReads) throws IOException {
        byte[] data = randomBytes(42, 16 * MiB);
        B3Digest blob = publish(data);
        ChunkMeta chunk = chunks(blob).get(20);
        Entry e = entry(chunk.digest());
        rewriteAux(e, e.location().aux() ^ 1);

        try (LocalStore local = open(directReads, false)) {
            readFails(local, blob, chunk.digest());
            assertDirectReads(local, directReads);
        }
        try (LocalStore local = open(directReads, true)) {
            readWhole(local, blob, data);
            assertDirectReads(local, directReads);
        }
        try (Store store = Stores.open("local://" + dir() + "?digest-reads=true", StoreOptions.DEFAULT.withDirectReads(directReads));
                BlobReader r = store.blobs().open(blob).orElseThrow()) {
            assertThat(r.inputStream(0).readAllBytes()).isEqualTo(data);
        }
        assertVerifyReports(chunk, "CRC32C its intact content does not have");
    }

    @ParameterizedTest(name = "direct reads {0}")
    @ValueSource(booleans = {false, true})
    void aDamagedChunkFailsByItsCrcAndByItsDigest(boolean directReads) throws IOException {
        byte[] data = randomBytes(43, 16 * MiB);
        B3Digest blob = publish(data);
        ChunkMeta chunk = chunks(blob).get(20);
        Location l = entry(chunk.digest()).location();
        damage(l, 4097);

        for (boolean digestReads : new boolean[] {false, true}) {
            try (LocalStore local = open(directReads, digestReads)) {
                readFails(local, blob, chunk.digest());
            }
        }
        assertVerifyReports(chunk, "corrupted");
    }

    /** Packs written before CRCs (aux 0) still read, and a damaged chunk among them still fails: by digest. */
    @ParameterizedTest(name = "direct reads {0}")
    @ValueSource(booleans = {false, true})
    void chunksWithoutARecordedCrcAreCheckedByDigest(boolean directReads) throws IOException {
        byte[] data = randomBytes(44, 16 * MiB);
        B3Digest blob = publish(data);
        List<ChunkMeta> chunks = chunks(blob);
        for (ChunkMeta c : chunks) {
            rewriteAux(entry(c.digest()), 0);
        }
        try (LocalStore local = open(directReads, false)) {
            readWhole(local, blob, data);
        }
        ChunkMeta chunk = chunks.get(20);
        Location l = entry(chunk.digest()).location();
        assertThat(ChunkCrc.recorded(l)).isFalse();
        damage(l, 4097);
        try (LocalStore local = open(directReads, false)) {
            readFails(local, blob, chunk.digest());
        }
        assertVerifyReports(chunk, "corrupted");
    }

    /**
     * The limit, documented: bytes changed together with a CRC recomputed to match them (someone
     * who writes both the pack and its index) pass the default check; digest reads and verify
     * catch them.
     */
    @Test
    void bytesChangedTogetherWithTheirCrcAreCaughtByDigestReadsAndVerify() throws IOException {
        byte[] data = randomBytes(45, 3 * MiB);
        B3Digest blob = publish(data);
        ChunkMeta chunk = chunks(blob).get(1);
        Entry e = entry(chunk.digest());
        damage(e.location(), 10);
        rewriteAux(e, crcAux(payload(e.location())));

        try (LocalStore local = open(false, true)) {
            readFails(local, blob, chunk.digest());
        }
        assertVerifyReports(chunk, "corrupted");
    }

    @Test
    void gcKeepsTheRecordedCrcOfTheChunksItCopies() throws IOException {
        byte[] kept = randomBytes(46, 2 * MiB);
        B3Digest blob = publish(kept);
        publish(randomBytes(47, 2 * MiB)); // dead: its removal makes gc rewrite the packs
        // One chunk as packs before CRCs have it: gc copies bytes it has not verified, so it must
        // copy the entry's CRC (or its absence), never take one from what it read.
        ChunkMeta withoutCrc = chunks(blob).getFirst();
        rewriteAux(entry(withoutCrc.digest()), 0);
        StoreMaintenance.SweepResult result;
        try (LocalStore local = open(false, false); Closeable lock = local.exclusive()) {
            result = local.sweep(Set.of(blob), Set.of());
        }
        assertThat(result.bytesFreed()).isPositive();
        for (ChunkMeta c : chunks(blob)) {
            Location l = entry(c.digest()).location();
            assertThat(l.aux()).as("chunk %s", c.digest()).isEqualTo(c.equals(withoutCrc) ? 0 : crcAux(payload(l)));
        }
        try (LocalStore local = open(false, false)) {
            readWhole(local, blob, kept);
        }
    }

    @Test
    void aBadDigestReadsValueIsRefusedNamingTheKnownOnes() {
        assertThatThrownBy(() -> Stores.open("local://" + dir() + "?digest-reads=yes", StoreOptions.DEFAULT))
                .isInstanceOf(InvalidDataException.class).hasMessageContaining("unknown parameter 'digest-reads=yes'")
                .hasMessageContaining("digest-reads=true|false");
    }
}

package castore.store.local;

import static org.assertj.core.api.Assertions.assertThat;

import castore.hash.Blake3;
import castore.io.WindowHints;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.FileNode;
import castore.service.Store;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Directory reads from a published metadata pack hint the kernel a window at a time
 * ({@link Pack#metadataAhead}): one hint per window whatever the order of reads, never one per
 * Directory, and the Directories read back unchanged.
 */
class MetadataReadAheadTest {
    @TempDir
    Path tmp;

    /** About 40 KiB each: 600 file entries with 60-odd bytes apiece. */
    private static Directory directory(int n) {
        Directory.Builder b = Directory.builder();
        for (int i = 0; i < 600; i++) {
            String name = "d" + n + "-file-" + i;
            b.add(name, new FileNode(Blake3.digest(name.getBytes()), i, false));
        }
        return b.build();
    }

    @Test
    void directoriesReadInAnyOrderHintEachWindowOnceAndReadBackUnchanged() throws IOException {
        Path dir = tmp.resolve("store");
        List<Directory> stored = new ArrayList<>();
        List<B3Digest> digests = new ArrayList<>();
        try (LocalStore local = LocalStore.open(dir, LocalStore.Options.defaults()); Store store = local.asStore()) {
            for (int n = 0; n < 80; n++) { // ~3.2 MiB of metadata: 7 windows
                Directory d = directory(n);
                stored.add(d);
                digests.add(store.directories().put(d));
            }
        }
        try (LocalStore local = LocalStore.open(dir, LocalStore.Options.defaults()); Store store = local.asStore()) {
            Pack meta = metadataPack(local);
            long windows = (meta.packSize() + WindowHints.WINDOW - 1) / WindowHints.WINDOW;
            assertThat(windows).as("the test's metadata spans several windows").isGreaterThanOrEqualTo(5);
            meta.hintMetadataAgainAfter(Long.MAX_VALUE); // however slow the machine: hints stand throughout

            assertThat(store.directories().get(digests.get(0))).contains(stored.get(0));
            assertThat(meta.metadataHintsGiven()).as("the first read hints its window and the next").isEqualTo(2);

            for (int n = digests.size() - 1; n >= 0; n--) { // backwards, then forwards: each window still once
                assertThat(store.directories().get(digests.get(n))).contains(stored.get(n));
            }
            for (int n = 0; n < digests.size(); n++) {
                assertThat(store.directories().get(digests.get(n))).contains(stored.get(n));
            }
            assertThat(meta.metadataHintsGiven()).as("one hint per window of the pack").isEqualTo((int) windows);
            assertThat(store.directories().get(Blake3.digest(new byte[] {1}))).isEqualTo(Optional.empty());
        }
    }

    @Test
    void aWindowIsHintedAgainOnceItsHintHasStoodItsTime() throws IOException {
        Path dir = tmp.resolve("store");
        List<B3Digest> digests = new ArrayList<>();
        try (LocalStore local = LocalStore.open(dir, LocalStore.Options.defaults()); Store store = local.asStore()) {
            for (int n = 0; n < 20; n++) {
                digests.add(store.directories().put(directory(n)));
            }
        }
        try (LocalStore local = LocalStore.open(dir, LocalStore.Options.defaults()); Store store = local.asStore()) {
            Pack meta = metadataPack(local);
            meta.hintMetadataAgainAfter(Long.MAX_VALUE);
            assertThat(store.directories().get(digests.get(0))).isPresent();
            assertThat(store.directories().get(digests.get(0))).isPresent();
            assertThat(meta.metadataHintsGiven()).as("the window and the next, once").isEqualTo(2);

            meta.hintMetadataAgainAfter(0); // every hint has stood its time: the page cache may have been dropped
            assertThat(store.directories().get(digests.get(0))).isPresent();
            assertThat(meta.metadataHintsGiven()).as("hinted again").isEqualTo(4);

            meta.hintMetadataAgainAfter(Long.MAX_VALUE);
            assertThat(store.directories().get(digests.get(1))).isPresent();
            assertThat(meta.metadataHintsGiven()).as("the same windows, within their time").isEqualTo(4);
        }
    }

    /** The store's only pack with Directories in it. */
    private static Pack metadataPack(LocalStore local) {
        Pack found = null;
        for (Pack p : local.packStore().packs().packs()) {
            for (int i = 0; i < p.count(); i++) {
                Location l = p.entry(i);
                if (l != null && l.kind() == ObjectKind.DIRECTORY) {
                    assertThat(found).as("one metadata pack").isIn(null, p);
                    found = p;
                }
            }
        }
        assertThat(found).as("a published metadata pack").isNotNull();
        return found;
    }
}

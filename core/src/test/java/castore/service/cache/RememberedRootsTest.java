package castore.service.cache;

import static org.assertj.core.api.Assertions.assertThat;

import castore.hash.Blake3;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.Name;
import castore.model.Node;
import castore.service.Store;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import castore.service.memory.MemoryRootService;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A remote catalog's last answers kept in a cache directory, on a real disk. */
class RememberedRootsTest {
    static final String ADDRESS = "grpc+unix:///run/castore.sock";
    final MemoryRootService catalog = new MemoryRootService();
    final Name app = Name.of("app");
    final Node v1 = new FileNode(Blake3.digest(new byte[] {1}), 1, false);
    final Node v2 = new DirectoryNode(Blake3.digest(new byte[] {2}), 3);

    @TempDir
    Path cache;

    @Test
    void anAnswerIsKeptAcrossInstancesAndIsTheLatestOne() throws IOException {
        catalog.put(app, v1);
        var roots = RememberedRoots.under(cache, ADDRESS, catalog);
        assertThat(roots.lastKnown(app)).as("nothing asked yet").isEmpty();
        assertThat(roots.get(app)).contains(v1);
        assertThat(RememberedRoots.under(cache, ADDRESS, new MemoryRootService()).lastKnown(app)).contains(v1);

        catalog.put(app, v2);
        assertThat(roots.get(app)).contains(v2);
        assertThat(RememberedRoots.under(cache, ADDRESS, new MemoryRootService()).lastKnown(app)).contains(v2);
        assertThat(Files.readString(roots.directory().resolve("address"))).isEqualTo(ADDRESS + "\n");
    }

    @Test
    void anotherStoreSharingTheCacheDirectoryHasItsOwnAnswers() throws IOException {
        catalog.put(app, v1);
        RememberedRoots.under(cache, ADDRESS, catalog).get(app);
        var other = RememberedRoots.under(cache, "s3://bucket/prefix", new MemoryRootService());
        assertThat(other.lastKnown(app)).isEmpty();
    }

    @Test
    void aNameTheCatalogNoLongerHasOrRemovesIsForgotten() throws IOException {
        catalog.put(app, v1);
        var roots = RememberedRoots.under(cache, ADDRESS, catalog);
        roots.get(app);
        catalog.remove(app);
        assertThat(roots.get(app)).isEmpty();
        assertThat(roots.kept(app)).isFalse();
        assertThat(roots.lastKnown(app)).isEmpty();

        roots.put(app, v2);
        assertThat(catalog.get(app)).contains(v2);
        assertThat(roots.lastKnown(app)).contains(v2);
        assertThat(roots.remove(app)).isTrue();
        assertThat(roots.lastKnown(app)).isEmpty();
    }

    @Test
    void theSameAnswerAgainIsNotWrittenAgain() throws IOException {
        catalog.put(app, v1);
        var roots = RememberedRoots.under(cache, ADDRESS, catalog);
        roots.get(app);
        Path file = keptFile(roots);
        Object before = Files.readAttributes(file, BasicFileAttributes.class).fileKey();
        for (int i = 0; i < 3; i++) {
            roots.get(app);
        }
        assertThat(Files.readAttributes(file, BasicFileAttributes.class).fileKey()).as("not replaced").isEqualTo(before);
    }

    @Test
    void aDamagedOrMisplacedAnswerIsNoneAndIsDropped() throws IOException {
        catalog.put(app, v1);
        var roots = RememberedRoots.under(cache, ADDRESS, catalog);
        roots.get(app);
        Path file = keptFile(roots);
        Files.write(file, new byte[] {(byte) 0xff, 1, 2});
        var fresh = RememberedRoots.under(cache, ADDRESS, catalog);
        assertThat(fresh.lastKnown(app)).isEmpty();
        assertThat(file).doesNotExist();

        // Another name's answer under this name's file: not taken for it.
        Files.write(file, v1.toNodeProto(Name.of("other")).toByteArray());
        assertThat(RememberedRoots.under(cache, ADDRESS, catalog).lastKnown(app)).isEmpty();
    }

    @Test
    void aCacheDirectoryThatCannotBeWrittenCostsTheKeepingNotTheAnswer() throws IOException {
        catalog.put(app, v1);
        var roots = RememberedRoots.under(cache, ADDRESS, catalog);
        Path dir = roots.directory();
        Files.delete(dir.resolve("address"));
        Files.delete(dir);
        Files.writeString(dir, "not a directory");
        assertThat(roots.get(app)).contains(v1);
        assertThat(roots.lastKnown(app)).isEmpty();
    }

    @Test
    void theCliCacheKeepsTheAnswersOfARemoteStoreOnly() throws IOException {
        catalog.put(app, v1);
        Store remote = new Store(new MemoryBlobService(), new MemoryDirectoryService(), catalog);
        try (Store cached = StoreCache.apply(remote, java.util.Arrays.asList(ADDRESS, null, null), Optional.of(cache), 1 << 20)) {
            assertThat(cached.roots()).isInstanceOf(RememberedRoots.class);
            cached.roots().get(app);
            assertThat(cached.roots().lastKnown(app)).contains(v1);
        }
        Store local = new Store(new MemoryBlobService(), new MemoryDirectoryService(), catalog);
        try (Store cached = StoreCache.apply(local, List.of("/var/lib/castore"), Optional.of(cache.resolve("other")), 1 << 20)) {
            assertThat(cached.roots()).isSameAs(catalog);
        }
    }

    private Path keptFile(RememberedRoots roots) throws IOException {
        try (var files = Files.list(roots.directory())) {
            return files.filter(f -> !f.getFileName().toString().equals("address")).findFirst().orElseThrow();
        }
    }
}

package castore.fs;

import static org.assertj.core.api.Assertions.assertThat;

import castore.fuse.testing.Commands;
import castore.fuse.testing.MountFixture;
import castore.ingest.Importer;
import castore.model.Name;
import castore.model.Node;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Real trees of this machine imported into a store and compared through the mount. */
class ImportedTreeTest {
    /** Thousands of files (Python's library) and hundreds of symlinks (the time zone database). */
    static final List<String> SOURCES = List.of("/usr/lib/python3", "/usr/share/zoneinfo");

    @TempDir
    Path tmp;

    @Test
    void anImportedTreeReadsBackIdenticalThroughTheMount() throws Exception {
        try (Store store = Stores.open("memory://", StoreOptions.DEFAULT)) {
            var importer = new Importer(store.blobs(), store.directories(), 2);
            for (String source : SOURCES) {
                Node node = importer.importPath(source.getBytes(StandardCharsets.UTF_8));
                store.roots().put(Name.of(Path.of(source).getFileName().toString()), node);
            }
            assertThat(importer.stats().files()).isGreaterThan(3000);
            var fs = new CastoreFileSystem(store, FsOptions.defaults());
            try (var m = MountFixture.mount(Files.createDirectories(tmp.resolve("m")), fs)) {
                for (String source : SOURCES) {
                    String mounted = m.path(Path.of(source).getFileName().toString()).toString();
                    Commands.run("diff", "-r", "--no-dereference", source, mounted).assertOk();
                    assertThat(listing(mounted)).isEqualTo(listing(source));
                    assertThat(executables(mounted)).isEqualTo(executables(source));
                }
            }
        }
    }

    /** Every entry's type, path and symlink target, sorted. */
    static String listing(String root) {
        return Commands.run("sh", "-c", "cd " + root + " && find . -printf '%y %p %l\\n' | LC_ALL=C sort").assertOk().stdout();
    }

    static String executables(String root) {
        return Commands.run("sh", "-c", "cd " + root + " && find . -type f -perm -u+x | LC_ALL=C sort").assertOk().stdout();
    }
}

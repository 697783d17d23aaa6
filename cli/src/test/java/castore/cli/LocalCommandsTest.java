package castore.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** Every command on the embedded local store in a temporary directory. */
class LocalCommandsTest extends CommandsTest {
    @Override
    String storeAddress() {
        return tmp.resolve("store").toString();
    }

    /**
     * A tree that holds the store (or the cache) leaves it out and says so: importing ~ with the
     * default store under ~/.local/share read the packs being written and failed ("it grew while
     * it was read"), and before session 35 stored torn copies of them. Importing the store's own
     * directory is a bad argument.
     */
    @Test
    void importLeavesOutTheStoresOwnDirectoriesAndRefusesToImportThem() throws IOException {
        assertThat(cli.run("import", tree.toString()).exit()).isZero(); // the store exists, with packs
        Path cache = tmp.resolve("cache");
        Files.createDirectories(cache);
        Cli.Result all = cli.run("import", "--cache", cache.toString(), "--name", "all", tmp.toString());
        assertThat(all.exit()).as(all.stderr()).isZero();
        assertThat(all.stderr()).contains(
                "castore: left out " + tmp.resolve("store") + ": the store keeps its data there\n",
                "castore: left out " + cache + ": the store keeps its data there\n");
        java.util.List<String> expected;
        try (var entries = Files.list(tmp)) {
            expected = entries.map(p -> p.getFileName().toString()).filter(n -> !n.equals("store") && !n.equals("cache")).sorted().toList();
        }
        assertThat(expected).contains("tree");
        assertThat(cli.run("ls", "all").lines()).extracting(line -> line.split("\t")[0]).containsExactlyElementsOf(expected);
        assertThat(cli.run("verify").exit()).isZero();

        Cli.Result store = cli.run("import", "--name", "s", tmp.resolve("store").toString());
        assertThat(store.exit()).isEqualTo(4);
        assertThat(store.stderr()).isEqualTo("castore: cannot import " + tmp.resolve("store") + ": it is where the store keeps its data\n");
        assertThat(cli.run("roots").lines()).extracting(line -> line.split("\t")[0]).containsExactly("all", "tree");
    }

    /** A local store on a slow or network file system can have a cache on a fast disk in front of it, as a remote has. */
    @Test
    void aCacheInFrontOfALocalStoreKeepsWhatWasRead() throws IOException {
        assertThat(cli.run("import", tree.toString()).exit()).isZero();
        Path cache = tmp.resolve("cache");
        Cli.Result cat = cli.run("cat", "--cache", cache.toString(), "tree/sub/deeper/big.bin");
        assertThat(cat.exit()).as(cat.stderr()).isZero();
        assertThat(cat.stdoutBytes()).isEqualTo(big);
        long cached;
        try (var segments = Files.list(cache.resolve("segments"))) {
            cached = segments.mapToLong(segment -> segment.toFile().length()).sum();
        }
        assertThat(cached).as("bytes in the cache's segments").isGreaterThanOrEqualTo(big.length);
    }
}

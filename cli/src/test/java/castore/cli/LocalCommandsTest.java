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

package castore.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * gc with a service taken from another store: the live set comes from one store's roots, the
 * sweep would be another's, whose own roots it knows nothing of.
 */
class GcServiceOverrideTest {
    @TempDir
    Path tmp;

    @Test
    void gcWithAServiceOfAnotherStoreIsRefusedAndThatStoreKeepsItsData() throws Exception {
        String a = tmp.resolve("a").toString();
        String b = tmp.resolve("b").toString();
        Path mine = Files.createDirectories(tmp.resolve("mine"));
        Files.writeString(mine.resolve("f"), "only in store a");
        Path theirs = Files.createDirectories(tmp.resolve("theirs"));
        Files.writeString(theirs.resolve("g"), "only in store b, under its own root");
        assertThat(Cli.raw("import", "--store", a, "--quiet", mine.toString()).exit()).isZero();
        assertThat(Cli.raw("import", "--store", b, "--quiet", theirs.toString()).exit()).isZero();

        for (String option : new String[] {"--blob-service", "--directory-service"}) {
            Cli.Result gc = Cli.raw("gc", "--store", a, option, b);
            assertThat(gc.exit()).as(gc.stderr()).isEqualTo(ExitCodes.INVALID);
            assertThat(gc.stderr()).contains("gc").contains(option);
        }
        Cli.Result cat = Cli.raw("cat", "--store", b, "theirs/g");
        assertThat(cat.exit()).as(cat.stderr()).isZero();
        assertThat(cat.stdout()).isEqualTo("only in store b, under its own root");
        assertThat(Cli.raw("verify", "--store", b).exit()).isZero();
        assertThat(Cli.raw("gc", "--store", a).exit()).isZero();
    }
}

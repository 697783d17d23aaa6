package castore.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A store address that names no store: commands that read (and rm, gc) fail with one line
 * naming the path and create nothing; import creates the store.
 */
class MissingStoreTest {
    @TempDir
    Path tmp;

    private Path missing() {
        return tmp.resolve("no-store-here");
    }

    private void assertMissingStore(Cli.Result r, Path store) {
        assertThat(r.exit()).as(r.stderr()).isEqualTo(ExitCodes.NOT_FOUND);
        assertThat(r.stderr()).isEqualTo("castore: no castore store at " + store
                + ": the directory does not exist (castore import creates it)\n");
        assertThat(r.stdoutBytes()).isEmpty();
        assertThat(store).as("nothing created").doesNotExist();
    }

    @Test
    void readingCommandsFailOnAStoreThatDoesNotExist() {
        Cli cli = new Cli(missing().toString());
        assertMissingStore(cli.run("roots"), missing());
        assertMissingStore(cli.run("ls", "tree"), missing());
        assertMissingStore(cli.run("cat", "tree/file"), missing());
        assertMissingStore(cli.run("stat", "tree"), missing());
        assertMissingStore(cli.run("verify"), missing());
        assertMissingStore(cli.run("export", "tree", tmp.resolve("out").toString()), missing());
        assertThat(tmp.resolve("out")).doesNotExist();
    }

    @Test
    void usageErrorsComeBeforeTheStoreIsOpened() {
        for (String command : new String[] {"ls", "cat", "stat"}) {
            Cli.Result r = Cli.raw(command, "--store", missing().toString());
            assertThat(r.exit()).as(command + ": " + r.stderr()).isEqualTo(ExitCodes.USAGE);
            assertThat(r.stderr()).contains("give exactly one of ROOT[/PATH], --blob DIGEST, --directory DIGEST");
            assertThat(Cli.raw(command, "--store", missing().toString(), "--blob", "nonsense").exit()).isEqualTo(ExitCodes.INVALID);
        }
        assertThat(missing()).as("nothing created").doesNotExist();
    }

    @Test
    void rmAndGcFailOnAStoreThatDoesNotExist() {
        Cli cli = new Cli(missing().toString());
        assertMissingStore(cli.run("rm", "tree"), missing());
        assertMissingStore(cli.run("gc"), missing());
    }

    @Test
    void mountFailsOnAStoreThatDoesNotExistBeforeMounting() throws IOException {
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        assertMissingStore(Cli.raw("mount", "--store", missing().toString(), mnt.toString()), missing());
    }

    @Test
    void readOnlyDaemonFailsOnAStoreThatDoesNotExist() {
        assertMissingStore(Cli.raw("daemon", "--read-only", "--listen", "127.0.0.1:0", "--store", missing().toString()), missing());
    }

    @Test
    void localUrlAndServiceOverridesFailTheSameWay() {
        assertMissingStore(Cli.raw("roots", "--store", "local://" + missing()), missing());
        assertMissingStore(Cli.raw("ls", "--store", "memory://", "--blob-service", "local://" + missing(),
                "--blob", "b3:" + "A".repeat(43) + "="), missing());
    }

    @Test
    void readingCommandsRefuseAnEmptyDirectoryAndLeaveItEmpty() throws IOException {
        Path empty = Files.createDirectory(tmp.resolve("empty"));
        Cli.Result r = Cli.raw("roots", "--store", empty.toString());
        assertThat(r.exit()).isEqualTo(ExitCodes.INVALID);
        assertThat(r.stderr()).isEqualTo("castore: " + empty + " is not a castore store (it is empty; castore import initialises it)\n");
        try (Stream<Path> left = Files.list(empty)) {
            assertThat(left).isEmpty();
        }
    }

    @Test
    void anImportOfAPathThatCannotBeImportedCreatesNoStore() throws Exception {
        Cli.Result r = new Cli(missing().toString()).run("import", tmp.resolve("typo").toString());
        assertThat(r.exit()).as(r.stderr()).isEqualTo(ExitCodes.NOT_FOUND);
        assertThat(r.stderr()).isEqualTo("castore: cannot stat " + tmp.resolve("typo") + ": No such file or directory\n");
        assertThat(missing()).as("nothing created").doesNotExist();

        Path fifo = tmp.resolve("fifo");
        assertThat(new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor()).isZero();
        r = new Cli(missing().toString()).run("import", fifo.toString());
        assertThat(r.exit()).as(r.stderr()).isEqualTo(ExitCodes.INVALID);
        assertThat(missing()).as("nothing created").doesNotExist();
    }

    @Test
    void importCreatesTheStoreAndThenReadingCommandsWork() throws IOException {
        Path tree = Files.createDirectory(tmp.resolve("tree"));
        Files.writeString(tree.resolve("file"), "content");
        Path store = tmp.resolve("a/new/store");
        Cli cli = new Cli(store.toString());
        Cli.Result imported = cli.run("import", "--quiet", tree.toString());
        assertThat(imported.exit()).as(imported.stderr()).isZero();
        assertThat(store.resolve("castore-store")).isRegularFile();
        assertThat(cli.run("roots").lines()).singleElement().asString().startsWith("tree\t");
        assertThat(cli.run("cat", "tree/file").stdout()).isEqualTo("content");
        assertThat(cli.run("rm", "tree").exit()).isZero();
        assertThat(cli.run("gc").exit()).isZero();
        assertThat(cli.run("roots").lines()).isEqualTo(List.of());
    }
}

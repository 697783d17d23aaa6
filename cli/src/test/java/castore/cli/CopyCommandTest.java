package castore.cli;

import static org.assertj.core.api.Assertions.assertThat;

import castore.fuse.testing.Commands;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code castore copy} between local stores on disk: what arrives, what is sent again, and bad command lines. */
class CopyCommandTest {
    @TempDir
    Path tmp;

    Path tree;
    Cli source;
    /** What the import printed: NAME<TAB>DIGEST, as a copy prints it. */
    String imported;
    String dest;

    @BeforeEach
    void setUp() throws IOException {
        tree = Files.createDirectory(tmp.resolve("tree"));
        SplittableRandom random = new SplittableRandom(5);
        for (int d = 0; d < 5; d++) {
            Path dir = Files.createDirectories(tree.resolve("d" + d).resolve("sub"));
            for (int f = 0; f < 10; f++) {
                byte[] data = new byte[random.nextInt(0, 3000)];
                random.nextBytes(data);
                Files.write(dir.resolve("f" + f), data);
            }
        }
        byte[] big = new byte[3 << 20];
        random.nextBytes(big);
        Files.write(tree.resolve("big.bin"), big);
        Files.createSymbolicLink(tree.resolve("link"), Path.of("d0/sub/f1"));
        source = new Cli(tmp.resolve("source").toString());
        Cli.Result result = source.run("import", "--quiet", tree.toString());
        assertThat(result.exit()).as(result.stderr()).isZero();
        imported = result.stdout();
        dest = tmp.resolve("dest").toString();
    }

    private void exportAndDiff(String store, String what, Path expected) {
        Path out = tmp.resolve("export-" + what.replace('/', '-'));
        Cli.Result exported = new Cli(store).run("export", "--quiet", what, out.toString());
        assertThat(exported.exit()).as(exported.stderr()).isZero();
        Commands.Result diff = Commands.run("diff", "-r", "--no-dereference", expected.toString(), out.toString());
        assertThat(diff.exitCode()).as(diff.stdout() + diff.stderr()).isZero();
    }

    @Test
    void aTreeCopiedToANewStoreIsThereWholeAndCopyingItAgainSendsNothing() {
        Cli.Result copied = source.run("copy", "--to", dest, "tree");
        assertThat(copied.exit()).as(copied.stderr()).isZero();
        assertThat(copied.stdout()).isEqualTo(imported).startsWith("tree\tb3:");
        // 11 directories: tree, d0-d4, d0/sub-d4/sub.
        assertThat(copied.stderr()).startsWith("copied 1 root: 11 directories sent (of 11 reached), ");
        exportAndDiff(dest, "tree", tree);
        assertThat(new Cli(dest).run("verify").exit()).isZero();

        Cli.Result again = source.run("copy", "--to", dest, "tree");
        assertThat(again.exit()).as(again.stderr()).isZero();
        assertThat(again.stdout()).isEqualTo(copied.stdout());
        assertThat(again.stderr()).startsWith("copied 1 root: 0 directories sent (of 1 reached), 0 blobs sent (of 0): 0 B, 0 B new");
    }

    /** A second version of the tree sends the directories on the changed path and the new file, and re-points the name. */
    @Test
    void aChangedTreeSendsOnlyWhatChanged() throws IOException {
        assertThat(source.run("copy", "--quiet", "--to", dest, "tree").exit()).isZero();
        Files.writeString(tree.resolve("d3/sub/f4"), "changed");
        assertThat(source.run("import", "--quiet", tree.toString()).exit()).isZero();
        Cli.Result copied = source.run("copy", "--to", dest, "tree");
        assertThat(copied.exit()).as(copied.stderr()).isZero();
        // tree, d3 and d3/sub are new; d0-d2, d4 and big.bin are found there.
        assertThat(copied.stderr()).startsWith("copied 1 root: 3 directories sent (of 7 reached), 1 blob sent (of ");
        exportAndDiff(dest, "tree", tree);
    }

    @Test
    void aPathBelowARootIsCopiedUnderItsLastNameOrTheNameGiven() {
        Cli.Result copied = source.run("copy", "--quiet", "--to", dest, "tree/d2", "tree/big.bin", "tree/link");
        assertThat(copied.exit()).as(copied.stderr()).isZero();
        assertThat(copied.lines()).extracting(l -> l.split("\t")[0]).containsExactly("d2", "big.bin", "link");
        assertThat(copied.lines().get(2)).isEqualTo("link\td0/sub/f1");
        exportAndDiff(dest, "d2", tree.resolve("d2"));
        assertThat(new Cli(dest).run("cat", "big.bin").stdoutBytes()).isEqualTo(readAll(tree.resolve("big.bin")));

        Cli.Result named = source.run("copy", "--quiet", "--to", dest, "--name", "other", "tree/d4/sub");
        assertThat(named.exit()).as(named.stderr()).isZero();
        exportAndDiff(dest, "other", tree.resolve("d4/sub"));
    }

    @Test
    void allCopiesEveryRootUnderItsName() throws IOException {
        Path second = Files.createDirectory(tmp.resolve("second"));
        Files.writeString(second.resolve("x"), "x");
        assertThat(source.run("import", "--quiet", second.toString()).exit()).isZero();
        Cli.Result copied = source.run("copy", "--quiet", "--to", dest, "--all");
        assertThat(copied.exit()).as(copied.stderr()).isZero();
        assertThat(new Cli(dest).run("roots").stdout()).isEqualTo(source.run("roots").stdout());
        exportAndDiff(dest, "second", second);
    }

    @Test
    void aMissingRootIsNotFoundAndNothingIsCreated() {
        Cli.Result missing = source.run("copy", "--to", dest, "tree", "nope");
        assertThat(missing.exit()).isEqualTo(ExitCodes.NOT_FOUND);
        assertThat(missing.stderr()).isEqualTo("castore: no root named 'nope'\n");
        assertThat(Files.exists(Path.of(dest))).as("the destination is opened only once the sources are found").isFalse();
    }

    @Test
    void badCommandLinesAreRefused() {
        assertRefused(source.run("copy", "tree"), ExitCodes.USAGE, "Missing required option: '--to=ADDR'");
        assertRefused(source.run("copy", "--to", dest), ExitCodes.USAGE, "give ROOT[/PATH] arguments or --all, not both or neither");
        assertRefused(source.run("copy", "--to", dest, "--all", "tree"), ExitCodes.USAGE, "not both or neither");
        assertRefused(source.run("copy", "--to", dest, "--name", "x", "tree", "tree/d1"), ExitCodes.USAGE,
                "--name goes with a single ROOT[/PATH]");
        assertRefused(source.run("copy", "--to", dest, "--threads", "0", "tree"), ExitCodes.USAGE, "--threads must be between 1 and 64");
        assertRefused(source.run("copy", "--to", tmp.resolve("source").toString(), "tree"), ExitCodes.INVALID,
                "--to names the store copied from");
        assertRefused(source.run("copy", "--to", "local://" + tmp.resolve("source/"), "tree"), ExitCodes.INVALID,
                "--to names the store copied from");
        assertRefused(source.run("copy", "--to", "memory:", "tree"), ExitCodes.INVALID, "invalid store address 'memory:'");
        assertRefused(source.run("copy", "--to", dest, "tree", "tree/d1/sub/../"), ExitCodes.INVALID, "invalid name");
        assertRefused(source.run("copy", "--to", dest, "tree/d1", "tree/d2/../d1"), ExitCodes.INVALID, "invalid name");
        assertRefused(source.run("copy", "--to", dest, "tree/d1/sub", "tree/d2/sub"), ExitCodes.INVALID,
                "'tree/d1/sub' and 'tree/d2/sub' would both be named 'sub': copy them one at a time with --name");
        assertThat(Files.exists(Path.of(dest))).isFalse();
    }

    private static void assertRefused(Cli.Result result, int exit, String message) {
        assertThat(result.exit()).as(result.stderr()).isEqualTo(exit);
        assertThat(result.stderr()).startsWith("castore: ").contains(message);
        assertThat(result.stdout()).isEmpty();
    }

    private static byte[] readAll(Path file) {
        try {
            return Files.readAllBytes(file);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}

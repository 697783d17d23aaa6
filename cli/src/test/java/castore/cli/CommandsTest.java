package castore.cli;

import static org.assertj.core.api.Assertions.assertThat;

import castore.hash.Blake3;
import castore.model.B3Digest;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.SplittableRandom;
import java.util.UUID;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every command in-process, on one store per test. */
class CommandsTest {
    @TempDir
    Path tmp;

    Cli cli;
    Path tree;
    byte[] big;

    /** The store under test; the local-store subclass overrides it. */
    String storeAddress() {
        return "testmem://" + UUID.randomUUID();
    }

    @BeforeEach
    void setUp() throws IOException {
        cli = new Cli(storeAddress());
        tree = Files.createDirectory(tmp.resolve("tree"));
        Files.writeString(tree.resolve("hello.txt"), "hello\n");
        Files.createDirectories(tree.resolve("sub/deeper"));
        Path run = Files.writeString(tree.resolve("sub/run.sh"), "#!/bin/sh\necho hi\n");
        Files.setPosixFilePermissions(run, PosixFilePermissions.fromString("rwxr-xr-x"));
        big = new byte[3 << 20];
        new SplittableRandom(1).nextBytes(big);
        Files.write(tree.resolve("sub/deeper/big.bin"), big);
        Files.createSymbolicLink(tree.resolve("link"), Path.of("hello.txt"));
        Files.createDirectory(tree.resolve("empty"));
    }

    private static B3Digest b3(byte[] data) {
        return Blake3.digest(data);
    }

    /**
     * Python bytecode that records its source's mtime is stale on a mount (every time the epoch):
     * an import says so, with a count, an example and the fix, also with --quiet; hash-based
     * bytecode is not counted.
     */
    @Test
    void importWarnsOfPythonBytecodeThatDependsOnMtimes() throws IOException {
        Path py = Files.createDirectories(tmp.resolve("py/__pycache__"));
        byte[] timestamped = {(byte) 0xa7, 0x0d, 0x0d, 0x0a, 0, 0, 0, 0, 0x24, 0x44, 0x0f, 0x68, 24, 0, 0, 0};
        Files.write(py.resolve("a.cpython-311.pyc"), timestamped);
        byte[] hashed = timestamped.clone();
        hashed[4] = 1;
        Files.write(py.resolve("b.cpython-311.pyc"), hashed);
        Cli.Result imported = cli.run("import", "--quiet", tmp.resolve("py").toString());
        assertThat(imported.exit()).as(imported.stderr()).isZero();
        assertThat(imported.stderr()).isEqualTo("castore: warning: 1 Python bytecode file (.pyc, e.g. " + py.resolve("a.cpython-311.pyc")
                + ") depends on its source's modification time; a mount shows every time as the epoch, so Python will compile "
                + "those modules again at each start. Compile them with 'python3 -m compileall -f --invalidation-mode "
                + "unchecked-hash' before importing (README, \"Times\").\n");
        assertThat(cli.run("import", "--quiet", tree.toString()).stderr()).isEmpty();
    }

    @Test
    void importPrintsNameAndDigestAndReimportStoresNothingNew() {
        Cli.Result first = cli.run("import", tree.toString());
        assertThat(first.exit()).as(first.stderr()).isZero();
        assertThat(first.lines()).hasSize(1);
        assertThat(first.lines().getFirst()).matches("tree\tb3:[A-Za-z0-9+/]{43}=");
        assertThat(first.stderr()).startsWith("imported 3 files, 4 directories, 1 symlink: 3.0 MiB read, 3.0 MiB new, in ");

        Cli.Result again = cli.run("import", "--name", "copy", tree.toString() + "/");
        assertThat(again.exit()).isZero();
        assertThat(again.stdout()).isEqualTo(first.stdout().replace("tree\t", "copy\t"));
        assertThat(again.stderr()).contains("3.0 MiB read, 0 B new");
    }

    @Test
    void theSummarySaysHowMuchOfWhatWasReadWereHoles() throws IOException {
        Path sparse = tmp.resolve("disk.img");
        try (var file = new java.io.RandomAccessFile(sparse.toFile(), "rw")) {
            file.write("boot".getBytes(StandardCharsets.UTF_8));
            file.setLength(8 << 20); // the rest a hole
        }
        Cli.Result r = cli.run("import", sparse.toString());
        assertThat(r.exit()).as(r.stderr()).isZero();
        assertThat(r.stderr()).matches("imported 1 file, 0 directories, 0 symlinks: 8\\.0 MiB read \\([0-9.]+ MiB of it holes, not read\\), "
                + "\\S+ \\S+ new, in .*\n");
        assertThat(cli.run("import", tree.toString()).stderr()).as("no holes, nothing said").doesNotContain("holes");
    }

    @Test
    void importOfFileAndSymlinkRoots() throws IOException {
        Cli.Result file = cli.run("import", tree.resolve("hello.txt").toString());
        assertThat(file.stdout()).isEqualTo("hello.txt\t" + b3("hello\n".getBytes(StandardCharsets.UTF_8)) + "\n");
        Cli.Result link = cli.run("import", "--name", "l", tree.resolve("link").toString());
        assertThat(link.stdout()).isEqualTo("l\thello.txt\n");
        assertThat(cli.run("roots").lines()).containsExactly(
                "hello.txt\tfile\t" + b3("hello\n".getBytes(StandardCharsets.UTF_8)) + "\t6",
                "l\tsymlink\thello.txt\t9");
    }

    @Test
    void importUnderAnExistingNameRepointsIt() throws IOException {
        cli.run("import", "--name", "x", tree.resolve("hello.txt").toString());
        cli.run("import", "--name", "x", tree.resolve("sub/run.sh").toString());
        assertThat(cli.run("roots").lines()).singleElement().asString().startsWith("x\texecutable\t");
        assertThat(cli.run("cat", "x").stdout()).isEqualTo("#!/bin/sh\necho hi\n");
    }

    @Test
    void severalPathsAtOnce() {
        Cli.Result r = cli.run("import", tree.resolve("sub").toString(), tree.resolve("empty").toString());
        assertThat(r.exit()).isZero();
        assertThat(r.lines()).hasSize(2);
        assertThat(r.lines().get(0)).startsWith("sub\tb3:");
        assertThat(r.lines().get(1)).isEqualTo("empty\t" + castore.model.Directory.empty().digest());
    }

    @Test
    void lsStatCatExport() throws IOException {
        cli.run("import", tree.toString());
        assertThat(cli.run("ls", "tree").lines()).satisfiesExactly(
                l -> assertThat(l).startsWith("empty\tdirectory\tb3:").endsWith("\t0"),
                l -> assertThat(l).isEqualTo("hello.txt\tfile\t" + b3("hello\n".getBytes(StandardCharsets.UTF_8)) + "\t6"),
                l -> assertThat(l).isEqualTo("link\tsymlink\thello.txt\t9"),
                l -> assertThat(l).startsWith("sub\tdirectory\tb3:").endsWith("\t3"));
        assertThat(cli.run("ls", "tree/sub/run.sh").lines()).singleElement().asString().startsWith("run.sh\texecutable\tb3:");

        Cli.Result cat = cli.run("cat", "tree//sub/deeper/big.bin");
        assertThat(cat.exit()).isZero();
        assertThat(cat.stdoutBytes()).isEqualTo(big);

        Cli.Result stat = cli.run("stat", "tree/sub/deeper/big.bin");
        assertThat(stat.lines()).startsWith("path: tree/sub/deeper/big.bin", "kind: file", "digest: " + b3(big),
                "size: " + big.length, "executable: no");
        assertThat(stat.stdout()).containsPattern("chunks: [0-9]+\n  b3:");
        assertThat(cli.run("stat", "tree/link").lines()).containsExactly("path: tree/link", "kind: symlink", "target: hello.txt", "size: 9");
        assertThat(cli.run("stat", "tree").lines()).contains("kind: directory", "size: 7", "entries: 4");

        Path out = tmp.resolve("out");
        Cli.Result export = cli.run("export", "tree/sub", out.toString());
        assertThat(export.exit()).as(export.stderr()).isZero();
        assertThat(Files.readAllBytes(out.resolve("deeper/big.bin"))).isEqualTo(big);
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(out.resolve("run.sh")))).isEqualTo("rwxr-xr-x");
    }

    @Test
    void exportWritesBlocksOfZerosAsHolesUnlessNoSparse() throws Exception {
        byte[] image = new byte[4 << 20];
        image[0] = 1;
        image[image.length - 1] = 2; // data at both ends, 4 MiB of zeros between
        Files.write(tmp.resolve("image.bin"), image);
        assertThat(cli.run("import", tmp.resolve("image.bin").toString()).exit()).isZero();

        Cli.Result sparse = cli.run("export", "image.bin", tmp.resolve("sparse.bin").toString());
        assertThat(sparse.exit()).as(sparse.stderr()).isZero();
        assertThat(Files.readAllBytes(tmp.resolve("sparse.bin"))).isEqualTo(image);
        assertThat(allocatedBytes(tmp.resolve("sparse.bin"))).isLessThan(1 << 20);

        Cli.Result full = cli.run("export", "--no-sparse", "image.bin", tmp.resolve("full.bin").toString());
        assertThat(full.exit()).as(full.stderr()).isZero();
        assertThat(Files.readAllBytes(tmp.resolve("full.bin"))).isEqualTo(image);
        assertThat(allocatedBytes(tmp.resolve("full.bin"))).isGreaterThanOrEqualTo(image.length);
    }

    /** Bytes a file takes on disk (st_blocks), from stat(1): java.nio does not give them. */
    private static long allocatedBytes(Path file) throws Exception {
        Process p = new ProcessBuilder("stat", "-c", "%b %B", file.toString()).redirectErrorStream(true).start();
        String[] out = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).trim().split(" ");
        assertThat(p.waitFor()).isZero();
        return Long.parseLong(out[0]) * Long.parseLong(out[1]);
    }

    @Test
    void selectByDigest() {
        cli.run("import", tree.toString());
        String digest = b3("hello\n".getBytes(StandardCharsets.UTF_8)).toString();
        assertThat(cli.run("cat", "--blob", digest).stdout()).isEqualTo("hello\n");
        assertThat(cli.run("cat", "--blob", b3("hello\n".getBytes(StandardCharsets.UTF_8)).toHex()).stdout()).isEqualTo("hello\n");
        String dirDigest = cli.run("ls", "tree").lines().get(3).split("\t")[2];
        assertThat(cli.run("ls", "--directory", dirDigest).lines()).hasSize(2);
    }

    @Test
    void rmRemovesOnlyTheName() {
        cli.run("import", tree.toString());
        cli.run("import", "--name", "other", tree.resolve("sub").toString());
        Cli.Result rm = cli.run("rm", "tree");
        assertThat(rm.exit()).isZero();
        assertThat(cli.run("roots").lines()).singleElement().asString().startsWith("other\t");
        assertThat(cli.run("cat", "other/deeper/big.bin").stdoutBytes()).isEqualTo(big);
        Cli.Result again = cli.run("rm", "tree");
        assertThat(again.exit()).isEqualTo(ExitCodes.NOT_FOUND);
        assertThat(again.stderr()).isEqualTo("castore: no root named 'tree'\n");
    }

    @Test
    void helpAndVersionOnEveryCommand() {
        for (String command : new String[] {"import", "export", "roots", "ls", "cat", "stat", "rm", "verify", "gc", "mount", "daemon"}) {
            Cli.Result help = Cli.raw(command, "--help");
            assertThat(help.exit()).as(command).isZero();
            assertThat(help.stdout()).startsWith("Usage: castore " + command);
            // Every command accepts --version: it printed nothing, with exit 0.
            Cli.Result version = Cli.raw(command, "--version");
            assertThat(version.exit()).as(command).isZero();
            assertThat(version.stdout()).as(command).isEqualTo(Cli.raw("--version").stdout());
        }
        assertThat(Cli.raw("--version").stdout()).startsWith("castore ");
        assertThat(Cli.raw("help", "import").stdout()).startsWith("Usage: castore import");
    }

    @Test
    void helpListsEveryCommandAndATypoIsAUsageError() {
        // Main registers only the subcommand a command line names; without one, all of them.
        String help = Cli.raw("--help").stdout();
        for (String command : new String[] {"import", "export", "roots", "ls", "cat", "stat", "rm", "verify", "gc", "mount", "daemon", "help"}) {
            assertThat(help).as(command).containsPattern("(?m)^  " + command + " ");
        }
        // Each entry (with its wrapped lines) is whole sentences, not a description cut at its first line.
        String list = help.substring(help.indexOf("Commands:"));
        for (String entry : list.split("\\R(?=  \\S)")) {
            if (!entry.startsWith("Commands:")) {
                assertThat(entry.strip()).as(entry).endsWith(".");
            }
        }
        Cli.Result typo = Cli.raw("lss", "tree");
        assertThat(typo.exit()).isEqualTo(ExitCodes.USAGE);
        assertThat(typo.stderr()).startsWith("castore: Unmatched arguments from index 0: 'lss', 'tree'");
        assertThat(Cli.raw().exit()).isEqualTo(ExitCodes.USAGE);
    }

    @Test
    void verifyPassesOnAGoodStore() {
        cli.run("import", tree.toString());
        Cli.Result verify = cli.run("verify");
        assertThat(verify.exit()).as(verify.stdout() + verify.stderr()).isZero();
        assertThat(verify.stdout()).isEmpty();
        assertThat(verify.stderr()).startsWith("verified 1 root: 4 directories, 3 blobs (3.0 MiB)");
    }
}

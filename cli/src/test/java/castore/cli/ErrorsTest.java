package castore.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Bad input: one line on stderr naming the value, a documented exit code, nothing on stdout. */
class ErrorsTest {
    @TempDir
    Path tmp;

    Cli cli;
    Path tree;

    String storeAddress() {
        return "testmem://" + UUID.randomUUID();
    }

    @BeforeEach
    void setUp() throws IOException {
        cli = new Cli(storeAddress());
        tree = Files.createDirectory(tmp.resolve("tree"));
        Files.writeString(tree.resolve("f"), "data");
        Files.createSymbolicLink(tree.resolve("l"), Path.of("f"));
        assertThat(cli.run("import", "--quiet", tree.toString()).exit()).isZero();
    }

    private static void assertFails(Cli.Result r, int exit, String message) {
        assertThat(r.stderr()).isEqualTo("castore: " + message + "\n");
        assertThat(r.exit()).isEqualTo(exit);
        assertThat(r.stdout()).isEmpty();
    }

    /** A read trace that cannot be read or written fails the mount before it mounts. */
    @Test
    @Timeout(60)
    void aReadTraceThatCannotBeReadOrWrittenFailsTheMount() throws IOException {
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Path missing = tmp.resolve("missing.trace");
        assertFails(cli.run("mount", "--prefetch-trace", missing.toString(), mnt.toString()), ExitCodes.NOT_FOUND,
                "--prefetch-trace: no such file: " + missing);
        Path notATrace = Files.writeString(tmp.resolve("notes.txt"), "hello\n");
        assertFails(cli.run("mount", "--prefetch-trace", notATrace.toString(), mnt.toString()), ExitCodes.INVALID,
                "--prefetch-trace: " + notATrace + " is not a read trace: its first line is not 'castore-read-trace 1'");
        Path badLine = Files.writeString(tmp.resolve("bad.trace"), "castore-read-trace 1\nf b3:xyz 1\n");
        assertFails(cli.run("mount", "--prefetch-trace", badLine.toString(), mnt.toString()), ExitCodes.INVALID,
                "--prefetch-trace: " + badLine + " line 2: invalid digest 'b3:xyz': 2 bytes, expected 32");
        assertFails(cli.run("mount", "--record-trace", tmp.resolve("no/such/dir/t.trace").toString(), mnt.toString()),
                ExitCodes.NOT_FOUND, "--record-trace: no such directory: " + tmp.resolve("no/such/dir"));
        assertThat(Files.list(mnt)).isEmpty();
    }

    @Test
    void nonexistentPath() {
        assertFails(cli.run("import", tmp.resolve("missing").toString()), ExitCodes.NOT_FOUND,
                "cannot stat " + tmp + "/missing: No such file or directory");
    }

    @Test
    void specialFile() throws Exception {
        assertThat(new ProcessBuilder("mkfifo", tree.resolve("fifo").toString()).start().waitFor()).isZero();
        assertFails(cli.run("import", tree.toString()), ExitCodes.INVALID,
                "cannot import " + tree + "/fifo: it is a fifo (only regular files, directories and symlinks can be imported)");
        assertThat(cli.run("roots").lines()).singleElement().asString().startsWith("tree\t");
    }

    @Test
    void specialFilesAreLeftOutWithSkipSpecialAndNamedOnStderr() throws Exception {
        for (int i = 0; i < 22; i++) {
            assertThat(new ProcessBuilder("mkfifo", tree.resolve("fifo" + (char) ('a' + i)).toString()).start().waitFor()).isZero();
        }
        Cli.Result r = cli.run("import", "--skip-special", "--name", "skipped", tree.toString());
        assertThat(r.exit()).as(r.stderr()).isZero();
        List<String> leftOut = r.stderr().lines().filter(line -> line.startsWith("castore: left out ")).toList();
        assertThat(leftOut).hasSize(21).startsWith("castore: left out " + tree + "/fifoa: a fifo")
                .endsWith("castore: left out 2 more special files (22 devices, fifos and sockets in all)");
        assertThat(cli.run("ls", "skipped").lines()).extracting(line -> line.split("\t")[0]).containsExactly("f", "l");
        // The same tree without them: the same digest as the root imported before the fifos were made.
        assertThat(cli.run("roots").lines()).extracting(line -> line.split("\t", 3)[2])
                .containsOnly(cli.run("roots").lines().getFirst().split("\t", 3)[2]);
    }

    @Test
    void failedImportChangesNoRoot() throws Exception {
        String before = cli.run("roots").stdout();
        Files.writeString(tree.resolve("new"), "new");
        assertThat(new ProcessBuilder("mkfifo", tree.resolve("zfifo").toString()).start().waitFor()).isZero();
        Path other = Files.createDirectory(tmp.resolve("other"));
        Cli.Result r = cli.run("import", other.toString(), tree.toString());
        assertThat(r.exit()).isEqualTo(ExitCodes.INVALID);
        assertThat(cli.run("roots").stdout()).as("neither root set").isEqualTo(before);
    }

    @Test
    void invalidNames() {
        assertFails(cli.run("import", "--name", "a/b", tree.toString()), ExitCodes.INVALID, "invalid name 'a/b': contains '/'");
        assertFails(cli.run("import", "--name", "..", tree.toString()), ExitCodes.INVALID,
                "invalid name '..': '.' and '..' are reserved");
        assertFails(cli.run("import", "--name", "x".repeat(256), tree.toString()), ExitCodes.INVALID,
                "invalid name '" + "x".repeat(77) + "...': longer than 255 bytes");
        assertFails(cli.run("rm", ""), ExitCodes.INVALID, "invalid name '': empty");
        assertFails(cli.run("import", "/"), ExitCodes.INVALID, "cannot derive a root name from '/': use --name");
        assertFails(cli.run("import", tree.toString(), tmp.resolve("tree/").toString() + "/"), ExitCodes.INVALID,
                "'" + tree + "' and '" + tree + "/' would both be named 'tree': import them one at a time with --name");
    }

    @Test
    void argumentsStartingWithAnAtSignAreThemselvesNotFilesToRead() throws IOException {
        Path list = Files.writeString(tmp.resolve("list"), "tree\n");
        assertFails(cli.run("rm", "@" + list), ExitCodes.INVALID, "invalid name '@" + list + "': contains '/'");
        assertThat(cli.run("roots").lines()).singleElement().asString().startsWith("tree\t");
        assertFails(cli.run("import", "--name", "@" + tree, tree.toString()), ExitCodes.INVALID,
                "invalid name '@" + tree + "': contains '/'");
        assertThat(cli.run("import", "--quiet", "--name", "@v2", tree.toString()).stdout()).startsWith("@v2\t");
    }

    @Test
    void anErrorOnTheCommandsThreadIsOneLineToo() {
        Cli.Result r = Cli.raw("roots", "--store", "testoom://x");
        assertThat(r.stderr()).isEqualTo("castore: out of memory (raise it with CASTORE_JAVA_OPTS=-Xmx...)\n");
        assertThat(r.exit()).isEqualTo(ExitCodes.INTERNAL);
    }

    @Test
    void aPathWithANewlineIsEscapedInTheOneLineError() {
        Cli.Result r = cli.run("import", tmp.resolve("a\nb/x").toString(), tmp.resolve("c/x").toString());
        assertThat(r.exit()).isEqualTo(ExitCodes.INVALID);
        assertThat(r.stderr()).hasLineCount(1).contains("a\\nb/x");
    }

    @Test
    void aPathThroughAnExecutableSaysAnExecutable() throws IOException {
        Path run = Files.writeString(tmp.resolve("run"), "#!/bin/sh\n");
        Files.setPosixFilePermissions(run, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
        assertThat(cli.run("import", "--quiet", run.toString()).exit()).isZero();
        assertFails(cli.run("ls", "run/below"), ExitCodes.NOT_FOUND, "not a directory: run (it is an executable)");
    }

    @Test
    void invalidPaths() {
        assertFails(cli.run("ls", "tree/../x"), ExitCodes.INVALID, "invalid name '..': '.' and '..' are reserved");
        assertFails(cli.run("ls", "/"), ExitCodes.INVALID, "invalid path '/': expected ROOT or ROOT/PATH");
        assertFails(cli.run("ls", "nope"), ExitCodes.NOT_FOUND, "no root named 'nope'");
        assertFails(cli.run("cat", "tree/missing"), ExitCodes.NOT_FOUND, "no such file or directory: tree/missing");
        assertFails(cli.run("cat", "tree/f/below"), ExitCodes.NOT_FOUND, "not a directory: tree/f (it is a file)");
        assertFails(cli.run("cat", "tree"), ExitCodes.INVALID, "cannot cat tree: it is a directory");
        assertFails(cli.run("cat", "tree/l"), ExitCodes.INVALID, "cannot cat tree/l: it is a symlink to f");
    }

    @Test
    void invalidDigests() {
        Cli.Result bad = cli.run("cat", "--blob", "b3:n*pe");
        assertThat(bad.exit()).isEqualTo(ExitCodes.INVALID);
        assertThat(bad.stderr()).startsWith("castore: invalid digest 'b3:n*pe': ").hasLineCount(1);
        assertFails(cli.run("stat", "--directory", "abcd"), ExitCodes.INVALID,
                "invalid digest 'abcd': expected b3:<base64> or 64 hex digits");
        assertFails(cli.run("cat", "--blob", "b3:AAAA"), ExitCodes.INVALID, "invalid digest 'b3:AAAA': 3 bytes, expected 32");
        assertFails(cli.run("cat", "--blob", "00".repeat(32)), ExitCodes.NOT_FOUND,
                "blob b3:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= is not in the store");
        assertFails(cli.run("ls", "tree", "--blob", "00".repeat(32)), ExitCodes.USAGE,
                "give exactly one of ROOT[/PATH], --blob DIGEST, --directory DIGEST");
    }

    @Test
    void exportDestinationMustNotExist() {
        assertFails(cli.run("export", "tree", tmp.toString()), ExitCodes.INVALID, "destination exists: " + tmp);
        assertFails(cli.run("export", "tree", tmp.resolve("no/such/parent").toString()), ExitCodes.NOT_FOUND,
                "cannot create directory " + tmp + "/no/such/parent: No such file or directory");
    }

    @Test
    void aFileOrSymlinkIsNotExportedToADestinationEndingInASlash() {
        String dest = tmp.resolve("out") + "/";
        assertFails(cli.run("export", "tree/f", dest), ExitCodes.INVALID,
                "cannot export the file tree/f to " + dest + ": a path ending in '/' names a directory");
        assertFails(cli.run("export", "tree/l", dest), ExitCodes.INVALID,
                "cannot export the symlink tree/l to " + dest + ": a path ending in '/' names a directory");
        assertThat(tmp.resolve("out")).doesNotExist();
    }

    @Test
    void aThreadCountBeyondWhatAProcessCanStartIsABadCommandLine() {
        // Before: import and export of a wide tree with --threads 100000 crashed the JVM (hs_err,
        // exit 1), verify failed with "out of memory (raise it with -Xmx...)", exit 70.
        assertFails(cli.run("import", "--threads", "100000", tree.toString()), ExitCodes.USAGE,
                "--threads must be between 1 and 1024, got 100000 (see 'castore import --help')");
        assertFails(cli.run("export", "--threads", "1025", "tree", tmp.resolve("out").toString()), ExitCodes.USAGE,
                "--threads must be between 1 and 1024, got 1025");
        assertFails(cli.run("verify", "--threads", "100000"), ExitCodes.USAGE, "--threads must be between 1 and 1024, got 100000");
        assertFails(cli.run("import", "--threads", "0", tree.toString()), ExitCodes.USAGE,
                "--threads must be between 1 and 1024, got 0 (see 'castore import --help')");
        assertThat(tmp.resolve("out")).doesNotExist();
    }

    @Test
    void usageErrors() {
        assertFails(cli.run("import", "--name", "x", "a", "b"), ExitCodes.USAGE,
                "--name goes with a single PATH (see 'castore import --help')");
        assertFails(Cli.raw(), ExitCodes.USAGE, "missing command (see 'castore --help')");
        assertFails(Cli.raw("frobnicate"), ExitCodes.USAGE, "Unmatched argument at index 0: 'frobnicate' (see 'castore --help')");
        assertFails(cli.run("import", "--threads", "many", "x"), ExitCodes.USAGE,
                "Invalid value for option '--threads': 'many' is not an int (see 'castore import --help')");
        assertFails(cli.run("import"), ExitCodes.USAGE,
                "Missing required parameter: 'PATH' (see 'castore import --help')");
        // A malformed size is a bad command line, as for mount's --read-ahead, and names its option.
        assertFails(cli.run("roots", "--cache-size", "1.5G"), ExitCodes.USAGE,
                "--cache-size: invalid size '1.5G': expected a positive number with an optional K, M, G or T suffix");
    }

    /** A stdout whose every write fails with {@code reason}, as the JDK reports errno. */
    private static java.io.OutputStream failing(String reason) {
        return new java.io.OutputStream() {
            @Override
            public void write(int b) throws IOException {
                throw new IOException(reason);
            }
        };
    }

    @Test
    void stdoutThatFailsIsAnErrorThatSaysWhy() throws IOException {
        java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
        Files.write(tree.resolve("big"), new byte[3 << 20]);
        String store = storeAddress();
        Cli writer = new Cli(store);
        assertThat(writer.run("import", "--quiet", tree.toString()).exit()).isZero();
        int exit = Main.run(Io.of(failing("No space left on device"), err), "cat", "--store", store, "tree/big");
        assertThat(err.toString()).isEqualTo("castore: cannot write to standard output: No space left on device\n");
        assertThat(exit).isEqualTo(ExitCodes.IO);
        err.reset();
        exit = Main.run(Io.of(failing("No space left on device"), err), "roots", "--store", store);
        assertThat(err.toString()).isEqualTo("castore: cannot write to standard output: No space left on device\n");
        assertThat(exit).isEqualTo(ExitCodes.IO);
    }

    @Test
    void aReaderThatStopsReadingEndsTheCommandQuietly() throws IOException {
        java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
        Files.write(tree.resolve("big"), new byte[3 << 20]);
        String store = storeAddress();
        assertThat(new Cli(store).run("import", "--quiet", tree.toString()).exit()).isZero();
        for (String command : List.of("cat", "ls")) {
            int exit = Main.run(Io.of(failing("Broken pipe"), err), command, "--store", store, command.equals("cat") ? "tree/big" : "tree");
            assertThat(err.toString()).isEmpty();
            assertThat(exit).isEqualTo(ExitCodes.BROKEN_PIPE);
        }
    }

    @Test
    void badStoreAddresses() {
        assertThat(Cli.raw("roots", "--store", "bogus://x").stderr())
                .startsWith("castore: unsupported store address 'bogus://x': known schemes are [");
        assertThat(Cli.raw("roots", "--store", "bogus://x").exit()).isEqualTo(ExitCodes.INVALID);
    }

    /** A port beyond 65535 was left to gRPC's resolver: a stack trace on stderr and a command that never ended. */
    @Test
    @Timeout(30)
    void aGrpcPortOutOfRangeIsAnInvalidAddress() {
        assertFails(Cli.raw("roots", "--store", "grpc+http://127.0.0.1:99999"), ExitCodes.INVALID,
                "invalid address 'grpc+http://127.0.0.1:99999': port 99999 is not 1-65535");
    }

    /** grpc+unix:// has no socket path: it was taken for a socket at "/" and failed after the 5 s timeout as unreachable. */
    @Test
    @Timeout(30)
    void aGrpcUnixAddressWithoutAPathIsInvalid() {
        assertFails(Cli.raw("roots", "--store", "grpc+unix://"), ExitCodes.INVALID,
                "invalid address 'grpc+unix:///': expected grpc+unix:///absolute/path");
    }

    /**
     * An unknown parameter of a gRPC address (a typo of ?ca=, or ca= on grpc+http) was ignored, as
     * local:// and s3:// addresses never ignore theirs; the command then failed (if it did) after
     * the timeout for another reason.
     */
    @Test
    @Timeout(30)
    void aGrpcAddressWithAnUnknownParameterIsInvalid() {
        assertFails(Cli.raw("roots", "--store", "grpc+http://127.0.0.1:1?ca=/etc/ca.pem"), ExitCodes.INVALID,
                "invalid address 'grpc+http://127.0.0.1:1?ca=/etc/ca.pem': unknown parameter 'ca' (known: none)");
        assertFails(Cli.raw("roots", "--store", "grpc+https://127.0.0.1:1?CA=/etc/ca.pem"), ExitCodes.INVALID,
                "invalid address 'grpc+https://127.0.0.1:1?CA=/etc/ca.pem': unknown parameter 'CA' (known: ca)");
    }

    /** A TLS file that cannot be read said only "cannot read FILE", without why. */
    @Test
    @Timeout(30)
    void aDaemonsTlsFileThatCannotBeReadSaysWhy() throws IOException {
        Path missing = tmp.resolve("missing.pem");
        assertFails(Cli.raw("daemon", "--store", "memory://", "--listen", "127.0.0.1:0",
                "--tls-cert", missing.toString(), "--tls-key", missing.toString()), ExitCodes.NOT_FOUND,
                "cannot read " + missing + ": no such file");
        Path directory = Files.createDirectories(tmp.resolve("certs"));
        assertFails(Cli.raw("daemon", "--store", "memory://", "--listen", "127.0.0.1:0",
                "--tls-cert", directory.toString(), "--tls-key", directory.toString()), ExitCodes.NOT_FOUND,
                "cannot read " + directory + ": Is a directory");
    }

    /** A --tls-cert that holds no certificate was exit 70 (internal error) with gRPC's message naming no file. */
    @Test
    @Timeout(30)
    void aDaemonsTlsCertificateThatIsNotOneIsInvalidInput() throws IOException {
        Path bad = Files.writeString(tmp.resolve("bad.pem"), "garbage\n");
        assertFails(Cli.raw("daemon", "--store", "memory://", "--listen", "127.0.0.1:0",
                        "--tls-cert", bad.toString(), "--tls-key", bad.toString()), ExitCodes.INVALID,
                "invalid TLS certificate or key (certificate " + bad + ", key " + bad
                        + "): File does not contain valid certificates: " + bad);
    }

    /** A ?ca= file that holds no certificate was exit 70 with gRPC's channel providers' messages. */
    @Test
    @Timeout(30)
    void aGrpcCaFileThatHoldsNoCertificateIsInvalid() throws IOException {
        Path bad = Files.writeString(tmp.resolve("ca.pem"), "garbage\n");
        String address = "grpc+https://127.0.0.1:1?ca=" + bad;
        Cli.Result r = Cli.raw("roots", "--store", address);
        assertThat(r.stderr()).startsWith("castore: invalid address '" + address + "': cannot use ca=" + bad + ": ");
        assertThat(r.stderr().lines()).hasSize(1);
        assertThat(r.exit()).isEqualTo(ExitCodes.INVALID);
    }

    @Test
    void aMemoryAddressWithSomethingAfterItIsInvalid() {
        for (String address : new String[] {"memory://foo", "memory:///tmp/x", "memory://?a=b"}) {
            assertFails(Cli.raw("roots", "--store", address), ExitCodes.INVALID,
                    "invalid address '" + address + "': memory:// takes nothing after it");
        }
        assertThat(Cli.raw("roots", "--store", "memory://").exit()).isZero();
    }

    @Test
    void aCacheThatIsAFileIsInvalidAndNamesTheOption() throws Exception {
        Path file = java.nio.file.Files.writeString(tmp.resolve("cache-file"), "not a directory");
        assertFails(cli.run("roots", "--cache", file.toString()), ExitCodes.INVALID, "--cache " + file + ": not a directory");
        assertThat(java.nio.file.Files.readString(file)).isEqualTo("not a directory");
    }

    @Test
    void gcNeedsAStoreThatSupportsIt() {
        Cli.Result r = cli.run("gc");
        assertThat(r.exit()).isEqualTo(ExitCodes.INVALID);
        assertThat(r.stderr()).startsWith("castore: gc is not supported by the store at testmem://");
    }
}

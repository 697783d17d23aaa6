package castore.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** castore as a real process: exit codes, streams, privileges and raw argument bytes. */
class ProcessTest {
    @TempDir
    Path tmp;

    /**
     * Runs castore without the power to read what its mode bits forbid. As root that means
     * dropping CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set (setpriv), so the
     * kernel really refuses the open; as an ordinary user nothing needs dropping.
     */
    private static List<String> unprivileged(String... args) {
        List<String> cmd = new ArrayList<>();
        if (ChildCli.isRoot()) {
            cmd.addAll(List.of("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"));
        }
        cmd.addAll(ChildCli.command(args));
        return cmd;
    }

    @Test
    void unreadableFileIsAOneLineErrorAndNoRoot() throws Exception {
        Path tree = Files.createDirectory(tmp.resolve("tree"));
        Files.writeString(tree.resolve("ok"), "fine");
        Path secret = Files.writeString(tree.resolve("secret"), "hidden");
        Files.setPosixFilePermissions(secret, PosixFilePermissions.fromString("---------"));

        ChildCli.Result r = ChildCli.run(unprivileged("import", "--store", "memory://", tree.toString()));
        assertThat(r.stderr()).isEqualTo("castore: cannot open " + secret + ": Permission denied\n");
        assertThat(r.exit()).isEqualTo(ExitCodes.IO);
        assertThat(r.stdout()).isEmpty();
    }

    @Test
    void unreadableDirectory() throws Exception {
        Path tree = Files.createDirectory(tmp.resolve("tree"));
        Path closed = Files.createDirectory(tree.resolve("closed"));
        Files.writeString(closed.resolve("f"), "x");
        Files.setPosixFilePermissions(closed, PosixFilePermissions.fromString("---------"));
        try {
            ChildCli.Result r = ChildCli.run(unprivileged("import", "--store", "memory://", tree.toString()));
            assertThat(r.stderr()).isEqualTo("castore: cannot open " + closed + ": Permission denied\n");
            assertThat(r.exit()).isEqualTo(ExitCodes.IO);
        } finally {
            Files.setPosixFilePermissions(closed, PosixFilePermissions.fromString("rwx------"));
        }
    }

    @Test
    void nonUtf8ArgumentsKeepTheirBytes() throws Exception {
        Path dir = Files.createDirectory(tmp.resolve("d"));
        // Java cannot spell the name; bash can. castore recovers the bytes from /proc/self/cmdline.
        List<String> cmd = new ArrayList<>(List.of("bash", "-c",
                "p=\"$1/$(printf 'caf\\351')\"; mkdir \"$p\" && printf 'x' > \"$p/f\" && shift && exec \"$@\" \"$p\"", "_",
                dir.toString()));
        cmd.addAll(ChildCli.command("import", "--store", "memory://"));
        ChildCli.Result r = ChildCli.run(cmd);
        assertThat(r.exit()).as(r.stderr()).isZero();
        assertThat(r.stdout()).startsWith("caf\\xe9\tb3:");
    }

    @Test
    void twoArgumentsThatDecodeAlikeAreRefusedNotTakenForAThirdFile() throws Exception {
        Path dir = Files.createDirectory(tmp.resolve("d"));
        // "a\uFFFD" in UTF-8: what both a\xfe and a\xff decode to.
        Files.writeString(dir.resolve("a\uFFFD"), "another file");
        List<String> cmd = new ArrayList<>(List.of("bash", "-c",
                "cd \"$1\" && printf x > \"$(printf 'a\\377')\" && shift && exec \"$@\" --name \"$(printf 'a\\376')\" \"$(printf 'a\\377')\"",
                "_", dir.toString()));
        cmd.addAll(ChildCli.command("import", "--store", "memory://"));
        ChildCli.Result r = ChildCli.run(cmd);
        assertThat(r.stdout()).isEmpty();
        assertThat(r.exit()).as(r.stderr()).isEqualTo(ExitCodes.INVALID);
        assertThat(r.stderr()).startsWith("castore: ").contains("a\uFFFD");
    }

    @Test
    void nonUtf8NamesKeepTheirBytesAfterAnEqualsSignAndThroughADot() throws Exception {
        Path dir = Files.createDirectory(tmp.resolve("d"));
        Files.writeString(dir.resolve("f"), "x");
        List<String> cmd = new ArrayList<>(List.of("bash", "-c", "n=\"$(printf 'caf\\351')\"; exec \"$@\" --name=\"$n\"", "_"));
        cmd.addAll(ChildCli.command("import", "--store", "memory://", dir.toString()));
        ChildCli.Result r = ChildCli.run(cmd);
        assertThat(r.exit()).as(r.stderr()).isZero();
        assertThat(r.stdout()).startsWith("caf\\xe9\tb3:");
        // "." inside a directory whose name is not UTF-8: the root is named by its bytes.
        cmd = new ArrayList<>(List.of("bash", "-c",
                "p=\"$1/$(printf 'na\\351ve')\"; mkdir \"$p\" && printf 'x' > \"$p/f\" && cd \"$p\" && shift && exec \"$@\" .", "_",
                dir.toString()));
        cmd.addAll(ChildCli.command("import", "--store", "memory://"));
        r = ChildCli.run(cmd);
        assertThat(r.exit()).as(r.stderr()).isZero();
        assertThat(r.stdout()).startsWith("na\\xe9ve\tb3:");
    }

    /** A local store holding root "tree": tree/sub/f, "file". */
    private Path storeWithTree() throws IOException {
        Path tree = Files.createDirectories(tmp.resolve("tree/sub"));
        Files.writeString(tree.resolve("f"), "file");
        Path store = tmp.resolve("store");
        assertThat(new Cli(store.toString()).run("import", "--quiet", tmp.resolve("tree").toString()).exit()).isZero();
        return store;
    }

    @Test
    void exportGivesExactModesUnderAUmaskThatTakesTheOwnersReadBit() throws Exception {
        Path store = storeWithTree();
        Path out = tmp.resolve("out");
        // umask 0477, and (as root) without the capabilities that would read past the mode bits.
        List<String> cmd = new ArrayList<>(List.of("bash", "-c", "umask 0477; exec \"$@\"", "_"));
        cmd.addAll(unprivileged("export", "--store", store.toString(), "tree", out.toString()));
        ChildCli.Result r = ChildCli.run(cmd);
        assertThat(r.exit()).as(r.stderr()).isZero();
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(out))).isEqualTo("rwxr-xr-x");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(out.resolve("sub")))).isEqualTo("rwxr-xr-x");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(out.resolve("sub/f")))).isEqualTo("rw-r--r--");
        assertThat(Files.readString(out.resolve("sub/f"))).isEqualTo("file");
    }

    @Test
    void exportWorksWithoutProc() throws Exception {
        // glibc before 2.39 makes fchmodat(AT_SYMLINK_NOFOLLOW) a chmod of /proc/self/fd/N
        // (before 2.32 it always fails with ENOTSUP): an export must not need it.
        Path store = storeWithTree();
        Path out = tmp.resolve("out");
        Path jdk = Path.of(System.getProperty("java.home"));
        // The launcher finds libjli through /proc/self/exe: give the loader its directory instead.
        List<String> cmd = new ArrayList<>(List.of("unshare", "-m", "sh", "-c",
                "umount -l /proc && LD_LIBRARY_PATH=\"$0/lib:$0/lib/server\" exec \"$@\"", jdk.toString()));
        cmd.addAll(ChildCli.command("export", "-q", "--store", store.toString(), "tree", out.toString()));
        ChildCli.Result r = ChildCli.run(cmd);
        assertThat(r.stderr()).isEmpty();
        assertThat(r.exit()).isZero();
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(out))).isEqualTo("rwxr-xr-x");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(out.resolve("sub")))).isEqualTo("rwxr-xr-x");
        assertThat(Files.readString(out.resolve("sub/f"))).isEqualTo("file");
    }

    @Test
    void aNameForADotWithoutProcIsAskedFor() throws Exception {
        Path tree = Files.createDirectories(tmp.resolve("tree"));
        Path jdk = Path.of(System.getProperty("java.home"));
        List<String> cmd = new ArrayList<>(List.of("unshare", "-m", "sh", "-c",
                "umount -l /proc && cd \"$1\" && shift && LD_LIBRARY_PATH=\"$0/lib:$0/lib/server\" exec \"$@\"",
                jdk.toString(), tree.toString()));
        cmd.addAll(ChildCli.command("import", "--store", "memory://", "."));
        ChildCli.Result r = ChildCli.run(cmd);
        assertThat(r.stderr()).isEqualTo("castore: cannot derive a root name from '.': its path is read from"
                + " /proc/self/fd, which cannot be read (No such file or directory): use --name\n");
        assertThat(r.exit()).isEqualTo(ExitCodes.INVALID);
    }

    @Test
    void aStorePathThatIsNotUtf8IsRefusedNotOpenedUnderAnotherName() throws Exception {
        Path tree = Files.createDirectory(tmp.resolve("tree"));
        Files.writeString(tree.resolve("f"), "x");
        Path parent = Files.createDirectory(tmp.resolve("stores"));
        List<String> cmd = new ArrayList<>(List.of("bash", "-c", "s=\"$1/$(printf 'st\\351')\"; shift; exec \"$@\" --store \"$s\"", "_",
                parent.toString()));
        cmd.addAll(ChildCli.command("import", tree.toString()));
        ChildCli.Result r = ChildCli.run(cmd);
        assertThat(r.exit()).as(r.stderr()).isEqualTo(ExitCodes.INVALID);
        assertThat(r.stderr()).startsWith("castore: --store: ").contains("not UTF-8").hasLineCount(1);
        try (var left = Files.list(parent)) {
            assertThat(left.toList()).as("no store created under either name").isEmpty();
        }
    }

    @Test
    void summaryOnlyOnAPipeAndNothingOnStdoutButTheRoots() throws Exception {
        Path tree = Files.createDirectory(tmp.resolve("tree"));
        Files.writeString(tree.resolve("a"), "a");
        ChildCli.Result r = ChildCli.run(ChildCli.command("import", "--store", "memory://", tree.toString()));
        assertThat(r.exit()).isZero();
        assertThat(r.stdout()).matches("tree\tb3:\\S+\n");
        assertThat(r.stderr()).matches("imported 1 file, 1 directory, 0 symlinks: 1 B read, 1 B new, in \\S+ s \\(\\S+ \\S+/s\\)\n");
    }

    @Test
    void errorsCarryNoStackTrace() throws Exception {
        ChildCli.Result r = ChildCli.run(ChildCli.command("cat", "--store", "memory://", "--blob", "b3:!!"));
        assertThat(r.exit()).isEqualTo(ExitCodes.INVALID);
        assertThat(r.stderr()).startsWith("castore: invalid digest 'b3:!!'").hasLineCount(1);
    }

    @Test
    void theDefaultStoreIsUnderHomeAsTheShellHasIt() throws Exception {
        Path tree = Files.createDirectory(tmp.resolve("tree"));
        Files.writeString(tree.resolve("a"), "a");
        Path home = Files.createDirectory(tmp.resolve("home"));
        Path store = home.resolve(".local/share/castore");
        assertThat(ChildCli.run(ChildCli.command("import", "-q", "--store", store.toString(), tree.toString())).exit()).isZero();
        // ~/.local/share/castore is $HOME's: the JVM's user.home comes from the passwd entry, which
        // a HOME set for a service, a sandbox or a test does not change.
        ChildCli.Result r = ChildCli.run(ChildCli.command("roots"), Map.of("HOME", home.toString(), "CASTORE_STORE", ""));
        assertThat(r.exit()).as(r.stderr()).isZero();
        assertThat(r.stdout()).startsWith("tree\tdirectory\t");
    }

    @Test
    void whatTheModulesLogIsOneCastoreLine() throws Exception {
        Path tree = Files.createDirectory(tmp.resolve("tree"));
        Files.writeString(tree.resolve("a"), "a");
        Path store = tmp.resolve("store");
        assertThat(ChildCli.run(ChildCli.command("import", "-q", "--store", store.toString(), tree.toString())).exit()).isZero();
        // A pack whose data file is gone: the local store says so (PackSet, through System.Logger) and goes on.
        try (var packs = Files.list(store.resolve("packs"))) {
            for (Path pack : packs.filter(p -> p.toString().endsWith(".pack")).toList()) {
                Files.delete(pack);
            }
        }
        ChildCli.Result r = ChildCli.run(ChildCli.command("roots", "--store", store.toString()));
        assertThat(r.exit()).as(r.stderr()).isZero();
        assertThat(r.stdout()).startsWith("tree\tdirectory\t");
        assertThat(r.stderr()).matches("(castore: ignoring pack \\S+: its data file is missing\n)+");
    }
}

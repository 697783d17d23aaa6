package castore.fs;

import static org.assertj.core.api.Assertions.assertThat;

import castore.fuse.testing.Commands;
import castore.fuse.testing.FuseAvailability;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A mount by an ordinary user (uid 65534 via setpriv) through fusermount3: the daemon runs in a
 * child JVM as that user; the user reads the tree and unmounts it with fusermount3 -u.
 */
class UnprivilegedMountTest {
    static final int NOBODY = 65534;

    @TempDir
    Path tmp;

    @Test
    void anOrdinaryUserMountsReadsAndUnmounts() throws Exception {
        FuseAvailability.requireRoot();
        FuseAvailability.requireProgram("fusermount3");
        FuseAvailability.requireProgram("setpriv");
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path mountpoint = Files.createDirectory(tmp.resolve("mnt"));
        Files.setAttribute(mountpoint, "unix:uid", NOBODY);
        Files.setAttribute(mountpoint, "unix:gid", NOBODY);
        String classpath = readableCopyOfClasspath(Files.createDirectory(tmp.resolve("cp")));

        String java = ProcessHandle.current().info().command().orElse("java");
        Process daemon = new ProcessBuilder("setpriv", "--reuid=" + NOBODY, "--regid=" + NOBODY, "--clear-groups", "--",
                java, "--enable-native-access=ALL-UNNAMED", "-cp", classpath, UnprivilegedMountMain.class.getName(),
                mountpoint.toString())
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        try {
            var reader = new BufferedReader(new InputStreamReader(daemon.getInputStream(), StandardCharsets.UTF_8));
            String line = CompletableFuture.supplyAsync(() -> readLine(reader)).get(60, TimeUnit.SECONDS);
            assertThat(line).isEqualTo("ready");

            String mountinfo = Files.readString(Path.of("/proc/self/mountinfo"));
            assertThat(mountinfo.lines().filter(l -> l.contains(" " + mountpoint + " ")).findFirst().orElseThrow())
                    .contains("user_id=" + NOBODY).contains(" ro");
            assertThat(Commands.runAs(NOBODY, "cat", mountpoint.resolve("hello").toString()).assertOk().stdout())
                    .isEqualTo("hello from an ordinary user\n");
            assertThat(Commands.runAs(NOBODY, "cat", mountpoint.resolve("tree/a/b").toString()).assertOk().stdout())
                    .isEqualTo("deep\n");
            assertThat(Commands.runAs(NOBODY, "touch", mountpoint.resolve("x").toString()).stderr())
                    .contains("Read-only file system");

            Commands.runAs(NOBODY, "fusermount3", "-u", mountpoint.toString()).assertOk();
            assertThat(daemon.waitFor(60, TimeUnit.SECONDS)).as("the daemon ends after the unmount").isTrue();
            assertThat(daemon.exitValue()).isZero();
        } finally {
            if (daemon.isAlive()) {
                daemon.destroyForcibly().waitFor();
            }
            if (Files.readString(Path.of("/proc/self/mountinfo")).contains(" " + mountpoint + " ")) {
                Commands.run("umount", "-l", mountpoint.toString());
            }
        }
    }

    private static String readLine(BufferedReader reader) {
        try {
            return reader.readLine();
        } catch (IOException e) {
            return "read failed: " + e;
        }
    }

    /** The test class path copied where an ordinary user can read it (~/.m2 of root is private). */
    private static String readableCopyOfClasspath(Path target) throws IOException {
        List<String> entries = new ArrayList<>();
        int i = 0;
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            Path source = Path.of(entry);
            if (!Files.exists(source)) {
                continue;
            }
            Path copy = target.resolve(String.valueOf(i++) + (Files.isDirectory(source) ? "" : ".jar"));
            try (Stream<Path> walk = Files.walk(source)) {
                for (Path p : (Iterable<Path>) walk::iterator) {
                    Files.copy(p, copy.resolve(source.relativize(p).toString()), StandardCopyOption.COPY_ATTRIBUTES);
                }
            }
            entries.add(copy.toString());
        }
        try (Stream<Path> walk = Files.walk(target)) {
            for (Path p : (Iterable<Path>) walk::iterator) {
                Files.setPosixFilePermissions(p, PosixFilePermissions.fromString(Files.isDirectory(p) ? "rwxr-xr-x" : "rw-r--r--"));
            }
        }
        return String.join(File.pathSeparator, entries);
    }
}

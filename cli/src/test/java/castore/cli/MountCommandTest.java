package castore.cli;

import static org.assertj.core.api.Assertions.assertThat;

import castore.fuse.testing.Commands;
import castore.fuse.testing.FuseAvailability;
import castore.fuse.testing.MountInfo;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code castore mount} as a user runs it: a child JVM, one ready line, exit 0 on signal or unmount. */
class MountCommandTest {
    @TempDir
    Path tmp;

    static List<String> castore(String... args) {
        List<String> command = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"), Main.class.getName()));
        command.addAll(List.of(args));
        return command;
    }

    /** A running {@code castore mount} and the rest of its output. */
    record Running(Process process, BufferedReader out, String readyLine) {
    }

    /** Starts {@code castore mount} and waits for its ready line. */
    static Running startMount(Path mountpoint, String... options) throws Exception {
        Running running = startMount("memory://", mountpoint, options);
        assertThat(running.readyLine()).isEqualTo("castore: mounted memory:// at " + mountpoint);
        return running;
    }

    /** Starts {@code castore mount --store STORE} and waits for its ready line. */
    static Running startMount(String store, Path mountpoint, String... options) throws Exception {
        return startMount(Map.of(), store, mountpoint, options);
    }

    /** Starts {@code castore mount --store STORE} with more environment variables and waits for its ready line. */
    static Running startMount(Map<String, String> environment, String store, Path mountpoint, String... options)
            throws Exception {
        return startMount(ProcessBuilder.Redirect.INHERIT, environment, store, mountpoint, options);
    }

    /** Starts {@code castore mount --store STORE} with its stderr sent to {@code stderr} and waits for its ready line. */
    static Running startMount(ProcessBuilder.Redirect stderr, Map<String, String> environment, String store, Path mountpoint,
                              String... options) throws Exception {
        List<String> args = new ArrayList<>(List.of("mount", "--store", store));
        args.addAll(List.of(options));
        args.add(mountpoint.toString());
        var builder = new ProcessBuilder(castore(args.toArray(String[]::new))).redirectError(stderr);
        builder.environment().putAll(environment);
        Process p = builder.start();
        var out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String line = firstLine(out);
        assertThat(line).startsWith("castore: mounted ").endsWith(" at " + mountpoint);
        return new Running(p, out, line);
    }

    /** Unmounts from outside, as a user would, and expects the daemon to exit 0. */
    static void unmountExpectingExitZero(Process p, Path mountpoint) throws Exception {
        Commands.run("umount", mountpoint.toString()).assertOk();
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).isZero();
    }

    /** The child's first line of output (its ready line), waiting at most 60 s. */
    static String firstLine(BufferedReader out) throws Exception {
        return CompletableFuture.supplyAsync(() -> {
            try {
                return out.readLine();
            } catch (IOException e) {
                return e.toString();
            }
        }).get(60, TimeUnit.SECONDS);
    }

    static void stop(Process p, Path mountpoint) throws InterruptedException {
        if (p.isAlive()) {
            p.destroyForcibly().waitFor();
        }
        if (MountInfo.find(mountpoint).isPresent()) {
            Commands.run("umount", "-l", mountpoint.toString());
        }
    }

    /** Descriptors of pack files that process {@code pid} holds open with O_DIRECT. */
    static long directPackDescriptors(long pid) throws IOException {
        long count = 0;
        try (var fds = Files.list(Path.of("/proc", String.valueOf(pid), "fd"))) {
            for (Path fd : fds.toList()) {
                String target;
                List<String> info;
                try {
                    target = Files.readSymbolicLink(fd).toString();
                    info = Files.readAllLines(Path.of("/proc", String.valueOf(pid), "fdinfo", fd.getFileName().toString()));
                } catch (IOException closedMeanwhile) {
                    continue;
                }
                for (String line : info) {
                    if (target.endsWith(".pack") && line.startsWith("flags:")
                            && (Integer.parseInt(line.substring(6).trim(), 8) & castore.io.Libc.O_DIRECT) != 0) {
                        count++;
                    }
                }
            }
        }
        return count;
    }

    @Test
    void aMountReadsABigFileByteForBytePastThePageCache() throws Exception {
        FuseAvailability.requireMountable();
        Path src = Files.createDirectories(tmp.resolve("src"));
        byte[] data = new byte[24 << 20];
        new java.util.SplittableRandom(5).nextBytes(data);
        Files.write(src.resolve("big.bin"), data);
        String store = tmp.resolve("store").toString();
        assertThat(new Cli(store).run("import", "--name", "data", src.toString()).exit()).isZero();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Process p = startMount(store, mnt).process();
        try {
            assertThat(java.util.Arrays.equals(Files.readAllBytes(mnt.resolve("data/big.bin")), data)).isTrue();
            // A mount's sequential reader reads the store's packs with O_DIRECT (docs/local-store.md):
            // the store is under the test's temporary directory, on a file system that has it.
            assertThat(directPackDescriptors(p.pid())).as("pack descriptors opened with O_DIRECT").isPositive();
            // Read again at random places from a second process: the kernel's cache or the store, exact bytes.
            var random = new java.util.SplittableRandom(6);
            try (var file = java.nio.channels.FileChannel.open(mnt.resolve("data/big.bin"))) {
                for (int i = 0; i < 200; i++) {
                    int at = random.nextInt(data.length - 70_000);
                    java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(random.nextInt(1, 70_000));
                    while (b.hasRemaining() && file.read(b, at + b.position()) > 0) {
                        // fill
                    }
                    assertThat(java.util.Arrays.equals(b.array(), 0, b.capacity(), data, at, at + b.capacity())).as("at %d", at).isTrue();
                }
            }
            unmountExpectingExitZero(p, mnt);
        } finally {
            stop(p, mnt);
        }
        // Commands other than mount read through the page cache: cat gives the same bytes.
        Cli.Result cat = new Cli(store).run("cat", "data/big.bin");
        assertThat(cat.exit()).isZero();
        assertThat(java.util.Arrays.equals(cat.stdoutBytes(), data)).isTrue();
    }

    @Test
    void prefetchOverALocalStoreSaysItDoesNothingInsteadOfReportingEmptyPrefetches() throws Exception {
        FuseAvailability.requireMountable();
        Path src = Files.createDirectories(tmp.resolve("src/sub"));
        Files.writeString(src.resolve("file"), "content");
        String store = tmp.resolve("store").toString();
        assertThat(new Cli(store).run("import", "--name", "tree", tmp.resolve("src").toString()).exit()).isZero();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Path stderr = tmp.resolve("stderr");
        Process p = startMount(ProcessBuilder.Redirect.to(stderr.toFile()), Map.of(), store, mnt, "--prefetch").process();
        try {
            assertThat(Files.readString(mnt.resolve("tree/sub/file"))).isEqualTo("content"); // enters the root
            unmountExpectingExitZero(p, mnt);
        } finally {
            stop(p, mnt);
        }
        // It printed "prefetched <digest>: 0 directories, 0 files, 0 failures" for every root entered.
        assertThat(Files.readString(stderr)).doesNotContain("prefetched")
                .contains("castore: --prefetch does nothing here: every object of " + store + " is local");
    }

    @Test
    void servesUntilSigtermThenExitsZero() throws Exception {
        FuseAvailability.requireMountable();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Running running = startMount(mnt, "--list-root", "--root-ttl", "500ms", "--threads", "2");
        Process p = running.process();
        try {
            assertThat(MountInfo.find(mnt)).isPresent();
            assertThat(Commands.run("ls", "-f", mnt.toString()).assertOk().stdout()).isEqualTo(".\n..\n");
            assertThat(Commands.run("cat", mnt.resolve("nothing").toString()).stderr()).contains("No such file or directory");
            Commands.run("kill", "-TERM", String.valueOf(p.pid())).assertOk(); // Process.destroy would close its pipes
            assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
            assertThat(p.exitValue()).isZero();
            assertThat(MountInfo.find(mnt)).isEmpty();
            assertThat(running.out().readLine()).as("one line only").isNull();
        } finally {
            stop(p, mnt);
        }
    }

    @Test
    void anOutsideUnmountEndsItWithExitZero() throws Exception {
        FuseAvailability.requireMountable();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Process p = startMount(mnt).process();
        try {
            assertThat(Commands.run("ls", mnt.toString()).stderr()).contains("Operation not permitted");
            unmountExpectingExitZero(p, mnt);
        } finally {
            stop(p, mnt);
        }
    }

    @Test
    void aSecondMountOnAServedMountpointIsRefusedAndTheFirstGoesOnServing() throws Exception {
        FuseAvailability.requireMountable();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Process p = startMount(mnt, "--list-root").process();
        try {
            expectError(Commands.run(castore("mount", "--store", "memory://", mnt.toString())), ExitCodes.BUSY,
                    "castore: " + mnt + " is already mounted by another castore process; unmount it first (umount " + mnt
                            + ", or fusermount3 -u " + mnt + " as its user), or replace it without unmounting with --take-over");
            assertThat(Commands.run("ls", "-f", mnt.toString()).assertOk().stdout()).isEqualTo(".\n..\n");
            assertThat(p.isAlive()).isTrue();
            unmountExpectingExitZero(p, mnt);
            assertThat(MountInfo.find(mnt)).as("one mount, not two stacked").isEmpty();
        } finally {
            stop(p, mnt);
        }
    }

    @Test
    void aMountLeftByAKilledProcessIsNamedAsSuchNotAsMissing() throws Exception {
        FuseAvailability.requireMountable();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Process p = startMount(mnt).process();
        try {
            p.destroyForcibly(); // SIGKILL: the mount stays, answering ENOTCONN
            assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
            assertThat(MountInfo.find(mnt)).isPresent();
            expectError(Commands.run(castore("mount", "--store", "memory://", mnt.toString())), ExitCodes.IO,
                    "castore: mountpoint is not accessible: " + mnt + ": Transport endpoint is not connected (if a mount whose "
                            + "process was killed is left there, detach it with: umount -l " + mnt + ", or fusermount3 -u -z "
                            + mnt + " as its user)");
            Commands.run("umount", "-l", mnt.toString()).assertOk();
            Process again = startMount(mnt).process(); // the path serves again
            try {
                unmountExpectingExitZero(again, mnt);
            } finally {
                stop(again, mnt);
            }
        } finally {
            stop(p, mnt);
        }
    }

    @Test
    void warmsUpInTmpdirWhileServingAndLeavesNothingThere() throws Exception {
        FuseAvailability.requireMountable();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Path scratch = Files.createDirectory(tmp.resolve("scratch"));
        Process p = startMountWithTmpdir(scratch, mnt, "--list-root");
        try {
            assertThat(awaitEntries(scratch, true)).as("the warm-up's scratch store").singleElement().asString()
                    .startsWith(scratch.resolve("castore-warm-up-").toString());
            assertThat(Commands.run("ls", "-f", mnt.toString()).assertOk().stdout()).isEqualTo(".\n..\n");
            assertThat(awaitEntries(scratch, false)).as("deleted once done").isEmpty();
            unmountExpectingExitZero(p, mnt);
        } finally {
            stop(p, mnt);
        }
    }

    @Test
    void aSignalDuringTheWarmUpStillExitsZeroAndDeletesItsScratchStore() throws Exception {
        FuseAvailability.requireMountable();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Path scratch = Files.createDirectory(tmp.resolve("scratch"));
        Process p = startMountWithTmpdir(scratch, mnt);
        try {
            assertThat(awaitEntries(scratch, true)).isNotEmpty();
            Commands.run("kill", "-TERM", String.valueOf(p.pid())).assertOk();
            assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
            assertThat(p.exitValue()).isZero();
            assertThat(MountInfo.find(mnt)).isEmpty();
            assertThat(awaitEntries(scratch, false)).as("nothing left after exit").isEmpty();
        } finally {
            stop(p, mnt);
        }
    }

    @Test
    void noWarmUpMakesNoScratchStore() throws Exception {
        FuseAvailability.requireMountable();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Path scratch = Files.createDirectory(tmp.resolve("scratch"));
        Process p = startMountWithTmpdir(scratch, mnt, "--no-warm-up");
        try {
            // Watched throughout, not once at the end: a warm-up would begin after 1 s of idleness
            // and live about a second.
            long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(3000);
            while (System.nanoTime() < until) {
                try (var entries = Files.list(scratch)) {
                    assertThat(entries).isEmpty();
                }
                Thread.sleep(2);
            }
            unmountExpectingExitZero(p, mnt);
        } finally {
            stop(p, mnt);
        }
    }

    /** {@code castore mount --store memory://} with TMPDIR set to {@code scratch}. */
    private static Process startMountWithTmpdir(Path scratch, Path mountpoint, String... options) throws Exception {
        return startMount(Map.of("TMPDIR", scratch.toString()), "memory://", mountpoint, options).process();
    }

    /** The entries of {@code dir} once it has some ({@code present}) or none, polling for up to 60 s. */
    private static List<Path> awaitEntries(Path dir, boolean present) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (true) {
            List<Path> entries;
            try (var list = Files.list(dir)) {
                entries = list.toList();
            }
            if (entries.isEmpty() != present || System.nanoTime() > deadline) {
                return entries;
            }
            Thread.sleep(2);
        }
    }

    @Test
    void badMountpointsAndOptionsAreOneLineErrors() throws Exception {
        Path file = Files.writeString(tmp.resolve("file"), "x");
        expectError(Commands.run(castore("mount", "--store", "memory://", tmp.resolve("missing").toString())),
                ExitCodes.NOT_FOUND, "castore: mountpoint does not exist: " + tmp.resolve("missing"));
        expectError(Commands.run(castore("mount", "--store", "memory://", file.toString())),
                ExitCodes.INVALID, "castore: mountpoint is not a directory: " + file);
        var badTtl = Commands.run(castore("mount", "--root-ttl", "soon", tmp.toString()));
        assertThat(badTtl.exitCode()).isEqualTo(ExitCodes.USAGE);
        assertThat(badTtl.stderr()).contains("'soon' is not a duration");
        var badReadAhead = Commands.run(castore("mount", "--store", "memory://", "--read-ahead", "lots", tmp.toString()));
        expectError(badReadAhead, ExitCodes.USAGE, "castore: --read-ahead: invalid size 'lots': expected 0 (no read-ahead) or a positive number");
        var hugeReadAhead = Commands.run(castore("mount", "--store", "memory://", "--read-ahead", "1G", tmp.toString()));
        expectError(hugeReadAhead, ExitCodes.USAGE, "castore: --read-ahead must be at most 64M, got 1G");
        var manyReaders = Commands.run(castore("mount", "--store", "memory://", "--threads", "65", tmp.toString()));
        expectError(manyReaders, ExitCodes.USAGE, "castore: --threads must be between 1 and 64, got 65");
    }

    @Test
    void noDevFuseOrNoPermissionAreOneLineErrors() throws Exception {
        FuseAvailability.requireRoot();
        FuseAvailability.requireProgram("unshare");
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        // A private /dev without the fuse device.
        List<String> noDevice = new ArrayList<>(List.of("unshare", "-m", "--propagation", "private", "sh", "-c",
                "mount -t tmpfs none /dev && mknod -m 666 /dev/null c 1 3 && exec \"$@\"", "sh"));
        noDevice.addAll(castore("mount", "--store", "memory://", mnt.toString()));
        expectError(Commands.run(noDevice), ExitCodes.IO, "castore: no /dev/fuse");
        // Root of a user namespace that does not own the mount namespace: mount(2) is refused.
        List<String> noPermission = new ArrayList<>(List.of("unshare", "-U", "-r"));
        noPermission.addAll(castore("mount", "--store", "memory://", mnt.toString()));
        var refused = Commands.run(noPermission);
        expectError(refused, ExitCodes.IO, "castore: ");
        assertThat(refused.stderr()).contains(mnt.toString(), "Operation not permitted");
        assertThat(MountInfo.find(mnt)).isEmpty();
    }

    @Test
    void passthroughKeepsPlainCopiesOfBigFilesAndServesThem() throws Exception {
        FuseAvailability.requireMountable();
        FuseAvailability.requireRoot();
        Path source = Files.createDirectory(tmp.resolve("src"));
        byte[] big = new byte[2 * 1024 * 1024 + 7];
        new java.util.Random(3).nextBytes(big);
        Files.write(source.resolve("big.bin"), big);
        Files.writeString(source.resolve("small.txt"), "small\n");
        Path store = tmp.resolve("store");
        Commands.run(castore("import", "--store", store.toString(), "--quiet", "--name", "t", source.toString())).assertOk();
        Path copies = FuseAvailability.backingDirectory(tmp.resolve("copies"));
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Process p = startMount(store.toString(), mnt, "--passthrough", copies.toString(), "--passthrough-min-size", "1M")
                .process();
        try {
            Commands.run("cmp", mnt.resolve("t/big.bin").toString(), source.resolve("big.bin").toString()).assertOk();
            assertThat(Files.readString(mnt.resolve("t/small.txt"))).isEqualTo("small\n");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            List<Path> made;
            do {
                Thread.sleep(50);
                try (var files = Files.walk(copies)) {
                    // Complete copies only: the one being written sits in tmp/ under the same name.
                    made = files.filter(f -> f.getFileName().toString().matches("[0-9a-f]{64}")
                            && f.getParent().getFileName().toString().matches("[0-9a-f]{2}")).toList();
                }
            } while (made.isEmpty() && System.nanoTime() < deadline);
            assertThat(made).hasSize(1);
            assertThat(Files.readAllBytes(made.getFirst())).isEqualTo(big);
            // Read again, now from the copy.
            Commands.run("cmp", mnt.resolve("t/big.bin").toString(), source.resolve("big.bin").toString()).assertOk();
            unmountExpectingExitZero(p, mnt);

            var clean = Commands.run(castore("verify", "--plain-copies", copies.toString()));
            assertThat(clean.exitCode()).as(clean.stderr()).isZero();
            assertThat(clean.stdout()).isEmpty();
            assertThat(clean.stderr()).startsWith("verified 1 plain copy (2.0 MiB); 0 bad copies deleted");
            // Bytes changed on disk behind castore's back, same length: a mount would serve them; verify finds them.
            try (var f = new java.io.RandomAccessFile(made.getFirst().toFile(), "rw")) {
                f.seek(1 << 20);
                f.write(big[1 << 20] ^ 0x5a);
            }
            var bad = Commands.run(castore("verify", "--plain-copies", copies.toString()));
            assertThat(bad.exitCode()).as(bad.stderr()).isEqualTo(ExitCodes.PROBLEMS);
            assertThat(bad.stdout()).startsWith("plain copy " + made.getFirst() + " hashes to b3:").endsWith(", not to its name: deleted\n");
            assertThat(bad.stderr()).startsWith("verified 1 plain copy (2.0 MiB); 1 bad copy deleted");
            assertThat(made.getFirst()).doesNotExist();
            // The next mount reads the file from the store again.
            p = startMount(store.toString(), mnt, "--passthrough", copies.toString(), "--passthrough-min-size", "1M").process();
            Commands.run("cmp", mnt.resolve("t/big.bin").toString(), source.resolve("big.bin").toString()).assertOk();
            unmountExpectingExitZero(p, mnt);
        } finally {
            stop(p, mnt);
            FuseAvailability.deleteBackingDirectory(copies, tmp);
        }
    }

    @Test
    void verifyOfPlainCopiesRefusesADirectoryThatIsNotOne() throws Exception {
        expectError(Commands.run(castore("verify", "--plain-copies", tmp.resolve("absent").toString())),
                ExitCodes.USAGE, "castore: --plain-copies: no such directory: " + tmp.resolve("absent"));
        Path notOurs = Files.createDirectory(tmp.resolve("not-ours"));
        Files.writeString(notOurs.resolve("keep.txt"), "mine");
        expectError(Commands.run(castore("verify", "--plain-copies", notOurs.toString())),
                ExitCodes.IO, "castore: --plain-copies: " + notOurs + " is not a castore plain-copies directory");
        assertThat(Files.readString(notOurs.resolve("keep.txt"))).isEqualTo("mine");
    }

    @Test
    void badPassthroughOptionsAreOneLineErrors() throws Exception {
        expectError(Commands.run(castore("mount", "--store", "memory://", "--passthrough", tmp.resolve("c").toString(),
                "--passthrough-min-size", "2M", "--passthrough-max-size", "1M", tmp.toString())),
                ExitCodes.USAGE, "castore: --passthrough-max-size (1M) is smaller than --passthrough-min-size (2M)");
        expectError(Commands.run(castore("mount", "--store", "memory://", "--passthrough", tmp.resolve("c").toString(),
                "--passthrough-min-size", "big", tmp.toString())),
                ExitCodes.USAGE, "castore: --passthrough-min-size: invalid size 'big'");
        Path notOurs = Files.createDirectory(tmp.resolve("not-ours"));
        Files.writeString(notOurs.resolve("keep.txt"), "mine");
        FuseAvailability.requireRoot();
        expectError(Commands.run(castore("mount", "--store", "memory://", "--passthrough", notOurs.toString(),
                tmp.toString())), ExitCodes.IO, "castore: --passthrough: " + notOurs + " is not a castore plain-copies directory");
        assertThat(Files.readString(notOurs.resolve("keep.txt"))).isEqualTo("mine");
        // Without CAP_SYS_ADMIN the kernel would refuse every passthrough file: refused up front.
        // (Root without it: dropped from the bounding set, so the child JVM's effective set lacks it.)
        FuseAvailability.requireProgram("setpriv");
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        List<String> unprivileged = new ArrayList<>(List.of("setpriv", "--bounding-set=-sys_admin", "--"));
        unprivileged.addAll(castore("mount", "--store", "memory://", "--passthrough", tmp.resolve("copies").toString(),
                mnt.toString()));
        expectError(Commands.run(unprivileged), ExitCodes.USAGE, "castore: --passthrough needs root (CAP_SYS_ADMIN)");
        assertThat(MountInfo.find(mnt)).isEmpty();
        assertThat(tmp.resolve("copies")).doesNotExist();
    }

    static void expectError(Commands.Result result, int exitCode, String messageStart) {
        assertThat(result.exitCode()).as(result.stderr()).isEqualTo(exitCode);
        assertThat(result.stderr().lines().toList()).as("one line").hasSize(1);
        assertThat(result.stderr()).startsWith(messageStart);
    }

    /**
     * The JVM option ./castore adds for {@code mount} and {@code daemon} (the launcher's
     * {@code case "${1:-}" in mount | daemon}): a heap that runs out ends the process.
     */
    static final String EXIT_ON_OUT_OF_MEMORY = "-XX:+ExitOnOutOfMemoryError";

    /**
     * A mount whose heap runs out exits (status 3) and its callers get an error at once. Past an
     * OutOfMemoryError, threads it had killed left requests that never ended, and callers hung in
     * uninterruptible sleep.
     */
    @Test
    void aMountWhoseHeapRunsOutExitsAndItsCallersGetAnErrorNotAHang() throws Exception {
        FuseAvailability.requireMountable();
        // 120,000 entries of 200-byte names in one directory: decoding it needs more than the
        // mount's 32 MiB heap, and nothing of it is loaded before the listing asks.
        Path big = Files.createDirectories(tmp.resolve("src/big"));
        String padding = "n".repeat(190);
        for (int i = 0; i < 120_000; i++) {
            Files.createFile(big.resolve(padding + String.format("%08d", i)));
        }
        String store = tmp.resolve("store").toString();
        assertThat(new Cli(store).run("import", "-q", "--name", "t", tmp.resolve("src").toString()).exit()).isZero();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Path stderr = tmp.resolve("mount.err");
        List<String> command = new ArrayList<>(castore("mount", "--no-warm-up", "--store", store, mnt.toString()));
        command.addAll(1, List.of("-Xmx32m", EXIT_ON_OUT_OF_MEMORY));
        Process p = new ProcessBuilder(command).redirectError(stderr.toFile()).start();
        try {
            var out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
            assertThat(firstLine(out)).isEqualTo("castore: mounted " + store + " at " + mnt);
            Commands.Result listing = Commands.run("ls", mnt.resolve("t/big").toString());
            assertThat(listing.exitCode()).as("the listing fails instead of hanging").isNotZero();
            assertThat(listing.stderr()).containsAnyOf("Transport endpoint is not connected", "Software caused connection abort");
            assertThat(p.waitFor(60, TimeUnit.SECONDS)).as("the mount process exits").isTrue();
            assertThat(p.exitValue()).isEqualTo(3);
            assertThat(Files.readString(stderr) + String.join("\n", out.lines().toList()))
                    .contains("OutOfMemoryError: Java heap space");
        } finally {
            stop(p, mnt);
        }
        // Nothing stored was touched: the store still lists the tree.
        assertThat(new Cli(store).run("ls", "t").stdout()).startsWith("big\tdirectory\t");
    }
}

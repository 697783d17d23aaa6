package castore.cli;

import static castore.cli.MountCommandTest.castore;
import static castore.cli.MountCommandTest.expectError;
import static castore.cli.MountCommandTest.startMount;
import static castore.cli.MountCommandTest.stop;
import static castore.cli.MountCommandTest.unmountExpectingExitZero;
import static org.assertj.core.api.Assertions.assertThat;

import castore.fuse.testing.Commands;
import castore.fuse.testing.FuseAvailability;
import castore.fuse.testing.MountInfo;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code castore mount --take-over}: a second process takes a live mount over without unmounting,
 * real processes and a real mount. What the kernel holds (open files, node ids, cached entries)
 * must keep working across the hand-over, and a take-over that fails must leave the first process
 * serving.
 */
class TakeOverTest {
    @TempDir
    Path tmp;

    /** A tree of small files in a few directories, and one file of several chunks. */
    private Path tree(byte[] big) throws Exception {
        Path src = Files.createDirectories(tmp.resolve("src"));
        for (int d = 0; d < 8; d++) {
            Path dir = Files.createDirectories(src.resolve("dir" + d).resolve("sub"));
            for (int f = 0; f < 40; f++) {
                Files.writeString(dir.resolve("file" + f + ".txt"), "directory " + d + ", file " + f + "\n".repeat(f));
            }
        }
        Files.write(src.resolve("big.bin"), big);
        Files.createSymbolicLink(src.resolve("link"), Path.of("dir0/sub/file1.txt"));
        return src;
    }

    private static Process takeOver(String store, Path mnt, Path stderr) throws Exception {
        return new ProcessBuilder(castore("mount", "--take-over", "--store", store, mnt.toString()))
                .redirectError(stderr.toFile()).start();
    }

    private static String readyLine(Process p) throws Exception {
        var out = new java.io.BufferedReader(new java.io.InputStreamReader(p.getInputStream(), java.nio.charset.StandardCharsets.UTF_8));
        return MountCommandTest.firstLine(out);
    }

    private static void awaitExitZero(Process p) throws Exception {
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).as("the process that handed over exits").isTrue();
        assertThat(p.exitValue()).isZero();
    }

    @Test
    void aTakenOverMountKeepsItsOpenFilesNodesAndContentAndCanBeTakenOverAgainUnderLoad() throws Exception {
        FuseAvailability.requireMountable();
        byte[] big = new byte[12 << 20];
        new SplittableRandom(11).nextBytes(big);
        Path src = tree(big);
        String store = tmp.resolve("store").toString();
        assertThat(new Cli(store).run("import", "--name", "data", src.toString()).exit()).isZero();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Path firstErr = tmp.resolve("first.err");
        Process first = startMount(ProcessBuilder.Redirect.to(firstErr.toFile()), Map.of(), store, mnt).process();
        Process second = null;
        Process third = null;
        try {
            // What the kernel holds: an open file part read, node ids of looked-up entries.
            FileChannel open = FileChannel.open(mnt.resolve("data/big.bin"));
            ByteBuffer head = ByteBuffer.allocate(1 << 20);
            assertThat(open.read(head, 0)).isEqualTo(1 << 20);
            Object fileKey = Files.readAttributes(mnt.resolve("data/dir3/sub/file7.txt"), BasicFileAttributes.class).fileKey();
            Object dirKey = Files.readAttributes(mnt.resolve("data/dir3"), BasicFileAttributes.class).fileKey();

            second = takeOver(store, mnt, tmp.resolve("second.err"));
            assertThat(readyLine(second)).isEqualTo("castore: mounted " + store + " at " + mnt
                    + " (taken over from pid " + first.pid() + ")");
            awaitExitZero(first);
            assertThat(Files.readString(firstErr)).matches(
                    "(?s).*castore: handed " + mnt + " over to pid " + second.pid() + " \\(requests waited up to \\d+ ms\\)\n");
            assertThat(MountInfo.find(mnt)).as("never unmounted").isPresent();

            // The file opened before reads on, exact bytes, through the handle the first process gave.
            ByteBuffer rest = ByteBuffer.allocate(big.length - (1 << 20));
            while (rest.hasRemaining() && open.read(rest, (1 << 20) + rest.position()) > 0) {
                // fill
            }
            assertThat(Arrays.equals(rest.array(), 0, rest.capacity(), big, 1 << 20, big.length)).isTrue();
            open.close();
            assertThat(Files.readAttributes(mnt.resolve("data/dir3/sub/file7.txt"), BasicFileAttributes.class).fileKey())
                    .isEqualTo(fileKey);
            assertThat(Files.readAttributes(mnt.resolve("data/dir3"), BasicFileAttributes.class).fileKey()).isEqualTo(dirKey);
            Commands.run("diff", "-r", "--no-dereference", src.toString(), mnt.resolve("data").toString()).assertOk();

            // Again, from the second to a third, while readers read every file and the big one at random.
            AtomicBoolean reading = new AtomicBoolean(true);
            AtomicLong reads = new AtomicLong();
            List<CompletableFuture<Void>> readers = new ArrayList<>();
            // Threads of their own: the common pool (one thread on 2 CPUs) reads the ready line below.
            var threads = java.util.concurrent.Executors.newFixedThreadPool(4);
            for (int r = 0; r < 4; r++) {
                int seed = r;
                readers.add(CompletableFuture.runAsync(() -> {
                    var random = new SplittableRandom(seed);
                    try (FileChannel file = FileChannel.open(mnt.resolve("data/big.bin"))) {
                        while (reading.get()) {
                            Path small = mnt.resolve("data/dir" + random.nextInt(8) + "/sub/file" + random.nextInt(40) + ".txt");
                            Path same = src.resolve(mnt.resolve("data").relativize(small).toString());
                            assertThat(Files.readAllBytes(small)).isEqualTo(Files.readAllBytes(same));
                            int at = random.nextInt(big.length - 70_000);
                            ByteBuffer b = ByteBuffer.allocate(random.nextInt(1, 70_000));
                            while (b.hasRemaining() && file.read(b, at + b.position()) > 0) {
                                // fill
                            }
                            assertThat(Arrays.equals(b.array(), 0, b.capacity(), big, at, at + b.capacity())).isTrue();
                            reads.incrementAndGet();
                        }
                    } catch (java.io.IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                }, threads));
            }
            Thread.sleep(300);
            third = takeOver(store, mnt, tmp.resolve("third.err"));
            assertThat(readyLine(third)).endsWith(" (taken over from pid " + second.pid() + ")");
            awaitExitZero(second);
            long before = reads.get();
            Thread.sleep(300);
            reading.set(false);
            CompletableFuture.allOf(readers.toArray(CompletableFuture[]::new)).get(60, TimeUnit.SECONDS);
            threads.shutdown();
            assertThat(reads.get()).as("reads went on after the hand-over").isGreaterThan(before);
            Commands.run("diff", "-r", "--no-dereference", src.toString(), mnt.resolve("data").toString()).assertOk();
            unmountExpectingExitZero(third, mnt);
        } finally {
            for (Process p : new Process[]{third, second}) {
                if (p != null && p.isAlive()) {
                    p.destroyForcibly().waitFor();
                }
            }
            stop(first, mnt);
        }
    }

    @Test
    void aTakeOverThatFailsLeavesTheMountServedByTheFirstProcess() throws Exception {
        FuseAvailability.requireMountable();
        byte[] big = new byte[3 << 20];
        new SplittableRandom(12).nextBytes(big);
        Path src = tree(big);
        String store = tmp.resolve("store").toString();
        assertThat(new Cli(store).run("import", "--name", "data", src.toString()).exit()).isZero();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));

        // Nothing serves this path yet.
        expectError(Commands.run(castore("mount", "--take-over", "--store", store, mnt.toString())), ExitCodes.IO,
                "castore: no process serving a mount at " + mnt + " accepts a take-over");
        expectError(Commands.run(castore("mount", "--take-over", "--passthrough", tmp.resolve("copies").toString(),
                "--store", store, mnt.toString())), ExitCodes.USAGE, "castore: --take-over cannot be used with --passthrough");

        Process first = startMount(store, mnt).process();
        try (FileChannel open = FileChannel.open(mnt.resolve("data/big.bin"))) {
            // A store without what the mount serves cannot take the state: the new process says
            // why and exits; the first goes on serving, the open file included.
            Commands.Result failed = Commands.run(castore("mount", "--take-over", "--store", "memory://", mnt.toString()));
            expectError(failed, ExitCodes.IO, "castore: taking over " + mnt + " failed: this store lacks root 'data' (directory b3:");
            assertThat(failed.stderr()).contains("which the mount serves: take over with the store it was mounted from");
            assertThat(first.isAlive()).isTrue();
            ByteBuffer all = ByteBuffer.allocate(big.length);
            while (all.hasRemaining() && open.read(all, all.position()) > 0) {
                // fill
            }
            assertThat(all.array()).isEqualTo(big);
            Commands.run("diff", "-r", "--no-dereference", src.toString(), mnt.resolve("data").toString()).assertOk();

            // Another user may not take the mount (its descriptor serves every file of it).
            // (Another user's take-over is refused: HandOverTest, in the fuse module, whose classes that user can read.)
        } finally {
            if (first.isAlive()) {
                unmountExpectingExitZero(first, mnt);
            }
            stop(first, mnt);
        }
    }
}

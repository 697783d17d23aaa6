package castore.cli;

import static org.assertj.core.api.Assertions.assertThat;

import castore.fuse.testing.Commands;
import castore.fuse.testing.FuseAvailability;
import castore.fuse.testing.MountInfo;
import castore.s3.S3ProxyServer;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole path a user takes with a remote store, with the real CLI: import to a gRPC daemon (TCP
 * and Unix socket) or to S3 (S3Proxy), mount it in a child {@code castore mount}, {@code diff -r}
 * against the source; then the server goes away mid-mount (reads of unread files fail with EIO in
 * bounded time) and comes back (the same mount reads again).
 */
@Timeout(180)
class RemoteEndToEndTest {
    /** The client's default timeout is 5 s; a failing read must come well within this. */
    private static final Duration EIO_BOUND = Duration.ofSeconds(30);

    @TempDir
    Path tmp;

    /** A few hundred small files in nested directories, a symlink and one multi-chunk file. */
    private Path generateTree() throws IOException {
        Path tree = Files.createDirectory(tmp.resolve("tree"));
        SplittableRandom random = new SplittableRandom(4);
        for (int d = 0; d < 20; d++) {
            Path dir = Files.createDirectories(tree.resolve("d" + d).resolve("sub"));
            for (int f = 0; f < 25; f++) {
                byte[] data = new byte[random.nextInt(1, 5000)];
                random.nextBytes(data);
                Files.write((f % 2 == 0 ? dir : dir.getParent()).resolve("f" + f), data);
            }
        }
        byte[] big = new byte[6 << 20];
        random.nextBytes(big);
        Files.write(tree.resolve("big.bin"), big);
        Path later = Files.createDirectory(tree.resolve("later")); // not read before the server goes away
        for (int i = 0; i < 8; i++) {
            byte[] late = new byte[300_000];
            random.nextBytes(late);
            Files.write(later.resolve("unread" + i), late);
        }
        Files.createSymbolicLink(tree.resolve("link"), Path.of("d0/f1"));
        return tree;
    }

    @Test
    void grpcOverTcp() throws Exception {
        int port;
        try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = probe.getLocalPort();
        }
        int p = port;
        roundTripOverDaemon("127.0.0.1:" + port, "grpc+http://127.0.0.1:" + port, () -> {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", p), 200);
                return true;
            } catch (IOException notYet) {
                return false;
            }
        });
    }

    @Test
    void grpcOverUnixSocket() throws Exception {
        Path socket = tmp.resolve("castore.sock");
        roundTripOverDaemon("unix://" + socket, "grpc+unix://" + socket, () -> Files.exists(socket));
    }

    /**
     * {@code --prefetch}: entering a root fetches its whole tree into the cache in the
     * background, says so on stderr when done, and the tree then reads in full with the daemon gone.
     */
    @Test
    void prefetchFetchesTheWholeTreeSoItReadsWithTheDaemonGone() throws Exception {
        FuseAvailability.requireMountable();
        Path tree = generateTree();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Path socket = tmp.resolve("castore.sock");
        String address = "grpc+unix://" + socket;
        Process server = startUnixDaemon(socket);
        Process mount = null;
        try {
            importTree(address, tree);
            Path stderr = tmp.resolve("mount.stderr");
            // Root names are asked for again after --root-ttl (they may change): keep the entry past the daemon's end.
            mount = startMountWithStderr(stderr, address, mnt, "--cache", tmp.resolve("cache").toString(), "--prefetch", "--root-ttl", "1h");
            assertThat(Files.isDirectory(mnt.resolve("tree"))).isTrue(); // enters the root: the prefetch starts
            Instant deadline = Instant.now().plus(Duration.ofSeconds(60));
            while (!Files.readString(stderr).contains("castore: prefetched ") && Instant.now().isBefore(deadline)) {
                Thread.sleep(50);
            }
            String report = Files.readString(stderr);
            assertThat(report).contains("castore: prefetched ").contains(" 0 failures");
            long files;
            try (var walk = Files.walk(tree)) {
                files = walk.filter(Files::isRegularFile).map(RemoteEndToEndTest::contentDigest).distinct().count();
            }
            assertThat(report).contains(" " + files + " files,");

            server.destroy();
            assertThat(server.waitFor(60, TimeUnit.SECONDS)).isTrue();
            diff(tree, mnt.resolve("tree")); // every byte from the cache
        } finally {
            stopMount(mount, mnt);
            server.destroyForcibly().waitFor();
        }
    }

    /**
     * {@code --record-trace} on one mount writes the directories and files read there, in the
     * order they were first read; a later mount with {@code --prefetch-trace} and a fresh cache
     * fetches exactly those in the background, says so, and reads them with the daemon gone,
     * while a file the trace does not name fails with EIO.
     */
    @Test
    void aReadTraceRecordedOnOneMountIsPrefetchedByAnother() throws Exception {
        FuseAvailability.requireMountable();
        Path tree = generateTree();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Path socket = tmp.resolve("castore.sock");
        String address = "grpc+unix://" + socket;
        Path trace = tmp.resolve("app.trace");
        List<String> read = List.of("d3/sub/f0", "d3/f1", "big.bin", "d7/sub/f4");
        Process server = startUnixDaemon(socket);
        Process mount = null;
        try {
            importTree(address, tree);
            mount = startMount(address, mnt, List.of(), List.of("--record-trace", trace.toString()));
            for (String path : read) {
                assertThat(Files.readAllBytes(mnt.resolve("tree").resolve(path))).isEqualTo(Files.readAllBytes(tree.resolve(path)));
            }
            stopMount(mount, mnt);
            mount = null;
            List<String> lines = Files.readAllLines(trace);
            assertThat(lines.getFirst()).isEqualTo("castore-read-trace 1");
            List<String> files = new ArrayList<>();
            for (String path : read) {
                files.add("f " + contentDigest(tree.resolve(path)) + " " + Files.size(tree.resolve(path)));
            }
            assertThat(lines.stream().filter(l -> l.startsWith("f "))).as("the files read, in order").containsExactlyElementsOf(files);
            assertThat(lines.stream().filter(l -> l.startsWith("d "))).as("tree, d3, d3/sub, d7 and d7/sub").hasSize(5);
            assertThat(lines).hasSize(1 + 5 + 4);

            // A second trace, written by hand (a comment, a repeat of the first): one more file.
            Path more = Files.writeString(tmp.resolve("more.trace"), "castore-read-trace 1\n# d7/f3\nf "
                    + contentDigest(tree.resolve("d7/f3")) + " " + Files.size(tree.resolve("d7/f3")) + "\n" + files.getFirst() + "\n");
            Path stderr = tmp.resolve("mount.stderr");
            mount = startMountWithStderr(stderr, address, mnt, "--cache", tmp.resolve("cache").toString(),
                    "--prefetch-trace", trace.toString(), "--prefetch-trace", more.toString(), "--root-ttl", "1h");
            assertThat(Files.isDirectory(mnt.resolve("tree"))).isTrue(); // the root's entry, kept past the daemon's end
            Instant deadline = Instant.now().plus(Duration.ofSeconds(60));
            while (!Files.readString(stderr).contains("castore: prefetched the traces ") && Instant.now().isBefore(deadline)) {
                Thread.sleep(50);
            }
            assertThat(Files.readString(stderr)).contains("castore: prefetched the traces " + trace + ", " + more
                    + ": 5 directories, 5 files, 0 failures, in ");
            server.destroy();
            assertThat(server.waitFor(60, TimeUnit.SECONDS)).isTrue();
            for (String path : append(read, "d7/f3")) {
                assertThat(Files.readAllBytes(mnt.resolve("tree").resolve(path))).as(path).isEqualTo(Files.readAllBytes(tree.resolve(path)));
            }
            assertReadFailsWithEio(mnt.resolve("tree/d3/sub/f2"));
        } finally {
            stopMount(mount, mnt);
            server.destroyForcibly().waitFor();
        }
    }

    /**
     * A second mount over the cache a first one filled reads the whole tree from it, identical,
     * with the daemon gone once the root is entered: small files are opened without a read and
     * read from the cache's disk straight into the FUSE reply (docs/cache.md, "Warm small blobs").
     */
    @Test
    void aSecondMountOverTheSameCacheReadsTheTreeFromItWithTheDaemonGone() throws Exception {
        FuseAvailability.requireMountable();
        Path tree = generateTree();
        readThenReadFromTheCacheAlone(tree,
                mounted -> diff(tree, mounted), // fills the cache
                mounted -> diff(tree, mounted)); // every byte from the cache
    }

    /** Reads {@code tree}'s copy under a mount. */
    interface MountedCheck {
        void check(Path mounted) throws Exception;
    }

    /**
     * Imports {@code tree} into a daemon on a Unix socket, runs {@code first} on it through a
     * mount with --cache, then {@code again} through a second mount over the same cache after
     * the daemon is gone.
     */
    private void readThenReadFromTheCacheAlone(Path tree, MountedCheck first, MountedCheck again) throws Exception {
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Path socket = tmp.resolve("castore.sock");
        String address = "grpc+unix://" + socket;
        String cache = tmp.resolve("cache").toString();
        Process server = startUnixDaemon(socket);
        Process mount = null;
        try {
            importTree(address, tree);
            mount = startMount(address, mnt, List.of(), List.of("--cache", cache));
            first.check(mnt.resolve("tree"));
            stopMount(mount, mnt);
            mount = startMount(address, mnt, List.of(), List.of("--cache", cache, "--root-ttl", "1h"));
            assertThat(Files.isDirectory(mnt.resolve("tree"))).isTrue();
            server.destroy();
            assertThat(server.waitFor(60, TimeUnit.SECONDS)).isTrue();
            again.check(mnt.resolve("tree"));
        } finally {
            stopMount(mount, mnt);
            server.destroyForcibly().waitFor();
        }
    }

    /**
     * A file large enough to stream past the cache's memory tier (80 MiB; the default tier makes
     * blobs of 64 MiB and more "large"), read cold through a mount with --cache: the stream's
     * chunks come in arrays the cache's pump gives back to the stream (docs/cache.md, "One
     * stream for a read from the start"). Two readers at once, one from the start and one from
     * the middle, then a second mount over the same cache with the daemon gone: every byte right.
     */
    @Test
    void aLargeFileStreamedColdThroughTheCacheReadsRightAndIsCached() throws Exception {
        FuseAvailability.requireMountable();
        Path tree = Files.createDirectory(tmp.resolve("tree"));
        byte[] big = new byte[80 << 20];
        new SplittableRandom(27).nextBytes(big);
        Path source = Files.write(tree.resolve("large.bin"), big);
        readThenReadFromTheCacheAlone(tree, mounted -> {
            Path large = mounted.resolve("large.bin");
            CompletableFuture<Long> middle = CompletableFuture.supplyAsync(() -> {
                try (var in = Files.newInputStream(large)) {
                    in.skipNBytes(big.length / 2);
                    byte[] rest = in.readAllBytes();
                    return (long) java.util.Arrays.mismatch(rest, java.util.Arrays.copyOfRange(big, big.length / 2, big.length));
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            });
            assertThat(Files.mismatch(source, large)).as("first differing byte").isEqualTo(-1);
            assertThat(middle.get(120, TimeUnit.SECONDS)).isEqualTo(-1);
        }, mounted -> assertThat(Files.mismatch(source, mounted.resolve("large.bin"))).as("from the cache alone").isEqualTo(-1));
    }

    /**
     * A root in use is kept fresh in the background: re-pointed on the daemon, the mount shows
     * its new content within the root TTL (and never the old one again); removed, it is gone.
     */
    @Test
    void aRootInUseRepointedOrRemovedOnTheDaemonShowsWithinTheTtl() throws Exception {
        FuseAvailability.requireMountable();
        Path one = Files.createDirectories(tmp.resolve("one"));
        Files.writeString(one.resolve("v"), "1");
        Path two = Files.createDirectories(tmp.resolve("two"));
        Files.writeString(two.resolve("v"), "2");
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Path socket = tmp.resolve("castore.sock");
        String address = "grpc+unix://" + socket;
        Process server = startUnixDaemon(socket);
        Process mount = null;
        Duration ttl = Duration.ofMillis(500);
        try {
            importTree(address, one, "--name", "app");
            mount = startMountWithStderr(tmp.resolve("mount.stderr"), address, mnt, "--root-ttl", ttl.toMillis() + "ms");
            Path v = mnt.resolve("app").resolve("v");
            for (Instant end = Instant.now().plusMillis(1500); Instant.now().isBefore(end); Thread.sleep(50)) {
                assertThat(Files.readString(v)).isEqualTo("1"); // in use: its answer is refreshed
            }

            importTree(address, two, "--name", "app");
            Instant changed = Instant.now();
            while (Files.readString(v).equals("1")) {
                assertThat(Duration.between(changed, Instant.now())).as("the new tree within the TTL (and a busy machine's slack)").isLessThan(ttl.plusSeconds(10));
                Thread.sleep(20);
            }
            for (Instant end = Instant.now().plusMillis(1500); Instant.now().isBefore(end); Thread.sleep(50)) {
                assertThat(Files.readString(v)).as("never the old tree again").isEqualTo("2");
            }

            Cli.Result removed = new Cli(address).run("rm", "app");
            assertThat(removed.exit()).as(removed.stderr()).isZero();
            Instant gone = Instant.now();
            while (Files.exists(mnt.resolve("app"))) {
                assertThat(Duration.between(gone, Instant.now())).as("gone within the TTL (and a busy machine's slack)").isLessThan(ttl.plusSeconds(10));
                Thread.sleep(20);
            }
        } finally {
            stopMount(mount, mnt);
            server.destroyForcibly().waitFor();
        }
    }

    /**
     * A mount with --cache and the default root TTL (1 s) over a daemon that goes away keeps
     * serving what it has: root names keep their last answer while the catalog cannot be asked,
     * so the tree read before reads again from the cache after the kernel's caches are dropped
     * and the TTL is long past. It says so on stderr, a file never read fails with EIO, and once
     * the daemon is back the mount says so and reads the rest. With --timeout 2s, the EIO comes
     * after that long.
     */
    @Test
    void aMountOverADaemonThatGoesAwayKeepsServingWhatItHasCached() throws Exception {
        FuseAvailability.requireMountable();
        Path tree = generateTree();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Path socket = tmp.resolve("castore.sock");
        String address = "grpc+unix://" + socket;
        Path stderr = tmp.resolve("mount.stderr");
        Process server = startUnixDaemon(socket);
        Process mount = null;
        try {
            importTree(address, tree);
            mount = startMountWithStderr(stderr, address, mnt, "--cache", tmp.resolve("cache").toString(), "--timeout", "2s");
            diff(tree, mnt.resolve("tree"), "later");

            server.destroy();
            assertThat(server.waitFor(60, TimeUnit.SECONDS)).isTrue();
            Thread.sleep(1500); // past the root TTL
            Commands.run("sh", "-c", "echo 3 > /proc/sys/vm/drop_caches").assertOk(); // names and bytes asked for again
            diff(tree, mnt.resolve("tree"), "later"); // the root's last answer, every byte from the cache
            assertThat(Files.readString(stderr)).contains("castore: the root catalog cannot be asked (")
                    .contains("root names it answered before keep their last answer until it answers again");
            assertReadFailsWithEio(mnt.resolve("tree/later/unread0"));
            assertThat(Files.readString(stderr)).as("the EIO came after --timeout").contains("within 2000 ms");

            server = startUnixDaemon(socket);
            Cli.Result served = answeredOnce(new Cli(address));
            assertThat(served.exit()).as(served.stderr()).isZero();
            diff(tree, mnt.resolve("tree"));
            Instant deadline = Instant.now().plusSeconds(30);
            while (!Files.readString(stderr).contains("castore: the root catalog answers again") && Instant.now().isBefore(deadline)) {
                Thread.sleep(50);
            }
            assertThat(Files.readString(stderr)).contains("castore: the root catalog answers again");
        } finally {
            stopMount(mount, mnt);
            server.destroyForcibly().waitFor();
        }
    }

    /**
     * A machine that mounts while the daemon is down: the roots an earlier mount over the same
     * --cache was answered are kept there, so the tree that mount read is read again from the
     * cache, with the default root TTL, and its root is found without waiting for the store's
     * timeout (the mount's first questions went unanswered). A file never read fails with EIO.
     */
    @Test
    void aMountStartedWhileTheDaemonIsDownReadsWhatAnEarlierMountCached() throws Exception {
        FuseAvailability.requireMountable();
        Path tree = generateTree();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Path socket = tmp.resolve("castore.sock");
        String address = "grpc+unix://" + socket;
        String cache = tmp.resolve("cache").toString();
        Path stderr = tmp.resolve("mount.stderr");
        Process server = startUnixDaemon(socket);
        Process mount = null;
        try {
            importTree(address, tree);
            mount = startMount(address, mnt, List.of(), List.of("--cache", cache));
            diff(tree, mnt.resolve("tree"), "later");
            stopMount(mount, mnt);
            server.destroy();
            assertThat(server.waitFor(60, TimeUnit.SECONDS)).isTrue();

            mount = startMountWithStderr(stderr, address, mnt, "--cache", cache);
            assertThat(Files.readString(stderr)).contains("castore: the store does not answer yet (");
            Instant looked = Instant.now();
            assertThat(Files.isDirectory(mnt.resolve("tree"))).isTrue();
            assertThat(Duration.between(looked, Instant.now())).as("the kept root, without waiting for the store's 5 s timeout")
                    .isLessThan(Duration.ofSeconds(4));
            diff(tree, mnt.resolve("tree"), "later");
            assertReadFailsWithEio(mnt.resolve("tree/later/unread0"));
            assertThat(Commands.run("stat", mnt.resolve("never-imported").toString()).stderr()).contains("Input/output error");
        } finally {
            stopMount(mount, mnt);
            server.destroyForcibly().waitFor();
        }
    }

    /**
     * A mount over a daemon that is not there yet comes up all the same (its first questions to
     * the store time out), says so on stderr, fails reads with EIO, and serves the tree once the
     * daemon is started and the import is done, without remounting.
     */
    @Test
    void aMountOverADaemonNotYetStartedSaysSoAndRecovers() throws Exception {
        FuseAvailability.requireMountable();
        Path tree = generateTree();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Path socket = tmp.resolve("castore.sock");
        String address = "grpc+unix://" + socket;
        Path stderr = tmp.resolve("mount.stderr");
        Instant start = Instant.now();
        Process mount = startMountWithStderr(stderr, address, mnt, "--root-ttl", "0");
        Process server = null;
        try {
            assertThat(Duration.between(start, Instant.now())).as("ready without waiting for the store's timeout").isLessThan(EIO_BOUND);
            assertThat(Files.readString(stderr)).contains("castore: the store does not answer yet (")
                    .contains("reads from it fail with EIO until it does");
            Commands.Result stat = Commands.run("stat", mnt.resolve("tree").toString());
            assertThat(stat.exitCode()).isNotZero();
            assertThat(stat.stderr()).contains("Input/output error");

            server = startUnixDaemon(socket);
            importTree(address, tree);
            diff(tree, mnt.resolve("tree"));
        } finally {
            stopMount(mount, mnt);
            if (server != null) {
                server.destroyForcibly().waitFor();
            }
        }
    }

    /**
     * A mount over the daemon with --cache and --passthrough: the plain copy of a big file is made
     * through the cached remote blob service, and a later mount reads the file from it.
     */
    @Test
    void grpcWithCacheAndPassthroughMakesPlainCopiesOfBigFiles() throws Exception {
        FuseAvailability.requireMountable();
        FuseAvailability.requireRoot(); // passthrough needs CAP_SYS_ADMIN
        Path socket = tmp.resolve("castore.sock");
        String address = "grpc+unix://" + socket;
        Path tree = generateTree();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Path copies = FuseAvailability.backingDirectory(tmp.resolve("copies"));
        List<String> options = List.of("--cache", tmp.resolve("cache").toString(), "--passthrough", copies.toString(),
                "--passthrough-min-size", "1M");
        Process server = startDaemon(MountCommandTest.castore("daemon", "--store", tmp.resolve("store").toString(),
                "--listen", "unix://" + socket), () -> Files.exists(socket));
        Process mount = null;
        try {
            Cli.Result imported = new Cli(address).run("import", "--quiet", tree.toString());
            assertThat(imported.exit()).as(imported.stderr()).isZero();
            mount = startMount(address, mnt, List.of(), options);
            diff(tree, mnt.resolve("tree"));
            Instant deadline = Instant.now().plusSeconds(60);
            List<Path> made;
            do {
                Thread.sleep(50);
                try (var files = Files.walk(copies)) {
                    made = files.filter(f -> !f.getParent().endsWith("tmp") && f.getFileName().toString().matches("[0-9a-f]{64}"))
                            .toList();
                }
            } while (made.isEmpty() && Instant.now().isBefore(deadline));
            assertThat(made).as("one copy: big.bin, the only file of 1 MiB or more").hasSize(1);
            assertThat(Files.readAllBytes(made.getFirst())).isEqualTo(Files.readAllBytes(tree.resolve("big.bin")));
            stopMount(mount, mnt);
            mount = startMount(address, mnt, List.of(), options);
            assertThat(Commands.run("cmp", tree.resolve("big.bin").toString(), mnt.resolve("tree/big.bin").toString()).exitCode())
                    .isZero();
            diff(tree, mnt.resolve("tree"));
        } finally {
            stopMount(mount, mnt);
            server.destroyForcibly().waitFor();
            FuseAvailability.deleteBackingDirectory(copies, tmp);
        }
    }

    private void roundTripOverDaemon(String listen, String address, Ready ready) throws Exception {
        FuseAvailability.requireMountable();
        Path tree = generateTree();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        List<String> daemon = MountCommandTest.castore("daemon", "--store", tmp.resolve("store").toString(), "--listen", listen);
        Process server = startDaemon(daemon, ready);
        Process mount = null;
        try {
            Cli cli = new Cli(address);
            Cli.Result imported = cli.run("import", "--quiet", tree.toString());
            assertThat(imported.exit()).as(imported.stderr()).isZero();
            mount = startMount(address, mnt, List.of());
            diff(tree, mnt.resolve("tree"), "later");

            server.destroy(); // SIGTERM: graceful stop
            assertThat(server.waitFor(60, TimeUnit.SECONDS)).isTrue();
            assertReadFailsWithEio(mnt.resolve("tree/later/unread0"));

            server = startDaemon(daemon, ready);
            Cli.Result served = answeredOnce(cli);
            assertThat(served.exit()).as(served.stderr()).isZero();
            assertThat(Commands.run("cmp", tree.resolve("later/unread1").toString(), mnt.resolve("tree/later/unread1").toString()).exitCode())
                    .as("reads work again after the daemon is back, same mount").isZero();
            diff(tree, mnt.resolve("tree"));
        } finally {
            stopMount(mount, mnt);
            server.destroyForcibly().waitFor();
        }
    }

    @Test
    void s3ImportMountVerifyGcAndRestart() throws Exception {
        FuseAvailability.requireMountable();
        Path tree = generateTree();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        try (S3ProxyServer s3 = S3ProxyServer.start(tmp.resolve("s3"))) {
            s3.createBucket("e2e");
            String address = s3.address("e2e", "store");
            Cli cli = new Cli(address);
            Cli.Result imported = cli.run("import", "--quiet", tree.toString());
            assertThat(imported.exit()).as(imported.stderr()).isZero();
            Path other = Files.createDirectory(tmp.resolve("other"));
            Files.writeString(other.resolve("only-here"), "gone after gc");
            assertThat(cli.run("import", "--quiet", other.toString()).exit()).isZero();

            Process mount = startMount(address, mnt, List.of("AWS_ACCESS_KEY_ID=" + S3ProxyServer.ACCESS_KEY,
                    "AWS_SECRET_ACCESS_KEY=" + S3ProxyServer.SECRET_KEY));
            try {
                diff(tree, mnt.resolve("tree"), "later");
                Cli.Result verify = cli.run("verify");
                assertThat(verify.exit()).as(verify.stderr()).isZero();
                assertThat(cli.run("rm", "other").exit()).isZero();
                Cli.Result gc = cli.run("gc");
                assertThat(gc.exit()).as(gc.stderr()).isZero();
                assertThat(gc.stderr()).contains("removed");
                verify = cli.run("verify");
                assertThat(verify.exit()).as(verify.stderr()).isZero();
                assertThat(cli.run("cat", "other/only-here").exit()).isEqualTo(ExitCodes.NOT_FOUND);

                s3.stop();
                assertReadFailsWithEio(mnt.resolve("tree/later/unread0"));
                s3.restart();
                assertThat(answeredOnce(cli).exit()).as("S3Proxy answers again").isZero();
                assertThat(Commands.run("cmp", tree.resolve("later/unread1").toString(), mnt.resolve("tree/later/unread1").toString()).exitCode())
                        .as("reads work again after S3 is back, same mount").isZero();
                diff(tree, mnt.resolve("tree"));
            } finally {
                stopMount(mount, mnt);
            }
        }
    }

    /**
     * A mount over S3 started while S3 is down comes up (the bucket check at open does not fail a
     * mount, only other commands), says the store does not answer yet, and reads the tree an
     * earlier mount over the same --cache read, by the root name kept there; once S3 is back, the
     * rest reads too, same mount.
     */
    @Test
    void aMountOverS3StartedWhileS3IsDownReadsWhatAnEarlierMountCached() throws Exception {
        FuseAvailability.requireMountable();
        Path tree = generateTree();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        String cache = tmp.resolve("cache").toString();
        Map<String, String> credentials = Map.of("AWS_ACCESS_KEY_ID", S3ProxyServer.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY", S3ProxyServer.SECRET_KEY);
        try (S3ProxyServer s3 = S3ProxyServer.start(tmp.resolve("s3"))) {
            s3.createBucket("e2e");
            String address = s3.address("e2e", "store");
            Cli cli = new Cli(address);
            Cli.Result imported = cli.run("import", "--quiet", tree.toString());
            assertThat(imported.exit()).as(imported.stderr()).isZero();
            Process mount = startMountWithStderr(tmp.resolve("first.stderr"), address, mnt, credentials, "--cache", cache);
            try {
                diff(tree, mnt.resolve("tree"), "later");
            } finally {
                stopMount(mount, mnt);
            }

            s3.stop();
            Path stderr = tmp.resolve("mount.stderr");
            mount = startMountWithStderr(stderr, address, mnt, credentials, "--cache", cache);
            try {
                assertThat(Files.readString(stderr)).contains("castore: the store does not answer yet (");
                diff(tree, mnt.resolve("tree"), "later");
                assertReadFailsWithEio(mnt.resolve("tree/later/unread0"));
                Cli.Result ls = cli.run("ls", "tree");
                assertThat(ls.exit()).as("other commands still fail at once").isEqualTo(ExitCodes.IO);
                assertThat(ls.stderr()).contains("not reachable");

                s3.restart();
                assertThat(answeredOnce(cli).exit()).as("S3Proxy answers again").isZero();
                diff(tree, mnt.resolve("tree"));
            } finally {
                stopMount(mount, mnt);
            }
        }
    }

    /**
     * {@code castore copy} from a local store to a daemon, on to S3 and back to a new local
     * store: the tree exports identical from each, S3 verifies, a second copy sends nothing, and
     * a root missing from the source names nothing in the destination.
     */
    @Test
    void copyFromALocalStoreToADaemonToS3AndBack() throws Exception {
        Path tree = generateTree();
        Path socket = tmp.resolve("castore.sock");
        String daemon = "grpc+unix://" + socket;
        Cli local = new Cli(tmp.resolve("local").toString());
        Cli.Result imported = local.run("import", "--quiet", tree.toString());
        assertThat(imported.exit()).as(imported.stderr()).isZero();
        Process server = startUnixDaemon(socket);
        try (S3ProxyServer s3 = S3ProxyServer.start(tmp.resolve("s3"))) {
            s3.createBucket("copies");
            String bucket = s3.address("copies", "store");
            String back = tmp.resolve("back").toString();

            Cli.Result toDaemon = local.run("copy", "--to", daemon, "tree");
            assertThat(toDaemon.exit()).as(toDaemon.stderr()).isZero();
            assertThat(toDaemon.stdout()).isEqualTo(imported.stdout());
            Cli.Result toS3 = new Cli(daemon).run("copy", "--to", bucket, "tree");
            assertThat(toS3.exit()).as(toS3.stderr()).isZero();
            Cli.Result toLocal = new Cli(bucket).run("copy", "--to", back, "--name", "again", "tree");
            assertThat(toLocal.exit()).as(toLocal.stderr()).isZero();
            for (String[] copy : new String[][] {{daemon, "tree"}, {bucket, "tree"}, {back, "again"}}) {
                Path out = tmp.resolve("out-" + copy[1] + "-" + Math.abs(copy[0].hashCode()));
                Cli.Result exported = new Cli(copy[0]).run("export", "--quiet", copy[1], out.toString());
                assertThat(exported.exit()).as(copy[0] + ": " + exported.stderr()).isZero();
                diff(tree, out);
            }
            Cli.Result verify = new Cli(bucket).run("verify");
            assertThat(verify.exit()).as(verify.stderr()).isZero();

            Cli.Result again = local.run("copy", "--to", bucket, "tree");
            assertThat(again.exit()).as(again.stderr()).isZero();
            assertThat(again.stderr()).startsWith("copied 1 root: 0 directories sent (of 1 reached), 0 blobs sent");

            assertThat(local.run("import", "--quiet", "--name", "other", tree.resolve("d3").toString()).exit()).isZero();
            Cli.Result missing = local.run("copy", "--to", daemon, "other", "nope");
            assertThat(missing.exit()).isEqualTo(ExitCodes.NOT_FOUND);
            assertThat(missing.stderr()).isEqualTo("castore: no root named 'nope'\n");
            assertThat(new Cli(daemon).run("roots").stdout()).doesNotContain("other");
        } finally {
            server.destroyForcibly().waitFor();
        }
    }

    /**
     * A tree whose Directories outgrow what the daemon holds of one closure ({@code --max-closure},
     * here 64 KiB against about 170 KiB) is imported to it and copied to it in parts; each reads
     * back as the source. Before session 38 both failed at the end with RESOURCE_EXHAUSTED, after
     * every blob had been sent. A size that is none is a usage error.
     */
    @Test
    void aTreeWhoseDirectoriesOutgrowTheDaemonsClosureLimitGoesInParts() throws Exception {
        Path tree = wideTree("wide");
        Path other = wideTree("copied"); // other contents: nothing of it is on the daemon before the copy
        Path socket = tmp.resolve("parts.sock");
        String daemon = "grpc+unix://" + socket;
        Process server = startDaemon(MountCommandTest.castore("daemon", "--store", tmp.resolve("store").toString(),
                "--listen", "unix://" + socket, "--max-closure", "64K"), () -> Files.exists(socket));
        try {
            importTree(daemon, tree);
            Cli local = new Cli(tmp.resolve("local").toString());
            Cli.Result imported = local.run("import", "--quiet", other.toString());
            assertThat(imported.exit()).as(imported.stderr()).isZero();
            Cli.Result copied = local.run("copy", "--to", daemon, "copied");
            assertThat(copied.exit()).as(copied.stderr()).isZero();
            assertThat(copied.stderr()).startsWith("copied 1 root: 121 directories sent (of 121 reached)");
            for (Path source : List.of(tree, other)) {
                Path out = tmp.resolve("out-" + source.getFileName());
                Cli.Result exported = new Cli(daemon).run("export", "--quiet", source.getFileName().toString(), out.toString());
                assertThat(exported.exit()).as(exported.stderr()).isZero();
                diff(source, out);
            }
        } finally {
            server.destroyForcibly().waitFor();
        }
        Cli.Result bad = Cli.raw("daemon", "--store", "memory://", "--listen", "127.0.0.1:0", "--max-closure", "0");
        assertThat(bad.exit()).isEqualTo(ExitCodes.USAGE);
        assertThat(bad.stderr()).startsWith("castore: --max-closure: ");
    }

    private static List<String> append(List<String> list, String more) {
        List<String> all = new ArrayList<>(list);
        all.add(more);
        return all;
    }

    /** tmp/NAME: 120 directories of 30 small files each, the files' contents naming the tree. */
    private Path wideTree(String name) throws IOException {
        Path tree = tmp.resolve(name);
        for (int i = 0; i < 120; i++) {
            Path d = Files.createDirectories(tree.resolve("directory-" + i));
            for (int f = 0; f < 30; f++) {
                Files.writeString(d.resolve("a-file-with-a-longer-name-" + f), name + " " + i + "/" + f);
            }
        }
        return tree;
    }

    interface Ready {
        boolean now() throws Exception;
    }

    private static Process startDaemon(List<String> command, Ready ready) throws Exception {
        Process p = new ProcessBuilder(command).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        Instant deadline = Instant.now().plusSeconds(60);
        while (!ready.now()) {
            assertThat(p.isAlive()).as("daemon exited with %s", p.isAlive() ? 0 : p.exitValue()).isTrue();
            assertThat(Instant.now()).as("daemon ready within 60 s").isBefore(deadline);
            Thread.sleep(50);
        }
        return p;
    }

    /** A child {@code castore mount --store ADDRESS MNT}, after its ready line. */
    private static Process startMount(String address, Path mnt, List<String> env) throws Exception {
        return startMount(address, mnt, env, List.of());
    }

    /** A child {@code castore mount --store ADDRESS OPTIONS... MNT}, after its ready line. */
    private static Process startMount(String address, Path mnt, List<String> env, List<String> options) throws Exception {
        List<String> args = new ArrayList<>(List.of("mount", "--store", address));
        args.addAll(options);
        args.add(mnt.toString());
        ProcessBuilder builder = new ProcessBuilder(MountCommandTest.castore(args.toArray(String[]::new)))
                .redirectError(ProcessBuilder.Redirect.INHERIT);
        for (String e : env) {
            builder.environment().put(e.substring(0, e.indexOf('=')), e.substring(e.indexOf('=') + 1));
        }
        Process p = builder.start();
        var out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String line = MountCommandTest.firstLine(out);
        if (line == null || !line.startsWith("castore: mounted ")) {
            stopMount(p, mnt);
            throw new AssertionError("mount did not start: " + line);
        }
        return p;
    }

    private static void stopMount(Process p, Path mnt) throws InterruptedException {
        if (p != null && p.isAlive()) {
            Commands.run("umount", mnt.toString());
            if (!p.waitFor(30, TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor();
            }
        }
        if (MountInfo.find(mnt).isPresent()) {
            Commands.run("umount", "-l", mnt.toString());
        }
    }

    /**
     * {@code castore roots}, tried up to 5 times: a server just (re)started answers its first call
     * slowly, and on a busy machine that can outlast the mount's 5 s timeout. The tests after a
     * restart check recovery, not that timeout, so the server answers one call first.
     */
    private static Cli.Result answeredOnce(Cli cli) {
        Cli.Result result = cli.run("roots");
        for (int attempt = 1; attempt < 5 && result.exit() != 0; attempt++) {
            result = cli.run("roots");
        }
        return result;
    }

    /** {@code castore daemon} serving tmp/store on the Unix socket {@code socket}, once the socket is there. */
    private Process startUnixDaemon(Path socket) throws Exception {
        return startDaemon(MountCommandTest.castore("daemon", "--store", tmp.resolve("store").toString(), "--listen", "unix://" + socket),
                () -> Files.exists(socket));
    }

    /** {@code castore import --quiet OPTIONS... TREE} to {@code address}, which must succeed. */
    private static void importTree(String address, Path tree, String... options) {
        List<String> args = new ArrayList<>(List.of("--quiet"));
        args.addAll(List.of(options));
        args.add(tree.toString());
        Cli.Result imported = new Cli(address).run("import", args.toArray(String[]::new));
        assertThat(imported.exit()).as(imported.stderr()).isZero();
    }

    /** {@code castore mount --store ADDRESS OPTIONS... MNT} with its stderr in a file, after its ready line (checked). */
    private static Process startMountWithStderr(Path stderr, String address, Path mnt, String... options) throws Exception {
        return startMountWithStderr(stderr, address, mnt, Map.of(), options);
    }

    /** {@link #startMountWithStderr(Path, String, Path, String...)} with {@code env} added to the environment. */
    private static Process startMountWithStderr(Path stderr, String address, Path mnt, Map<String, String> env, String... options)
            throws Exception {
        List<String> args = new ArrayList<>(List.of("mount", "--store", address));
        args.addAll(List.of(options));
        args.add(mnt.toString());
        ProcessBuilder builder = new ProcessBuilder(MountCommandTest.castore(args.toArray(String[]::new))).redirectError(stderr.toFile());
        builder.environment().putAll(env);
        Process mount = builder.start();
        var out = new BufferedReader(new InputStreamReader(mount.getInputStream(), StandardCharsets.UTF_8));
        String line = MountCommandTest.firstLine(out);
        if (!("castore: mounted " + address + " at " + mnt).equals(line)) {
            stopMount(mount, mnt);
            throw new AssertionError("mount did not start: " + line + "\n" + Files.readString(stderr));
        }
        return mount;
    }

    /** The BLAKE3 digest of a file's bytes: files of equal content are one blob. */
    private static castore.model.B3Digest contentDigest(Path file) {
        try {
            return castore.hash.Blake3.digest(Files.readAllBytes(file));
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static void diff(Path expected, Path actual, String... excluded) {
        List<String> command = new ArrayList<>(List.of("diff", "-r", "--no-dereference"));
        for (String name : excluded) {
            command.add("--exclude=" + name);
        }
        command.addAll(List.of(expected.toString(), actual.toString()));
        Commands.Result diff = Commands.run(command);
        assertThat(diff.exitCode()).as(diff.stdout() + diff.stderr()).isZero();
    }

    private static void assertReadFailsWithEio(Path file) {
        Instant start = Instant.now();
        Commands.Result cat = Commands.run("cat", file.toString());
        assertThat(cat.exitCode()).isNotZero();
        assertThat(cat.stderr()).contains("Input/output error");
        assertThat(Duration.between(start, Instant.now())).as("EIO in bounded time").isLessThan(EIO_BOUND);
    }
}

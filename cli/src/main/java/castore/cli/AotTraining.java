package castore.cli;

import castore.fs.CastoreFileSystem;
import castore.fs.FsOptions;
import castore.fs.WarmUp;
import castore.fuse.server.KernelSimulator;
import castore.grpc.ListenAddress;
import castore.io.FileTrees;
import castore.grpc.server.CastoreServer;
import castore.s3.S3WarmUp;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

/**
 * The training run for the JDK AOT cache the {@code ./castore} launcher builds after each build
 * (docs/performance.md, "AOT cache"): a JVM started with {@code -XX:AOTCacheOutput} runs this,
 * and later runs load the classes it used already parsed and linked, with their profiles.
 *
 * <p>It needs nothing from the machine: it generates a tree in a temporary directory (thousands of
 * small files, a few multi-chunk files, identical files, symlinks, nesting, an executable),
 * imports it through the real command line, runs every inspection command on it, serves it through
 * the FUSE request handler on plain memory (no kernel mount) and through a loopback gRPC daemon,
 * runs the S3 client against an S3 held in memory, and deletes everything it created.
 * Exits 0 when every step behaved as expected, 1 otherwise (the launcher then builds no cache).
 */
public final class AotTraining {
    private static final PrintStream DISCARD = new PrintStream(OutputStream.nullOutputStream(), false, StandardCharsets.UTF_8);

    private final Path work;
    private final Path tree;
    private final List<String> files = new ArrayList<>();

    private AotTraining(Path work) {
        this.work = work;
        this.tree = work.resolve("tree");
    }

    public static void main(String[] args) {
        int exit;
        try {
            Path work = Files.createTempDirectory("castore-aot-training");
            // A hook, not a finally: it also runs when the build is interrupted (Ctrl-C, SIGTERM).
            Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(work)));
            train(work);
            exit = 0;
        } catch (Exception | AssertionError e) {
            System.err.println("castore aot training failed: " + e);
            exit = 1;
        }
        System.exit(exit); // the import's pools may hold threads; the JVM writes the cache at exit
    }

    /** Runs the whole workload in {@code work}, an empty directory the caller deletes afterwards. */
    static void train(Path work) throws Exception {
        new AotTraining(work).run();
    }

    private void run() throws Exception {
        generateTree();
        // The default (durable) store once; the rest on a store that skips fsync, to keep the training short.
        castore(0, "import", "--store", work.resolve("durable").toString(), tree.toString());
        String store = "local://" + work.resolve("store") + "?fsync=false";
        castore(0, "--version");
        castore(0, "--help");
        castore(0, "import", "-q", "--store", store, tree.toString());
        castore(0, "import", "--progress", "--store", store, "--name", "again", tree.toString());
        castore(0, "import", "--store", store, tree.resolve("multi-0.bin").toString(), tree.resolve("link-up").toString());
        castore(0, "roots", "--store", store);
        castore(0, "ls", "--store", store, "tree");
        castore(0, "ls", "--store", store, "tree/d0/d1");
        castore(0, "stat", "--store", store, "tree");
        castore(0, "stat", "--store", store, "tree/multi-1.bin");
        castore(0, "stat", "--store", store, "tree/link-up");
        castore(0, "cat", "--store", store, "tree/multi-2.bin");
        castore(0, "cat", "--store", store, "tree/" + files.get(7));
        castore(0, "export", "-q", "--store", store, "tree", work.resolve("export").toString());
        castore(0, "verify", "--store", store);
        castore(0, "rm", "--store", store, "again");
        castore(0, "gc", "--store", store);
        castore(ExitCodes.NOT_FOUND, "cat", "--store", store, "tree/no-such-file");
        castore(ExitCodes.USAGE, "ls", "--no-such-option");
        serveThroughFuse(store);
        warmUp();
        throughADaemon(store);
        throughS3();
    }

    /**
     * An S3 store's client code: before a mount over S3 is ready, the AWS SDK loads some 1,700
     * classes from its jars (-Xlog:class+load; docs/performance.md, Remote mount, "Session 23").
     * The SDK's read and write paths run on the in-memory S3 of the mount's warm-up; then a command
     * opens an S3 store as a user's would (credentials from the SDK's system properties), at a
     * loopback port nothing listens on, and is refused.
     */
    private static void throughS3() throws Exception {
        new S3WarmUp().warmUp(() -> false);
        int port;
        try (ServerSocket unused = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = unused.getLocalPort();
        }
        // Set only for this step: the SDK reads them before the environment's credentials.
        String key = System.setProperty("aws.accessKeyId", "castore-aot-training");
        String secret = System.setProperty("aws.secretAccessKey", "castore-aot-training");
        try {
            castore(ExitCodes.IO, "roots", "--store", "s3://castore-aot/training?region=us-east-1&endpoint=http://127.0.0.1:" + port);
        } finally {
            restore("aws.accessKeyId", key);
            restore("aws.secretAccessKey", secret);
        }
    }

    private static void restore(String property, String value) {
        if (value == null) {
            System.clearProperty(property);
        } else {
            System.setProperty(property, value);
        }
    }

    /**
     * The same store served over gRPC on loopback, as `castore daemon` serves it, used as a remote
     * store: a remote command otherwise loads some 650 gRPC, Netty and Guava classes from their
     * jars before its first call (measured with -Xlog:class+load on `castore cat`).
     */
    private void throughADaemon(String store) throws Exception {
        try (Store served = Stores.open(store, StoreOptions.DEFAULT);
             CastoreServer server = CastoreServer.start(served,
                     new CastoreServer.Config(ListenAddress.parse("127.0.0.1:0"), false))) {
            String remote = "grpc+http://127.0.0.1:" + ((ListenAddress.Tcp) server.address()).port();
            String cache = work.resolve("cache").toString();
            castore(0, "roots", "--store", remote);
            castore(0, "ls", "--store", remote, "tree/d0");
            castore(0, "stat", "--store", remote, "tree/multi-0.bin");
            castore(0, "cat", "--store", remote, "tree/multi-1.bin");
            castore(0, "cat", "--store", remote, "--cache", cache, "tree/multi-2.bin");
            castore(0, "cat", "--store", remote, "--cache", cache, "tree/multi-2.bin");
            castore(0, "import", "-q", "--store", remote, "--name", "uploaded", tree.resolve("d0").toString());
            serveThroughFuse(remote, FsOptions.defaults());
        }
    }

    /** Runs the command line as {@code castore ARGS} would, output discarded, and checks its exit code. */
    private static void castore(int expectedExit, String... args) {
        Io io = new Io(DISCARD, DISCARD, () -> false, RawArguments.recover(args), new Io.FailureKeeper(OutputStream.nullOutputStream()));
        int exit = Main.run(io, args);
        if (exit != expectedExit) {
            throw new AssertionError("castore " + String.join(" ", args) + " exited " + exit + ", expected " + expectedExit);
        }
    }

    // ---- the synthetic tree ----

    private void generateTree() throws IOException {
        Random random = new Random(20261126);
        Files.createDirectories(tree);
        byte[] shared = bytes(random, 3000);
        for (int d = 0; d < 24; d++) {
            // d0/d1/d2 ... nest a few levels; the rest sit side by side.
            String dir = d < 6 ? String.join("/", Stream.iterate(0, i -> i + 1).limit(d + 1).map(i -> "d" + i).toList())
                    : "dir " + d + " ü";
            Files.createDirectories(tree.resolve(dir));
            for (int f = 0; f < 110; f++) {
                int size = switch (f % 10) {
                    case 0 -> 0;
                    case 1, 2, 3, 4 -> random.nextInt(2048);
                    case 5, 6, 7 -> 2048 + random.nextInt(30_000);
                    case 8 -> 32_768 + random.nextInt(200_000);
                    default -> -1; // identical content in every directory
                };
                String name = dir + "/file-" + f + (f % 3 == 0 ? ".txt" : ".dat");
                Files.write(tree.resolve(name), size < 0 ? shared : bytes(random, size));
                files.add(name);
            }
            Files.createSymbolicLink(tree.resolve(dir + "/link"), Path.of("file-1.dat"));
        }
        for (int i = 0; i < 3; i++) {
            Files.write(tree.resolve("multi-" + i + ".bin"), bytes(random, (3 + i) << 20));
        }
        Files.write(tree.resolve("copy-of-multi-0.bin"), Files.readAllBytes(tree.resolve("multi-0.bin")));
        Path tool = tree.resolve("tool.sh");
        Files.writeString(tool, "#!/bin/sh\necho castore\n");
        Files.setPosixFilePermissions(tool, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.createDirectories(tree.resolve("empty"));
        Files.createSymbolicLink(tree.resolve("link-up"), Path.of("../elsewhere"));
    }

    private static byte[] bytes(Random random, int size) {
        byte[] b = new byte[size];
        random.nextBytes(b);
        return b;
    }

    // ---- the mount's request path, without a kernel ----

    /**
     * Feeds FUSE requests, encoded as the kernel does, to the same {@link FuseServer} and
     * {@link CastoreFileSystem} a mount uses, and checks the replies.
     */
    private void serveThroughFuse(String store) throws Exception {
        serveThroughFuse(store, FsOptions.defaults());
        serveThroughFuse(store, FsOptions.defaults().withListRoot(true));
    }

    private void serveThroughFuse(String store, FsOptions options) throws Exception {
        try (Store opened = Stores.open(store, null, null, StoreOptions.DEFAULT.withReadOnly(true))) {
            int maxWrite = 1 << 20;
            try (var kernel = KernelSimulator.start(new CastoreFileSystem(opened, options), maxWrite)) {
                long root = 1;
                kernel.getattr(root);
                if (options.listRoot()) {
                    kernel.readDirectoryPlus(root, 4096);
                }
                long treeNode = kernel.lookup(root, "tree");
                kernel.statfs(treeNode);
                kernel.readDirectoryPlus(treeNode, 4096);
                kernel.readDirectory(treeNode, 4096);
                for (int i = 0; i < files.size(); i += 5) {
                    long node = treeNode;
                    for (String component : files.get(i).split("/")) {
                        node = kernel.lookup(node, component);
                    }
                    kernel.getattr(node);
                    kernel.readFile(node, 64 << 10);
                    kernel.listxattr(node, 4096);
                    kernel.getxattr(node, "user.tvix.castore.blob.digest", 4096);
                    kernel.forget(node, 1);
                }
                long big = kernel.lookup(treeNode, "multi-2.bin");
                kernel.readFile(big, maxWrite);
                long link = kernel.lookup(kernel.lookup(treeNode, "d0"), "link");
                kernel.readlink(link);
                kernel.access(treeNode, 4);
                if (kernel.lookup(treeNode, "no-such-name") != 0) {
                    throw new AssertionError("FUSE LOOKUP of 'no-such-name' found a node");
                }
                kernel.destroy();
            }
        }
    }

    /** The mount's own warm-up, as `castore mount` starts it. */
    private void warmUp() throws Exception {
        try (WarmUp warmUp = WarmUp.start(FsOptions.defaults(), work, java.time.Duration.ZERO, () -> 0)) {
            if (!warmUp.await(java.time.Duration.ofMinutes(2)) || warmUp.failure() != null) {
                throw new AssertionError("the mount's warm-up failed", warmUp.failure());
            }
        }
    }

    private static void deleteTree(Path dir) {
        if (!FileTrees.deleteAsFarAsPossible(dir)) {
            System.err.println("castore aot training: could not delete " + dir);
        }
    }
}

package castore.cli;

import castore.fs.CastoreFileSystem;
import castore.grpc.ListenAddress;
import castore.grpc.server.CastoreServer;
import castore.fs.FsOptions;
import castore.fuse.abi.Init;
import castore.fuse.abi.Opcode;
import castore.fuse.abi.Wire;
import castore.fuse.api.Errno;
import castore.fuse.server.BufferPool;
import castore.fuse.server.Channel;
import castore.fuse.server.FuseServer;
import castore.fuse.server.ReplyBuffer;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The training run for the JDK AOT cache the {@code ./castore} launcher builds after each build
 * (docs/performance.md, "AOT cache"): a JVM started with {@code -XX:AOTCacheOutput} runs this,
 * and later runs load the classes it used already parsed and linked, with their profiles.
 *
 * <p>It needs nothing from the machine: it generates a tree in a temporary directory (thousands of
 * small files, a few multi-chunk files, identical files, symlinks, nesting, an executable),
 * imports it through the real command line, runs every inspection command on it, serves it through
 * the FUSE request handler on plain memory (no kernel mount), and deletes everything it created.
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
        throughADaemon(store);
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
        Io io = new Io(DISCARD, DISCARD, () -> false, RawArguments.recover(args));
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
            var fs = new CastoreFileSystem(opened, options);
            var pool = new BufferPool(() -> new ReplyBuffer(new byte[FuseServer.replyBufferSize(maxWrite)], MemorySegment.NULL));
            var server = new FuseServer(fs, new FuseServer.Config(maxWrite, 4096, 64, false), pool);
            var kernel = new FakeKernel(server, pool.acquire());

            byte[] init = new byte[Wire.INIT_IN];
            Wire.putI32(init, 0, Init.MAJOR);
            Wire.putI32(init, 4, Init.MINOR);
            Wire.putI32(init, 8, 128 << 10);
            Wire.putI32(init, 12, -1);
            kernel.call(Opcode.INIT, 0, init);
            server.initialized().get(10, TimeUnit.SECONDS);

            long root = 1;
            kernel.call(Opcode.GETATTR, root, new byte[Wire.GETATTR_IN]);
            if (options.listRoot()) {
                kernel.listDirectory(root);
            }
            long treeNode = kernel.lookup(root, "tree");
            kernel.call(Opcode.STATFS, treeNode, new byte[0]);
            kernel.listDirectory(treeNode);
            for (int i = 0; i < files.size(); i += 5) {
                long node = treeNode;
                for (String component : files.get(i).split("/")) {
                    node = kernel.lookup(node, component);
                }
                kernel.call(Opcode.GETATTR, node, new byte[Wire.GETATTR_IN]);
                kernel.readFile(node, 64 << 10);
                kernel.call(Opcode.LISTXATTR, node, xattrBody(4096, null));
                kernel.call(Opcode.GETXATTR, node, xattrBody(4096, "user.tvix.castore.blob.digest"));
                kernel.forget(node);
            }
            long big = kernel.lookup(treeNode, "multi-2.bin");
            kernel.readFile(big, maxWrite);
            long link = kernel.lookup(kernel.lookup(treeNode, "d0"), "link");
            kernel.call(Opcode.READLINK, link, new byte[0]);
            byte[] access = new byte[Wire.ACCESS_IN];
            Wire.putI32(access, 0, 4);
            kernel.call(Opcode.ACCESS, treeNode, access);
            kernel.lookupMissing(treeNode, "no-such-name");
            kernel.call(Opcode.DESTROY, 0, new byte[0]);
        }
    }

    private static byte[] xattrBody(int size, String name) {
        byte[] nameBytes = name == null ? new byte[0] : cString(name);
        byte[] body = new byte[Wire.GETXATTR_IN + nameBytes.length];
        Wire.putI32(body, 0, size);
        System.arraycopy(nameBytes, 0, body, Wire.GETXATTR_IN, nameBytes.length);
        return body;
    }

    private static byte[] cString(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        byte[] out = new byte[b.length + 1];
        System.arraycopy(b, 0, out, 0, b.length);
        return out;
    }

    /** Plays the kernel's side of /dev/fuse: encodes requests, waits for each reply. */
    private static final class FakeKernel implements Channel {
        private final FuseServer server;
        private final byte[] request;
        private final ReplyBuffer own;
        private final Map<Long, CompletableFuture<byte[]>> pending = new ConcurrentHashMap<>();
        private long unique = 2;

        FakeKernel(FuseServer server, ReplyBuffer own) {
            this.server = server;
            this.request = new byte[FuseServer.readBufferSize(1 << 20)];
            this.own = own;
        }

        /** Sends one request and returns the reply's body; fails unless the reply says success. */
        byte[] call(int opcode, long nodeId, byte[] body) throws Exception {
            byte[] reply = send(opcode, nodeId, body);
            if (reply == null) {
                return null;
            }
            int error = Wire.i32(reply, 4);
            if (error != 0) {
                throw new AssertionError("FUSE " + Opcode.name(opcode) + " of node " + nodeId + " failed: errno " + -error);
            }
            return java.util.Arrays.copyOfRange(reply, Wire.OUT_HEADER, reply.length);
        }

        /** A name that does not exist: an error, or (a negative entry the kernel caches) node id 0. */
        void lookupMissing(long parent, String name) throws Exception {
            byte[] reply = send(Opcode.LOOKUP, parent, cString(name));
            if (Wire.i32(reply, 4) == 0 && Wire.u64(reply, Wire.OUT_HEADER) != 0) {
                throw new AssertionError("FUSE LOOKUP of '" + name + "' found a node, expected none");
            }
        }

        private byte[] send(int opcode, long nodeId, byte[] body) throws Exception {
            long id = unique++;
            int length = Wire.IN_HEADER + body.length;
            java.util.Arrays.fill(request, 0, Wire.IN_HEADER, (byte) 0);
            Wire.putI32(request, Wire.IN_LEN, length);
            Wire.putI32(request, Wire.IN_OPCODE, opcode);
            Wire.putU64(request, Wire.IN_UNIQUE, id);
            Wire.putU64(request, Wire.IN_NODEID, nodeId);
            System.arraycopy(body, 0, request, Wire.IN_HEADER, body.length);
            boolean answered = !Opcode.isNoReply(opcode);
            CompletableFuture<byte[]> reply = new CompletableFuture<>();
            if (answered) {
                pending.put(id, reply);
            }
            server.handle(request, length, this, own);
            return answered ? reply.get(30, TimeUnit.SECONDS) : null;
        }

        @Override
        public int write(ReplyBuffer buffer, int n) {
            CompletableFuture<byte[]> waiting = pending.remove(Wire.u64(buffer.array(), 8));
            if (waiting != null) {
                waiting.complete(java.util.Arrays.copyOf(buffer.array(), n));
            }
            return 0;
        }

        /** Page-cache pushes (FUSE_NOTIFY_STORE) are taken and dropped. */
        @Override
        public int notify(MemorySegment message, int n, MemorySegment callState) {
            return 0;
        }

        long lookup(long parent, String name) throws Exception {
            byte[] entry = call(Opcode.LOOKUP, parent, cString(name));
            return Wire.u64(entry, 0);
        }

        void forget(long node) throws Exception {
            byte[] body = new byte[Wire.FORGET_IN];
            Wire.putU64(body, 0, 1);
            send(Opcode.FORGET, node, body);
        }

        void listDirectory(long node) throws Exception {
            Long fh = open(Opcode.OPENDIR, node);
            call(Opcode.READDIRPLUS, node, readBody(fh == null ? 0 : fh, 0, 64 << 10));
            call(Opcode.READDIR, node, readBody(fh == null ? 0 : fh, 0, 4096));
            if (fh != null) {
                call(Opcode.RELEASEDIR, node, releaseBody(fh));
            }
        }

        void readFile(long node, int chunk) throws Exception {
            Long fh = open(Opcode.OPEN, node);
            for (long offset = 0; ; offset += chunk) {
                byte[] data = call(Opcode.READ, node, readBody(fh == null ? 0 : fh, offset, chunk));
                if (data.length < chunk) {
                    break;
                }
            }
            if (fh != null) {
                call(Opcode.RELEASE, node, releaseBody(fh));
            }
        }

        /** OPEN or OPENDIR: the handle, or null when the filesystem lets the kernel open by itself (ENOSYS). */
        private Long open(int opcode, long node) throws Exception {
            byte[] reply = send(opcode, node, new byte[Wire.OPEN_IN]);
            int error = Wire.i32(reply, 4);
            if (error == -Errno.ENOSYS) {
                return null;
            }
            if (error != 0) {
                throw new AssertionError("FUSE " + Opcode.name(opcode) + " of node " + node + " failed: errno " + -error);
            }
            return Wire.u64(reply, Wire.OUT_HEADER);
        }

        private static byte[] readBody(long fh, long offset, int size) {
            byte[] body = new byte[Wire.READ_IN];
            Wire.putU64(body, 0, fh);
            Wire.putU64(body, 8, offset);
            Wire.putI32(body, 16, size);
            return body;
        }

        private static byte[] releaseBody(long fh) {
            byte[] body = new byte[Wire.RELEASE_IN];
            Wire.putU64(body, 0, fh);
            return body;
        }
    }

    private static void deleteTree(Path dir) {
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException | UncheckedIOException e) {
            System.err.println("castore aot training: could not delete " + dir + ": " + e);
        }
    }
}

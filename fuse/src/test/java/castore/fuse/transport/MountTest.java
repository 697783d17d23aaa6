package castore.fuse.transport;

import castore.fuse.abi.InitFlags;
import castore.fuse.api.Errno;
import castore.fuse.api.FileSystem;
import castore.fuse.api.FuseException;
import castore.fuse.api.Operation;
import castore.fuse.server.FuseServer;
import castore.fuse.testing.Commands;
import castore.fuse.testing.FuseAvailability;
import castore.fuse.testing.MemoryFileSystem;
import castore.fuse.testing.MountFixture;
import castore.fuse.testing.MountInfo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Real mounts: every request makes the round trip through the kernel. */
class MountTest {
    private static final byte[] BIG = bytes(5 * (1 << 20) + 12345, 7);

    @TempDir
    Path tmp;

    private static byte[] bytes(int size, long seed) {
        byte[] b = new byte[size];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static MemoryFileSystem.Builder tree() {
        return MemoryFileSystem.builder()
                .file("hello.txt", "hello\n")
                .executable("bin/tool", "#!/bin/sh\necho tool\n".getBytes(StandardCharsets.UTF_8))
                .file("a/b/c/deep.txt", "deep\n")
                .symlink("link", "hello.txt")
                .symlink("dangling", "nowhere")
                .directory("empty")
                .file("big.bin", BIG)
                .xattr("hello.txt", "user.digest", "b3:hello".getBytes(StandardCharsets.UTF_8))
                .xattr("hello.txt", "user.other", "x".getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void mountsReadOnlyNosuidNodevNegotiatesAndUnmountsCleanly() throws Exception {
        MemoryFileSystem fs = tree().build();
        MountFixture m = MountFixture.mount(tmp, fs);
        try {
            MountInfo info = m.mountInfo().orElseThrow();
            assertThat(info.mountOptions()).contains("ro", "nosuid", "nodev");
            assertThat(info.fsType()).isEqualTo("fuse.castore");
            assertThat(info.source()).isEqualTo("castore-test");
            assertThat(info.superOptions()).contains("ro", "default_permissions", "user_id=0", "group_id=0");
            assertThat(Commands.run("stat", "-c", "%F", m.path().toString()).assertOk().stdout()).isEqualTo("directory\n");
            long flags = fs.initInfo().negotiatedFlags();
            assertThat(flags & InitFlags.MAX_PAGES).isNotZero();
            assertThat(flags & InitFlags.WRITEBACK_CACHE).isZero();
            assertThat(m.fuseMount().initInfo()).isEqualTo(fs.initInfo());
        } finally {
            m.close();
        }
        assertThat(m.mountInfo()).isEmpty();
        assertThat(m.fuseMount().isUnmounted()).isTrue();
        assertThat(fs.isDestroyed()).isTrue();
    }

    @Test
    void aRoundTripIsOneStatfsRequestServedByTheFilesystemAndNoneReachesItOnceUnmounted() throws Exception {
        MemoryFileSystem fs = tree().build();
        MountFixture m = MountFixture.mount(tmp, fs);
        try {
            long requestsBefore = m.fuseMount().requestsReceived();
            long statfsBefore = fs.calls(Operation.STATFS);
            for (int i = 0; i < 50; i++) {
                m.fuseMount().roundTrip();
            }
            assertThat(fs.calls(Operation.STATFS) - statfsBefore).as("each a STATFS, never answered from a cache").isEqualTo(50);
            assertThat(m.fuseMount().requestsReceived() - requestsBefore).as("and nothing else").isEqualTo(50);
        } finally {
            m.close();
        }
        // Detached: the path is the plain directory again, so statfs no longer reaches the filesystem.
        long statfsAfter = fs.calls(Operation.STATFS);
        m.fuseMount().roundTrip();
        assertThat(fs.calls(Operation.STATFS)).isEqualTo(statfsAfter);
    }

    @Test
    void aFilesystemThatChecksPermissionsIsMountedWithoutTheKernelsCheckAndAskedForAccess() throws Exception {
        MemoryFileSystem memory = tree().build();
        List<Integer> masks = new CopyOnWriteArrayList<>();
        FileSystem fs = (FileSystem) Proxy.newProxyInstance(FileSystem.class.getClassLoader(),
                new Class<?>[] {FileSystem.class}, (proxy, method, args) -> switch (method.getName()) {
                    case "checksPermissions" -> true;
                    case "access" -> {
                        masks.add((Integer) args[2]);
                        throw new FuseException(Errno.EACCES);
                    }
                    default -> {
                        try {
                            yield method.invoke(memory, args);
                        } catch (InvocationTargetException e) {
                            throw e.getCause();
                        }
                    }
                });
        try (var m = MountFixture.mount(tmp, fs)) {
            assertThat(m.mountInfo().orElseThrow().superOptions()).doesNotContain("default_permissions");
            String hello = m.path("hello.txt").toString();
            assertThat(Commands.run("/usr/bin/test", "-r", hello).exitCode()).as("ACCESS decides").isEqualTo(1);
            assertThat(masks).contains(4);
            assertThat(Commands.run("cat", hello).assertOk().stdout()).as("open asks no one").isEqualTo("hello\n");
        }
    }

    @Test
    void childProcessesStatReadListAndFollowLinks() throws Exception {
        try (var m = MountFixture.mount(tmp, tree().build())) {
            String root = m.path().toString();
            assertThat(Commands.run("cat", root + "/hello.txt").assertOk().stdout()).isEqualTo("hello\n");
            assertThat(Commands.run("cat", root + "/a/b/c/deep.txt").assertOk().stdout()).isEqualTo("deep\n");
            assertThat(Commands.run("cat", root + "/link").assertOk().stdout()).isEqualTo("hello\n");
            assertThat(Commands.run("readlink", root + "/link").assertOk().stdout()).isEqualTo("hello.txt\n");
            assertThat(Commands.run("ls", "-1a", root).assertOk().stdout())
                    .isEqualTo(".\n..\na\nbig.bin\nbin\ndangling\nempty\nhello.txt\nlink\n");
            assertThat(Commands.run("ls", "-1a", root + "/empty").assertOk().stdout()).isEqualTo(".\n..\n");
            assertThat(Commands.run("stat", "-c", "%s %a %F %h", root + "/hello.txt").assertOk().stdout())
                    .isEqualTo("6 444 regular file 1\n");
            assertThat(Commands.run("stat", "-c", "%a %F", root + "/bin/tool", root + "/a", root + "/link").assertOk().stdout())
                    .isEqualTo("555 regular file\n555 directory\n777 symbolic link\n");
            assertThat(Commands.run(root + "/bin/tool").assertOk().stdout()).isEqualTo("tool\n");
            var missing = Commands.run("cat", root + "/nope");
            assertThat(missing.exitCode()).isNotZero();
            assertThat(missing.stderr()).contains("No such file or directory");
            assertThat(Commands.run("cat", root + "/dangling").stderr()).contains("No such file or directory");
            assertThat(Commands.run("cat", root + "/a").stderr()).contains("Is a directory");
            assertThat(Commands.run("ls", root + "/hello.txt/x").stderr()).contains("Not a directory");
            assertThat(Commands.run("cmp", root + "/big.bin", writeLocal("big.bin", BIG).toString()).exitCode()).isZero();
            assertThat(Commands.run("df", "-P", root).assertOk().stdout()).contains("castore-test");
        }
    }

    @Test
    void aFileOpenedWithABackingIdIsReadByTheKernelWithoutAnyReadRequest() throws Exception {
        Path backing = Files.write(FuseAvailability.backingDirectory(tmp.resolve("backing")).resolve("backing.bin"), BIG);
        MemoryFileSystem fs = tree().passthrough("big.bin", backing).build();
        try (var m = MountFixture.mount(tmp, fs)) {
            assertThat(fs.initInfo().negotiatedFlags() & InitFlags.PASSTHROUGH).isNotZero();
            assertThat(fs.backingFiles()).isNotNull();
            assertThat(Files.readAllBytes(m.path("big.bin"))).isEqualTo(BIG);
            // Two open files of one node share its backing id; reads at an offset and mmap go to the backing file.
            try (FileChannel a = FileChannel.open(m.path("big.bin")); FileChannel b = FileChannel.open(m.path("big.bin"));
                 Arena mapping = Arena.ofConfined()) {
                ByteBuffer piece = ByteBuffer.allocate(100_000);
                a.read(piece, 4_000_001);
                assertThat(piece.array()).isEqualTo(java.util.Arrays.copyOfRange(BIG, 4_000_001, 4_100_001));
                MemorySegment map = b.map(FileChannel.MapMode.READ_ONLY, 0, BIG.length, mapping); // unmapped with the arena
                for (int i = 0; i < BIG.length; i += 4093) {
                    assertThat(map.get(ValueLayout.JAVA_BYTE, i)).as("byte %d", i).isEqualTo(BIG[i]);
                }
            }
            assertThat(fs.calls(Operation.OPEN)).isEqualTo(3);
            assertThat(fs.calls(Operation.READ)).isZero();
            // Files without a backing file are still read through the filesystem.
            assertThat(Files.readString(m.path("hello.txt"))).isEqualTo("hello\n");
            assertThat(fs.calls(Operation.READ)).isPositive();
        } finally {
            FuseAvailability.deleteBackingDirectory(backing.getParent(), tmp);
        }
    }

    @Test
    void passthroughIsNotAskedForByAFilesystemThatDoesNotWantIt() throws Exception {
        MemoryFileSystem fs = tree().build();
        try (var m = MountFixture.mount(tmp, fs)) {
            assertThat(fs.initInfo().kernelFlags() & InitFlags.PASSTHROUGH).as("this kernel offers passthrough").isNotZero();
            assertThat(fs.initInfo().negotiatedFlags() & InitFlags.PASSTHROUGH).isZero();
            assertThat(fs.backingFiles()).isNull();
        }
    }

    private Path writeLocal(String name, byte[] content) throws IOException {
        return Files.write(tmp.resolve(name), content);
    }

    @Test
    void javaNioSeesTheSameTree() throws Exception {
        MemoryFileSystem fs = tree().build();
        try (var m = MountFixture.mount(tmp, fs)) {
            assertThat(Files.readString(m.path("hello.txt"))).isEqualTo("hello\n");
            assertThat(Files.readAllBytes(m.path("big.bin"))).isEqualTo(BIG);
            assertThat(Files.readSymbolicLink(m.path("link"))).isEqualTo(Path.of("hello.txt"));
            assertThat(Files.size(m.path("big.bin"))).isEqualTo(BIG.length);
            assertThat(Files.isDirectory(m.path("a/b/c"))).isTrue();
            assertThat(Files.isSymbolicLink(m.path("link"))).isTrue();
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(m.path("hello.txt"),
                    LinkOption.NOFOLLOW_LINKS))).isEqualTo("r--r--r--");
            try (Stream<Path> list = Files.list(m.path("a"))) {
                assertThat(list.map(p -> p.getFileName().toString()).toList()).containsExactly("b");
            }
            assertThatThrownBy(() -> Files.readAllBytes(m.path("missing"))).isInstanceOf(NoSuchFileException.class);
            assertThat(Files.getAttribute(m.path("hello.txt"), "unix:ino")).isEqualTo(fs.nodeId("hello.txt"));
        }
    }

    @Test
    void bigFileReadsAtRandomOffsetsAndThroughMmapMatch() throws Exception {
        try (var m = MountFixture.mount(tmp, tree().build());
             FileChannel ch = FileChannel.open(m.path("big.bin"), StandardOpenOption.READ)) {
            Random random = new Random(42);
            for (int i = 0; i < 200; i++) {
                int offset = random.nextInt(BIG.length);
                int size = Math.min(1 + random.nextInt(300_000), BIG.length - offset + 100);
                ByteBuffer dst = ByteBuffer.allocate(size);
                int n = ch.read(dst, offset);
                int expected = Math.min(size, BIG.length - offset);
                assertThat(n).isEqualTo(expected);
                assertThat(java.util.Arrays.equals(dst.array(), 0, n, BIG, offset, offset + n)).isTrue();
            }
            assertThat(ch.read(ByteBuffer.allocate(10), BIG.length)).isEqualTo(-1);
            // Map through an arena, so the mapping is gone before the unmount (a live one keeps it busy).
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment mapped = ch.map(FileChannel.MapMode.READ_ONLY, 0, BIG.length, arena);
                assertThat(mapped.toArray(ValueLayout.JAVA_BYTE)).isEqualTo(BIG);
            }
        }
    }

    @Test
    void contentPushedIntoTheKernelCacheIsReadWithoutRequests() throws Exception {
        MemoryFileSystem fs = tree().build();
        try (var m = MountFixture.mount(tmp, fs);
             FileChannel ch = FileChannel.open(m.path("big.bin"), StandardOpenOption.READ)) {
            long node = fs.nodeId("big.bin");
            int from = 1 << 20;
            int length = 3 << 20; // larger than one notification: sent in pieces
            long before = m.fuseMount().server().kernelCachePushedBytes();
            assertThat(fs.kernelCache().offer(node, from, BIG, from, length)).isTrue();
            // A misaligned offer and one for a node the kernel does not know are dropped, harmlessly.
            assertThat(fs.kernelCache().offer(node, 100, BIG, 100, 4096)).isFalse();
            fs.kernelCache().offer(999_999, 0, BIG, 0, 4096);
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (m.fuseMount().server().kernelCachePushedBytes() - before < length && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertThat(m.fuseMount().server().kernelCachePushedBytes() - before).isEqualTo(length);

            long reads = fs.calls(Operation.READ);
            ByteBuffer dst = ByteBuffer.allocate(length);
            assertThat(ch.read(dst, from)).isEqualTo(length);
            assertThat(dst.array()).isEqualTo(java.util.Arrays.copyOfRange(BIG, from, from + length));
            assertThat(fs.calls(Operation.READ)).as("READ requests for pushed pages").isEqualTo(reads);
            // Pages not pushed still come from the filesystem, and right.
            ByteBuffer head = ByteBuffer.allocate(4096);
            assertThat(ch.read(head, 0)).isEqualTo(4096);
            assertThat(head.array()).isEqualTo(java.util.Arrays.copyOfRange(BIG, 0, 4096));
            assertThat(fs.calls(Operation.READ)).isGreaterThan(reads);
        }
    }

    @Test
    void everyKindOfWriteIsRefusedWithErofs() throws Exception {
        try (var m = MountFixture.mount(tmp, tree().build())) {
            String root = m.path().toString();
            List<List<String>> writes = List.of(
                    List.of("touch", root + "/new"),
                    List.of("touch", root + "/hello.txt"),
                    List.of("mkdir", root + "/dir"),
                    List.of("rm", "-f", root + "/hello.txt"),
                    List.of("rmdir", root + "/empty"),
                    List.of("mv", root + "/hello.txt", root + "/moved"),
                    List.of("ln", root + "/hello.txt", root + "/hard"),
                    List.of("ln", "-s", "x", root + "/sym"),
                    List.of("chmod", "777", root + "/hello.txt"),
                    List.of("truncate", "-s", "0", root + "/hello.txt"),
                    List.of("mknod", root + "/fifo", "p"),
                    List.of("setfattr", "-n", "user.x", "-v", "1", root + "/hello.txt"),
                    List.of("setfattr", "-x", "user.digest", root + "/hello.txt"));
            for (List<String> write : writes) {
                var r = Commands.run(write);
                assertThat(r.exitCode()).as("%s", write).isNotZero();
                assertThat(r.stderr()).as("%s", write).contains("Read-only file system");
            }
            assertThatThrownBy(() -> Files.writeString(m.path("hello.txt"), "x"))
                    .isInstanceOf(FileSystemException.class).hasMessageContaining("Read-only file system");
            assertThatThrownBy(() -> Files.createDirectory(m.path("d"))).isInstanceOf(FileSystemException.class)
                    .hasMessageContaining("Read-only file system");
            assertThatThrownBy(() -> Files.delete(m.path("hello.txt"))).isInstanceOf(FileSystemException.class)
                    .hasMessageContaining("Read-only file system");
            var view = Files.getFileAttributeView(m.path("hello.txt"), UserDefinedFileAttributeView.class);
            assertThatThrownBy(() -> view.write("user.y", ByteBuffer.wrap(new byte[]{1})))
                    .isInstanceOf(FileSystemException.class).hasMessageContaining("Read-only file system");
            assertThat(Files.readString(m.path("hello.txt"))).isEqualTo("hello\n");
        }
    }

    @Test
    void xattrsListGetProbeAndErange() throws Exception {
        try (var m = MountFixture.mount(tmp, tree().build())) {
            String hello = m.path("hello.txt").toString();
            assertThat(Commands.run("getfattr", "--only-values", "-n", "user.digest", hello).assertOk().stdout())
                    .isEqualTo("b3:hello");
            assertThat(Commands.run("getfattr", "-d", hello).assertOk().stdout())
                    .contains("user.digest=\"b3:hello\"", "user.other=\"x\"");
            assertThat(Commands.run("getfattr", "-n", "user.none", hello).stderr()).contains("No such attribute");
            var view = Files.getFileAttributeView(m.path("hello.txt"), UserDefinedFileAttributeView.class);
            assertThat(view.list()).containsExactly("digest", "other");
            assertThat(view.size("digest")).isEqualTo(8);
            ByteBuffer value = ByteBuffer.allocate(8);
            assertThat(view.read("digest", value)).isEqualTo(8);
            assertThat(new String(value.array(), StandardCharsets.UTF_8)).isEqualTo("b3:hello");
            assertThatThrownBy(() -> view.read("digest", ByteBuffer.allocate(3)))
                    .isInstanceOf(IOException.class);
            assertThat(Files.getFileAttributeView(m.path("a"), UserDefinedFileAttributeView.class).list()).isEmpty();
        }
    }

    @Test
    void unservedOperationsFallBackInTheKernel() throws Exception {
        MemoryFileSystem fs = tree().build();
        try (var m = MountFixture.mount(tmp, fs)) {
            try (FileChannel ch = FileChannel.open(m.path("hello.txt"), StandardOpenOption.READ)) {
                ch.force(true); // FSYNC: ENOSYS, which the kernel turns into success (so is FLUSH at close)
                ch.position(3);
                assertThat(ch.read(ByteBuffer.allocate(10))).isEqualTo(3);
            }
            // close(2) returns once FLUSH is answered; RELEASE follows in the background, and only
            // a mount still there receives it (an unmount drops what is queued).
            for (int i = 0; i < 3000 && fs.openHandles() != 0; i++) {
                Thread.sleep(10);
            }
            assertThat(fs.openHandles()).isZero();
        }
    }

    @Test
    void concurrentReadersAreServedAcrossClonedChannels() throws Exception {
        MemoryFileSystem.Builder builder = MemoryFileSystem.builder();
        List<byte[]> contents = new ArrayList<>();
        for (int i = 0; i < 64; i++) {
            byte[] content = bytes(100_000 + i * 997, i);
            contents.add(content);
            builder.file("d" + (i % 4) + "/f" + i, content);
        }
        MemoryFileSystem fs = builder.build();
        try (var m = MountFixture.mount(tmp, fs, MountOptions.defaults().withThreads(4));
             ExecutorService readers = Executors.newFixedThreadPool(8)) {
            List<Future<Integer>> results = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                int first = t;
                results.add(readers.submit(() -> {
                    int checked = 0;
                    for (int i = first; i < 64; i += 8) {
                        Path p = m.path("d" + (i % 4) + "/f" + i);
                        assertThat(Files.readAllBytes(p)).isEqualTo(contents.get(i));
                        checked++;
                    }
                    return checked;
                }));
            }
            int total = 0;
            for (Future<Integer> r : results) {
                total += r.get(60, TimeUnit.SECONDS);
            }
            assertThat(total).isEqualTo(64);
            assertThat(fs.callingThreads().stream().filter(n -> n.contains("-reader-")).count())
                    .as("reader threads that served requests: %s", fs.callingThreads()).isGreaterThan(1);
        }
    }

    @Test
    void aSlowReadOnAVirtualThreadDoesNotBlockTheOnlyReader() throws Exception {
        MemoryFileSystem fs = tree().build();
        CountDownLatch gate = new CountDownLatch(1);
        fs.gateReads("a/b/c/deep.txt", gate);
        try (var m = MountFixture.mount(tmp, fs, MountOptions.defaults().withThreads(1));
             ExecutorService client = Executors.newSingleThreadExecutor()) {
            Future<String> slow = client.submit(() -> Files.readString(m.path("a/b/c/deep.txt")));
            // While that read waits in the filesystem, the single reader thread still answers.
            assertThat(Commands.run("cat", m.path("hello.txt").toString()).assertOk().stdout()).isEqualTo("hello\n");
            assertThat(Commands.run("ls", m.path("bin").toString()).assertOk().stdout()).isEqualTo("tool\n");
            try {
                assertThat(slow.isDone()).isFalse();
            } finally {
                gate.countDown();
            }
            assertThat(slow.get(60, TimeUnit.SECONDS)).isEqualTo("deep\n");
            assertThat(fs.callingThreads()).contains("virtual");
        }
    }

    @Test
    void aBlockingRequestStaysOnItsReaderWhileAnotherReaderIsIdleAndIsHandedOffWhenNoneIs() throws Exception {
        MemoryFileSystem fs = tree().build();
        CountDownLatch gate = new CountDownLatch(1);
        fs.gateReads("a/b/c/deep.txt", gate);
        fs.gateReads("bin/tool", gate);
        try (var m = MountFixture.mount(tmp, fs, MountOptions.defaults().withThreads(2));
             ExecutorService client = Executors.newFixedThreadPool(2)) {
            Future<String> first = client.submit(() -> {
                try (var channel = FileChannel.open(m.path("a/b/c/deep.txt"))) {
                    // Let the reader that answered the open return to waiting before the READ goes out.
                    Thread.sleep(200);
                    ByteBuffer content = ByteBuffer.allocate(64);
                    channel.read(content, 0);
                    return new String(content.array(), 0, content.position(), StandardCharsets.UTF_8);
                }
            });
            Future<String> second;
            try {
                awaitBlockedReads(fs, 1);
                assertThat(fs.callingThreads()).as("the other reader was idle: served in place").doesNotContain("virtual");
                second = client.submit(() -> Files.readString(m.path("bin/tool")));
                awaitBlockedReads(fs, 2);
                assertThat(fs.callingThreads()).as("no reader was idle: handed off").contains("virtual");
                // One reader blocks in the first read; the other still answers.
                assertThat(Commands.run("cat", m.path("hello.txt").toString()).assertOk().stdout()).isEqualTo("hello\n");
                assertThat(first.isDone()).isFalse();
            } finally {
                gate.countDown();
            }
            assertThat(first.get(60, TimeUnit.SECONDS)).isEqualTo("deep\n");
            assertThat(second.get(60, TimeUnit.SECONDS)).startsWith("#!/bin/sh");
        }
    }

    @Test
    void oneProcessesQuickRequestsAreAllServedByTheReaderThatHoldsTheTurn() throws Exception {
        MemoryFileSystem.Builder builder = tree();
        for (int i = 0; i < 300; i++) {
            builder.file("many/f" + i, "x");
        }
        MemoryFileSystem fs = builder.build();
        try (var m = MountFixture.mount(tmp, fs, MountOptions.defaults().withThreads(4))) {
            Files.readAttributes(m.path("many"), "unix:ino");
            long before = fs.calls(Operation.LOOKUP);
            // With every reader waiting in read(2), each request woke the one that had waited longest.
            assertThat(threadsServingARoundWithoutBypass(m, fs, round -> {
                for (int i = 0; i < 300; i++) {
                    if (round == 0) {
                        assertThat(Files.size(m.path("many/f" + i))).isEqualTo(1);
                    } else {
                        assertThat(Files.exists(m.path("many/none-" + round + "-" + i))).isFalse();
                    }
                }
            })).as("threads that served the lookups").hasSize(1);
            assertThat(fs.calls(Operation.LOOKUP) - before).as("each name looked up").isGreaterThanOrEqualTo(300);
            // The others still take over when one blocks, and all of them stop at unmount.
            CountDownLatch gate = new CountDownLatch(1);
            fs.gateReads("hello.txt", gate);
            Future<String> blocked;
            try (ExecutorService client = Executors.newSingleThreadExecutor()) {
                blocked = client.submit(() -> Files.readString(m.path("hello.txt")));
                awaitBlockedReads(fs, 1);
                assertThat(Files.size(m.path("many/f0"))).isEqualTo(1);
                assertThat(Commands.run("cat", m.path("a/b/c/deep.txt").toString()).assertOk().stdout()).isEqualTo("deep\n");
                gate.countDown();
                assertThat(blocked.get(60, TimeUnit.SECONDS)).isEqualTo("hello\n");
            }
        }
    }

    @Test
    void aQuickRequestThatBlocksAfterAllLosesTheTurnToAnotherReader() throws Exception {
        MemoryFileSystem fs = tree().file("slow", "s").build();
        CountDownLatch gate = new CountDownLatch(1);
        try (var m = MountFixture.mount(tmp, fs, MountOptions.defaults().withThreads(3));
             ExecutorService client = Executors.newFixedThreadPool(2)) {
            fs.gateLookupsUnannounced("slow", gate); // mayBlock says no: the reader keeps the turn and blocks
            Future<Boolean> stuck = client.submit(() -> Files.exists(m.path("slow")));
            try {
                Thread.sleep(100);
                // Served meanwhile by another reader, once the watch has seen the holder stuck.
                Future<String> other = client.submit(() -> Files.readString(m.path("hello.txt")));
                assertThat(other.get(10, TimeUnit.SECONDS)).isEqualTo("hello\n");
                assertThat(Files.size(m.path("a/b/c/deep.txt"))).isEqualTo(5);
                assertThat(stuck.isDone()).isFalse();
            } finally {
                gate.countDown();
            }
            assertThat(stuck.get(60, TimeUnit.SECONDS)).isTrue();
            // Afterwards a single reader serves one process's quick requests again.
            assertThat(threadsServingARoundWithoutBypass(m, fs, round -> {
                for (int i = 0; i < 50; i++) {
                    assertThat(Files.exists(m.path("nothing-" + round + "-" + i))).isFalse();
                }
            })).hasSize(1);
        }
    }

    /** Quick requests sent from the test thread, round after round with new names. */
    private interface LookupRound {
        void run(int round) throws IOException;
    }

    /**
     * The threads that served a round of quick requests, from the first round in which the turn
     * watch bypassed no reader. A reader stalled 20 ms in the middle of a quick request (a busy
     * machine, a GC pause) loses the turn by design, and then a second reader serves the rest.
     */
    private static Set<String> threadsServingARoundWithoutBypass(MountFixture m, MemoryFileSystem fs, LookupRound round) throws IOException {
        for (int attempt = 0; attempt < 10; attempt++) {
            fs.clearCallingThreads();
            long bypassed = m.fuseMount().turnBypasses();
            round.run(attempt);
            if (m.fuseMount().turnBypasses() == bypassed) {
                return fs.callingThreads();
            }
        }
        throw new AssertionError("a reader was bypassed in each of 10 rounds");
    }

    private static void awaitBlockedReads(MemoryFileSystem fs, int count) throws InterruptedException {
        for (int i = 0; i < 6000 && fs.blockedReads() < count; i++) {
            Thread.sleep(10);
        }
        assertThat(fs.blockedReads()).as("reads waiting at their gate").isEqualTo(count);
    }

    @Test
    void aSignalDuringALookupSendsOneInterruptAnsweredEnosysAndTheLookupCompletes() throws Exception {
        MemoryFileSystem fs = tree().build();
        CountDownLatch gate = new CountDownLatch(1);
        fs.gateLookups("deep.txt", gate);
        // One channel, so the INTERRUPT is read where the LOOKUP is still being processed.
        try (var m = MountFixture.mount(tmp, fs, MountOptions.defaults().withThreads(1))) {
            Commands.run("stat", m.path("a/b/c").toString()).assertOk();
            Process stat = new ProcessBuilder("stat", m.path("a/b/c/deep.txt").toString()).start();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (fs.calls(Operation.LOOKUP) < 4 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertThat(fs.calls(Operation.LOOKUP)).as("the gated LOOKUP arrived").isEqualTo(4);
            try {
                stat.toHandle().destroy(); // SIGTERM while the kernel waits for our answer
                FuseServer server = m.fuseMount().server();
                while (server.interruptsReceived() == 0 && System.nanoTime() < deadline) {
                    Thread.sleep(5);
                }
                assertThat(server.interruptsReceived()).isEqualTo(1);
                // A request already read is always answered: the caller waits for it, then dies.
                assertThat(stat.isAlive()).isTrue();
            } finally {
                gate.countDown();
            }
            assertThat(stat.waitFor(60, TimeUnit.SECONDS)).isTrue();
            assertThat(stat.exitValue()).isEqualTo(143);
            assertThat(Files.readString(m.path("a/b/c/deep.txt"))).isEqualTo("deep\n");
        }
    }

    @Test
    void aKilledReaderOfASlowFileDiesWithoutWaitingForTheRead() throws Exception {
        MemoryFileSystem fs = tree().build();
        CountDownLatch gate = new CountDownLatch(1);
        fs.gateReads("a/b/c/deep.txt", gate);
        try (var m = MountFixture.mount(tmp, fs)) {
            Process cat = new ProcessBuilder("cat", m.path("a/b/c/deep.txt").toString()).start();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (fs.calls(Operation.READ) == 0 && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            assertThat(fs.calls(Operation.READ)).isEqualTo(1);
            // Readahead goes out as background requests (ASYNC_READ): the reader waits on the page,
            // not on our answer, so SIGTERM ends it while the READ is still being served.
            try {
                cat.toHandle().destroy();
                assertThat(cat.waitFor(30, TimeUnit.SECONDS)).isTrue();
                assertThat(cat.exitValue()).isEqualTo(143);
                assertThat(fs.calls(Operation.READ)).isEqualTo(1);
            } finally {
                gate.countDown();
            }
            assertThat(Files.readString(m.path("a/b/c/deep.txt"))).isEqualTo("deep\n");
        }
    }

    @Test
    void offloadedLookupsAndReaddirWork() throws Exception {
        MemoryFileSystem fs = tree().offload(Operation.values()).build();
        // One reader: it is never idle while it serves, so every request that may block is handed off.
        try (var m = MountFixture.mount(tmp, fs, MountOptions.defaults().withThreads(1))) {
            assertThat(Commands.run("cat", m.path("a/b/c/deep.txt").toString()).assertOk().stdout()).isEqualTo("deep\n");
            assertThat(Commands.run("ls", "-1", m.path().toString()).assertOk().stdout().lines()).hasSize(7);
            assertThat(fs.callingThreads()).containsOnly("virtual");
        }
    }

    @Test
    void forgetsBalanceLookupsWhenTheKernelDropsItsCaches() throws Exception {
        castore.fuse.testing.FuseAvailability.requireRoot();
        MemoryFileSystem fs = tree().build();
        try (var m = MountFixture.mount(tmp, fs)) {
            Commands.run("find", m.path().toString()).assertOk();
            Commands.run("cat", m.path("a/b/c/deep.txt").toString()).assertOk();
            assertThat(fs.totalLookupCount()).isPositive();
            // Reclaim dentries and inodes: the kernel forgets every node nobody uses. Again every
            // 200 ms: one pass leaves a dentry someone was using at that instant.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            for (int i = 0; fs.totalLookupCount() > 0 && System.nanoTime() < deadline; i++) {
                if (i % 10 == 0) {
                    Files.writeString(Path.of("/proc/sys/vm/drop_caches"), "2");
                }
                Thread.sleep(20);
            }
            assertThat(fs.totalLookupCount()).isZero();
            assertThat(Files.readString(m.path("a/b/c/deep.txt"))).isEqualTo("deep\n");
            assertThat(fs.lookupCount(fs.nodeId("a/b/c/deep.txt"))).isEqualTo(1);
        }
    }

    @Test
    void anOutsideUnmountEndsTheSession() throws Exception {
        MemoryFileSystem fs = tree().build();
        try (var m = MountFixture.mount(tmp, fs)) {
            assertThat(Files.readString(m.path("hello.txt"))).isEqualTo("hello\n");
            Commands.run("umount", m.path().toString()).assertOk();
            m.fuseMount().awaitUnmount();
            assertThat(m.mountInfo()).isEmpty();
            assertThat(fs.isDestroyed()).isTrue();
        }
    }

    @Test
    void badMountpointsFailWithAClearMessage() throws Exception {
        MemoryFileSystem fs = tree().build();
        Path missing = tmp.resolve("missing");
        assertThatThrownBy(() -> FuseMount.mount(missing, fs, MountOptions.defaults()))
                .isInstanceOf(IOException.class).hasMessage("mountpoint " + missing + " does not exist");
        Path file = Files.writeString(tmp.resolve("file"), "x");
        assertThatThrownBy(() -> FuseMount.mount(file, fs, MountOptions.defaults()))
                .isInstanceOf(IOException.class).hasMessage("mountpoint " + file + " is not a directory");
        assertThat(MountInfo.find(file)).isEmpty();
    }

    @Test
    void optionsAreValidated() {
        MountOptions d = MountOptions.defaults();
        assertThatThrownBy(() -> d.withThreads(0)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> d.withMaxWrite(3000)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> d.withFsName("a,allow_other")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> d.withSubtype("x y")).isInstanceOf(IllegalArgumentException.class);
        assertThat(d.withThreads(8).withAllowOther(true).threads()).isEqualTo(8);
        assertThat(SyscallMount.data(5, 1000, 100, d.withAllowOther(true)))
                .isEqualTo("fd=5,rootmode=40000,user_id=1000,group_id=100,default_permissions,allow_other");
        assertThat(Fusermount.options(d)).isEqualTo("ro,nosuid,nodev,fsname=castore,subtype=castore,default_permissions");
        assertThat(SyscallMount.type(d.withSubtype(""))).isEqualTo("fuse");
    }

    @Test
    void rootIsNeverLookedUpButAlwaysThere() throws Exception {
        MemoryFileSystem fs = tree().build();
        try (var m = MountFixture.mount(tmp, fs)) {
            assertThat(Files.getAttribute(m.path(), "unix:ino")).isEqualTo(FileSystem.ROOT_ID);
            assertThat(fs.lookupCount(FileSystem.ROOT_ID)).isZero();
            assertThat(Files.isReadable(m.path())).isTrue();
            assertThatThrownBy(() -> Files.newOutputStream(m.path("x"))).isInstanceOfAny(FileSystemException.class,
                    AccessDeniedException.class);
        }
    }
}

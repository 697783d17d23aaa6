package castore.fs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.fuse.testing.FuseAvailability;
import castore.fuse.testing.MountFixture;
import castore.model.B3Digest;
import castore.model.FileNode;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import castore.service.memory.MemoryRootService;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Real mounts with plain copies: files of at least the copies' minimum size get a copy once
 * opened, and later opens are read by the kernel from it (FUSE passthrough), never through the
 * store. Needs root (BACKING_OPEN needs CAP_SYS_ADMIN), like every mount test here.
 */
class PassthroughMountTest {
    static final int BIG = 3 * 1024 * 1024 + 12_345;
    static final long MIN = 1 << 20;

    @TempDir
    Path tmp;

    final InstrumentedBlobService blobs = new InstrumentedBlobService(new MemoryBlobService(), 65_537);
    final MemoryDirectoryService directories = new MemoryDirectoryService();
    final MemoryRootService roots = new MemoryRootService();
    final Trees trees = new Trees(blobs, directories, roots);
    final List<String> problems = new CopyOnWriteArrayList<>();
    final byte[] big = new byte[BIG];
    final byte[] other = new byte[BIG + 1];
    PlainCopies copies;
    Path copiesDir;

    @BeforeEach
    void buildStore() throws IOException {
        FuseAvailability.requireRoot(); // BACKING_OPEN needs CAP_SYS_ADMIN
        new SplittableRandom(5).nextBytes(big);
        new SplittableRandom(6).nextBytes(other);
        trees.root("tree", trees.dir(
                "big.bin", trees.file(big, false),
                "other.bin", trees.file(other, false),
                "small.txt", trees.file("small\n")));
        copiesDir = FuseAvailability.backingDirectory(tmp.resolve("copies"));
        copies = PlainCopies.open(copiesDir, blobs, MIN, 64L << 20, problems::add);
    }

    @AfterEach
    void closeCopies() throws IOException {
        copies.close();
        FuseAvailability.deleteBackingDirectory(copiesDir, tmp);
    }

    CastoreFileSystem filesystem() {
        return new CastoreFileSystem(blobs, directories, roots, FsOptions.defaults().withProblems(problems::add), copies);
    }

    MountFixture mount(CastoreFileSystem fs) throws IOException {
        return MountFixture.mount(Files.createTempDirectory(tmp, "m"), fs);
    }

    @Test
    void aFileOpenedOnceGetsACopyThatLaterMountsReadWithoutTheStore() throws Exception {
        var fs = filesystem();
        try (var m = mount(fs)) {
            assertThat(fs.passthroughActive()).isTrue();
            assertThat(Files.readAllBytes(m.path("tree/big.bin"))).isEqualTo(big);
            MountTest.eventually("a copy once the file is released", () -> copies.count() == 1);
        }
        int opensBefore = blobs.opens.get();
        int readsBefore = blobs.reads.get();
        var again = filesystem();
        try (var m = mount(again)) {
            try (FileChannel ch = FileChannel.open(m.path("tree/big.bin"))) {
                assertThat(again.passthroughFileCount()).isEqualTo(1);
                ByteBuffer all = ByteBuffer.allocate(BIG);
                while (all.hasRemaining() && ch.read(all) >= 0) {
                    // read to the end
                }
                assertThat(all.array()).isEqualTo(big);
                ByteBuffer piece = ByteBuffer.allocate(70_000);
                ch.read(piece, 1_234_567);
                assertThat(piece.array()).isEqualTo(Arrays.copyOfRange(big, 1_234_567, 1_234_567 + 70_000));
                // Unmapped when the arena closes: a mapping left to the GC keeps the mount busy after the test.
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment map = ch.map(FileChannel.MapMode.READ_ONLY, 0, BIG, arena);
                    for (int i = 0; i < BIG; i += 4099) {
                        assertThat(map.get(ValueLayout.JAVA_BYTE, i)).as("mapped byte %d", i).isEqualTo(big[i]);
                    }
                }
            }
        }
        assertThat(blobs.opens.get()).as("blob opens").isEqualTo(opensBefore);
        assertThat(blobs.reads.get()).as("blob reads").isEqualTo(readsBefore);
        assertThat(problems).isEmpty();
    }

    @Test
    void withCopyAheadEnteringARootCopiesItsBigFilesBeforeAnyIsOpened() throws Exception {
        var fs = new CastoreFileSystem(blobs, directories, roots, FsOptions.defaults().withProblems(problems::add)
                .withRootEntered(new CopyAhead(directories, copies)), copies);
        try (var m = mount(fs)) {
            assertThat(Files.exists(m.path("tree"))).isTrue();
            MountTest.eventually("copies of both big files", () -> copies.count() == 2);
            assertThat(blobs.opens(trees.file(big, false).digest())).as("opened only by the maker").isEqualTo(1);
            try (FileChannel ch = FileChannel.open(m.path("tree/other.bin"))) {
                assertThat(fs.passthroughFileCount()).as("the first open already reads the copy").isEqualTo(1);
                assertThat(readAll(ch)).isEqualTo(other);
            }
        }
        assertThat(problems).isEmpty();
    }

    @Test
    void filesBelowTheMinimumAreNeverCopiedAndAreReadAsBefore() throws Exception {
        var fs = filesystem();
        try (var m = mount(fs)) {
            assertThat(Files.readString(m.path("tree/small.txt"))).isEqualTo("small\n");
            MountTest.eventually("the file released", () -> fs.openFileCount() == 0);
            assertThat(copies.awaitIdle(Duration.ofSeconds(30))).isTrue();
            assertThat(copies.count()).isZero();
        }
    }

    @Test
    void whileAFileIsOpenThroughThePageCacheLaterOpensStayThereUntilEveryOneIsReleased() throws Exception {
        var fs = filesystem();
        try (var m = mount(fs)) {
            try (FileChannel first = FileChannel.open(m.path("tree/big.bin"))) {
                assertThat(readAll(first)).isEqualTo(big);
                assertThat(copies.awaitIdle(Duration.ofSeconds(30))).isTrue();
                assertThat(copies.count()).as("no copy while the file is open through the page cache").isZero();
                // A copy made meanwhile (as copy-ahead would): the kernel refuses a passthrough open beside a cached one.
                copies.request(trees.file(big, false).digest(), BIG);
                assertThat(copies.awaitIdle(Duration.ofSeconds(30))).isTrue();
                assertThat(copies.count()).isEqualTo(1);
                try (FileChannel second = FileChannel.open(m.path("tree/big.bin"))) {
                    assertThat(fs.passthroughFileCount()).isZero();
                    assertThat(readAll(second)).isEqualTo(big);
                    assertThat(readAll(first)).isEqualTo(big);
                }
            }
            MountTest.eventually("both files released", () -> fs.openFileCount() == 0);
            try (FileChannel third = FileChannel.open(m.path("tree/big.bin"))) {
                assertThat(fs.passthroughFileCount()).isEqualTo(1);
                assertThat(readAll(third)).isEqualTo(big);
                // And while it is open through the copy, a fourth open follows it.
                try (FileChannel fourth = FileChannel.open(m.path("tree/big.bin"))) {
                    assertThat(fs.passthroughFileCount()).isEqualTo(2);
                    assertThat(readAll(fourth)).isEqualTo(big);
                }
            }
            MountTest.eventually("passthrough files released", () -> fs.passthroughFileCount() == 0);
        }
        assertThat(problems).isEmpty();
    }

    @Test
    void concurrentReadersWhileCopiesAreMadeAllReadTheRightBytes() throws Exception {
        var fs = filesystem();
        try (var m = mount(fs); ExecutorService pool = Executors.newFixedThreadPool(8)) {
            List<Future<?>> readers = new ArrayList<>();
            for (int t = 0; t < 8; t++) {
                int seed = t;
                readers.add(pool.submit(() -> {
                    var random = new SplittableRandom(seed);
                    for (int i = 0; i < 40; i++) {
                        boolean first = random.nextBoolean();
                        byte[] expected = first ? big : other;
                        try (FileChannel ch = FileChannel.open(m.path(first ? "tree/big.bin" : "tree/other.bin"))) {
                            int at = random.nextInt(expected.length - 10_000);
                            ByteBuffer piece = ByteBuffer.allocate(10_000);
                            while (piece.hasRemaining()) {
                                ch.read(piece, at + piece.position());
                            }
                            assertThat(piece.array()).isEqualTo(Arrays.copyOfRange(expected, at, at + 10_000));
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> r : readers) {
                r.get();
            }
            MountTest.eventually("copies of both files once released", () -> copies.count() == 2);
        }
        assertThat(problems).isEmpty();
    }

    @Test
    void aCopyOfTheWrongLengthIsNeverServed() throws Exception {
        var fs = filesystem();
        try (var m = mount(fs)) {
            assertThat(Files.readAllBytes(m.path("tree/big.bin"))).isEqualTo(big);
            MountTest.eventually("a copy once the file is released", () -> copies.count() == 1);
        }
        FileNode node = trees.file(big, false);
        Path copy;
        try (var files = Files.walk(copiesDir)) {
            copy = files.filter(p -> p.getFileName().toString().equals(node.digest().toHex())).findFirst().orElseThrow();
        }
        copy.toFile().setWritable(true);
        try (FileChannel ch = FileChannel.open(copy, java.nio.file.StandardOpenOption.WRITE)) {
            ch.truncate(BIG - 1);
        }
        var again = filesystem();
        try (var m = mount(again)) {
            assertThat(Files.readAllBytes(m.path("tree/big.bin"))).isEqualTo(big);
            assertThat(again.passthroughFileCount()).isZero();
        }
    }

    @Test
    void aBlobMissingFromTheStoreIsReportedOnceAndNoCopyIsAskedFor() throws Exception {
        FileNode missing = new FileNode(B3Digest.parse("00".repeat(B3Digest.LENGTH)), BIG, false);
        trees.root("broken", trees.dir("gone.bin", missing, "big.bin", trees.file(big, false)));
        var fs = filesystem();
        try (var m = mount(fs)) {
            for (int i = 0; i < 3; i++) {
                assertThatThrownBy(() -> Files.readAllBytes(m.path("broken/gone.bin"))).isInstanceOf(IOException.class);
            }
            MountTest.eventually("every open released", () -> fs.openFileCount() == 0);
            assertThat(copies.awaitIdle(Duration.ofSeconds(30))).isTrue();
            assertThat(copies.count()).isZero();
            assertThat(problems).as("one line for one missing blob").hasSize(1);
            assertThat(problems.getFirst()).contains("missing from the blob service");
            // The failed opens left nothing behind: the good file still gets its copy and then passthrough.
            assertThat(Files.readAllBytes(m.path("broken/big.bin"))).isEqualTo(big);
            MountTest.eventually("a copy once the file is released", () -> copies.count() == 1);
            try (FileChannel ch = FileChannel.open(m.path("broken/big.bin"))) {
                assertThat(fs.passthroughFileCount()).isEqualTo(1);
                assertThat(readAll(ch)).isEqualTo(big);
            }
        }
    }

    /**
     * The kernel takes no backing file from a filesystem as deeply stacked as the mount's stack
     * depth (1) allows, e.g. overlayfs, a container's usual root: BACKING_OPEN fails with ELOOP
     * for every copy there. That is one line, and no more copies are made for nothing.
     */
    @Test
    void copiesOnAStackedFilesystemAreRefusedOnceAndFilesAreReadThroughThePageCache() throws Exception {
        Path layers = Files.createDirectories(tmp.resolve("overlay"));
        // The layers on a tmpfs of their own: overlayfs refuses an upper layer on overlayfs (a container's /tmp may be).
        run("mount", "-t", "tmpfs", "tmpfs", layers.toString());
        Path merged = layers.resolve("merged");
        try {
            for (String d : List.of("lower", "upper", "work", "merged")) {
                Files.createDirectories(layers.resolve(d));
            }
            run("mount", "-t", "overlay", "overlay", "-o", "lowerdir=" + layers.resolve("lower") + ",upperdir="
                    + layers.resolve("upper") + ",workdir=" + layers.resolve("work"), merged.toString());
        } catch (IOException | InterruptedException | AssertionError e) {
            run("umount", layers.toString());
            throw e;
        }
        try (PlainCopies stacked = PlainCopies.open(merged.resolve("copies"), blobs, MIN, 64L << 20, problems::add)) {
            var fs = new CastoreFileSystem(blobs, directories, roots, FsOptions.defaults().withProblems(problems::add), stacked);
            try (var m = mount(fs)) {
                assertThat(Files.readAllBytes(m.path("tree/big.bin"))).isEqualTo(big);
                MountTest.eventually("a copy once the file is released", () -> stacked.count() == 1);
                for (int round = 0; round < 2; round++) {
                    assertThat(Files.readAllBytes(m.path("tree/big.bin"))).isEqualTo(big);
                    assertThat(Files.readAllBytes(m.path("tree/other.bin"))).isEqualTo(other);
                    assertThat(stacked.awaitIdle(Duration.ofSeconds(30))).isTrue();
                }
                assertThat(fs.passthroughFileCount()).isZero();
                assertThat(stacked.count()).as("copies made after the kernel refused the first").isEqualTo(1);
                assertThat(stacked.acceptsRequests()).as("no more copies asked for once refused").isFalse();
                assertThat(problems).hasSize(1);
                assertThat(problems.getFirst()).contains("stacked");
            }
        } finally {
            run("umount", merged.toString());
            run("umount", layers.toString());
        }
    }

    private static void run(String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes());
        assertThat(p.waitFor()).as("%s: %s", String.join(" ", command), output).isZero();
    }

    private static byte[] readAll(FileChannel ch) throws IOException {
        ByteBuffer all = ByteBuffer.allocate((int) ch.size());
        long at = 0;
        while (all.hasRemaining()) {
            int n = ch.read(all, at);
            if (n < 0) {
                break;
            }
            at += n;
        }
        return all.array();
    }
}

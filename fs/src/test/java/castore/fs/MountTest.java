package castore.fs;

import static org.assertj.core.api.Assertions.assertThat;

import castore.fuse.testing.Commands;
import castore.fuse.testing.FuseAvailability;
import castore.fuse.testing.MountFixture;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.Name;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import castore.service.memory.MemoryRootService;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The castore filesystem on a real FUSE mount, exercised from child processes (coreutils, attr)
 * and from the test thread, which never serves requests.
 */
class MountTest {
    static final int BIG = 3 * 1024 * 1024 + 12_345;
    /** The blob service cuts reads at multiples of this, as a chunked store does, at odd offsets. */
    static final int CHUNK = 65_537;

    @TempDir
    Path tmp;

    final InstrumentedBlobService blobs = new InstrumentedBlobService(new MemoryBlobService(), CHUNK);
    final InstrumentedDirectoryService directories = new InstrumentedDirectoryService(new MemoryDirectoryService());
    final MemoryRootService roots = new MemoryRootService();
    final Trees trees = new Trees(blobs, directories, roots);
    final List<String> problems = new CopyOnWriteArrayList<>();
    final byte[] big = new byte[BIG];
    DirectoryNode tree;
    DirectoryNode gone;
    FileNode lost;

    @BeforeEach
    void buildStore() {
        new SplittableRandom(11).nextBytes(big);
        FileNode same = trees.file("same\n");
        gone = trees.dir("x", trees.file("gone"));
        directories.hidden.add(gone.digest());
        lost = new FileNode(castore.hash.Blake3.digest("never stored".getBytes()), 12, false);
        DirectoryNode twin = trees.dir("x", trees.file("x\n"), "y", Trees.link("x"));
        tree = trees.dir(
                "a", trees.dir("b", trees.dir("c", trees.dir("d", trees.dir(
                        "deep.txt", trees.file("deep\n"), "e", trees.dir())))),
                "big.bin", trees.file(big, false),
                "same1", same, "same2", same, "same-exe", new FileNode(same.digest(), same.size(), true),
                "dirA", twin, "dirB", twin,
                "l1", Trees.link("same1"), "l2", Trees.link("same1"), "dangling", Trees.link("nowhere"),
                "order", trees.dir("b", trees.file("b"), "a", trees.dir(), "C", Trees.link("a"), "_", trees.executable("_"),
                        "\u00e9", trees.file("e")),
                "gone", gone,
                "lost", lost);
        trees.root("hello", trees.file("hello, world\n"));
        trees.root("tool", trees.executable("#!/bin/sh\necho tool\n"));
        trees.root("link", Trees.link("hello"));
        trees.root("tree", tree);
    }

    CastoreFileSystem filesystem(FsOptions options) {
        return new CastoreFileSystem(blobs, directories, roots, options.withProblems(problems::add));
    }

    MountFixture mount(FsOptions options) throws IOException {
        return MountFixture.mount(Files.createTempDirectory(tmp, "m"), filesystem(options));
    }

    MountFixture mount() throws IOException {
        return mount(FsOptions.defaults());
    }

    static String p(MountFixture m, String relative) {
        return m.path(relative).toString();
    }

    static Commands.Result run(String... command) {
        return Commands.run(command);
    }

    static void assertFails(Commands.Result result, String message) {
        assertThat(result.exitCode()).as(result.stderr()).isNotZero();
        assertThat(result.stderr()).contains(message);
    }

    static void eventually(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("never happened: " + what);
            }
            Thread.sleep(20);
        }
    }

    @Test
    void mountsAndUnmountsCleanly() throws Exception {
        MountFixture m = mount();
        try (m) {
            assertThat(m.mountInfo()).isPresent();
            assertThat(run("stat", "-c", "%a %F %i", p(m, "")).assertOk().stdout()).isEqualTo("555 directory 1\n");
            assertThat(run("cat", p(m, "hello")).assertOk().stdout()).isEqualTo("hello, world\n");
        }
        assertThat(m.mountInfo()).isEmpty();
        assertThat(m.fuseMount().isUnmounted()).isTrue();
    }

    @Test
    void listingTheRootIsRefusedUnlessAllowed() throws Exception {
        try (var m = mount()) {
            assertFails(run("ls", p(m, "")), "Operation not permitted");
            assertThat(run("cat", p(m, "hello")).assertOk().stdout()).isEqualTo("hello, world\n");
        }
        try (var m = mount(FsOptions.defaults().withListRoot(true))) {
            assertThat(run("ls", "-f", p(m, "")).assertOk().stdout()).isEqualTo(".\n..\nhello\nlink\ntool\ntree\n");
            assertThat(run("ls", "-1p", p(m, "")).assertOk().stdout()).isEqualTo("hello\nlink\ntool\ntree/\n");
        }
    }

    @Test
    void repeatedAccessToImmutableContentNeverReachesTheFilesystem() throws Exception {
        var counting = new CountingFileSystem(filesystem(FsOptions.defaults().withRootTtl(Duration.ofHours(1))));
        try (var m = MountFixture.mount(Files.createTempDirectory(tmp, "m"), counting.proxy)) {
            String[] script = {"sh", "-c", "cat " + p(m, "tree/a/b/c/d/deep.txt") + " " + p(m, "tree/same1")
                    + " && stat " + p(m, "tree/order/_") + " " + p(m, "tree/link") + " " + p(m, "tree/nothing-here")
                    + "; ls -f " + p(m, "tree/order") + " && find " + p(m, "tree/a") + " && readlink " + p(m, "tree/l1")
                    + " && cmp " + p(m, "tree/big.bin") + " " + p(m, "tree/big.bin")};
            String first = run(script).stdout();
            var afterFirst = counting.snapshot();
            assertThat(afterFirst).containsKeys("lookup", "read", "readdir");
            assertThat(run(script).stdout()).isEqualTo(first);
            assertThat(counting.snapshot()).as("no request the second time").isEqualTo(afterFirst);
            assertThat(afterFirst).as("zero-message opens").doesNotContainKeys("release", "releasedir");
        }
    }

    @Test
    void explicitHandlesServeTheSameTree() throws Exception {
        Path copy = Files.write(tmp.resolve("big.copy"), big);
        try (var m = mount(FsOptions.defaults().withZeroMessageOpens(false))) {
            run("cmp", copy.toString(), p(m, "tree/big.bin")).assertOk();
            assertThat(run("ls", "-f", p(m, "tree/order")).assertOk().stdout()).isEqualTo(".\n..\nC\n_\na\nb\n\u00e9\n");
            assertFails(run("cat", p(m, "tree/lost")), "Input/output error");
            assertFails(run("ls", p(m, "tree/gone")), "Input/output error");
            assertFails(run("ls", p(m, "")), "Operation not permitted");
        }
    }

    @Test
    void rootNamesMatchExactly() throws Exception {
        try (var m = mount()) {
            run("stat", p(m, "hello")).assertOk();
            for (String near : List.of("Hello", "hell", "hello2", "hello ", "HELLO")) {
                assertFails(run("stat", p(m, near)), "No such file or directory");
            }
        }
    }

    @Test
    void aNameLongerThanNameMaxIsENAMETOOLONGInTheRootAndBelow() throws Exception {
        // statfs says names have at most 255 bytes; a longer one is ENAMETOOLONG, as on ext4 or
        // tmpfs (the kernel itself passes names of up to 1024 bytes to a FUSE filesystem).
        String longest = "n".repeat(Name.MAX_LENGTH);
        String tooLong = "n".repeat(Name.MAX_LENGTH + 1);
        try (var m = mount()) {
            assertFails(run("stat", p(m, longest)), "No such file or directory");
            assertFails(run("stat", p(m, "tree/" + longest)), "No such file or directory");
            assertFails(run("stat", p(m, tooLong)), "File name too long");
            assertFails(run("stat", p(m, "tree/" + tooLong)), "File name too long");
            assertFails(run("stat", p(m, "tree/a/" + "n".repeat(1024))), "File name too long");
            assertThat(run("stat", "-f", "-c", "%l", p(m, "")).assertOk().stdout()).isEqualTo(Name.MAX_LENGTH + "\n");
        }
    }

    @Test
    void filesReadAtTheRootAndAtAnyDepth() throws Exception {
        try (var m = mount()) {
            assertThat(run("cat", p(m, "hello")).assertOk().stdout()).isEqualTo("hello, world\n");
            assertThat(run("cat", p(m, "tree/a/b/c/d/deep.txt")).assertOk().stdout()).isEqualTo("deep\n");
            assertThat(run(p(m, "tool")).assertOk().stdout()).as("executable runs").isEqualTo("tool\n");
            assertThat(run("stat", "-c", "%s", p(m, "tree/a/b/c/d/deep.txt")).assertOk().stdout()).isEqualTo("5\n");
        }
    }

    @Test
    void permissionsFollowTheModesWithoutTheKernelsModeCheck() throws Exception {
        try (var m = mount()) {
            assertThat(m.mountInfo().orElseThrow().superOptions()).doesNotContain("default_permissions");
            // coreutils' test asks the kernel (faccessat), which asks castore's ACCESS
            run("/usr/bin/test", "-r", p(m, "hello")).assertOk();
            assertThat(run("/usr/bin/test", "-x", p(m, "hello")).exitCode()).as("plain file not executable").isEqualTo(1);
            assertThat(run("/usr/bin/test", "-w", p(m, "hello")).exitCode()).as("nothing writable").isEqualTo(1);
            run("/usr/bin/test", "-x", p(m, "tool")).assertOk();
            run("/usr/bin/test", "-x", p(m, "tree/a/b")).assertOk();
            assertThat(run("sh", "-c", "cd " + p(m, "tree/a/b") + " && ls").assertOk().stdout()).isEqualTo("c\n");
            assertFails(run("sh", "-c", p(m, "hello")), "Permission denied");
            assertFails(run("sh", "-c", p(m, "tree/same1")), "Permission denied");
            assertThat(run("sh", "-c", p(m, "tool")).assertOk().stdout()).isEqualTo("tool\n");
        }
    }

    @Test
    void attributesFollowTheNodes() throws Exception {
        try (var m = mount()) {
            String format = "%a %F %s %u %g %h %X %Y %Z";
            assertThat(run("stat", "-c", format, p(m, "hello")).assertOk().stdout())
                    .isEqualTo("444 regular file 13 0 0 1 0 0 0\n");
            assertThat(run("stat", "-c", format, p(m, "tool")).assertOk().stdout())
                    .isEqualTo("555 regular file 20 0 0 1 0 0 0\n");
            assertThat(run("stat", "-c", format, p(m, "link")).assertOk().stdout())
                    .isEqualTo("444 symbolic link 5 0 0 1 0 0 0\n");
            assertThat(run("stat", "-c", format, p(m, "tree")).assertOk().stdout())
                    .isEqualTo("555 directory " + tree.size() + " 0 0 1 0 0 0\n");
            assertThat(run("stat", "-c", format, p(m, "tree/a/b/c/d/e")).assertOk().stdout())
                    .isEqualTo("555 directory 0 0 0 1 0 0 0\n");
            assertThat(run("stat", "-c", format, p(m, "")).assertOk().stdout())
                    .isEqualTo("555 directory 0 0 0 1 0 0 0\n");
            assertThat(run("stat", "-c", "%s", p(m, "tree/big.bin")).assertOk().stdout()).isEqualTo(BIG + "\n");
        }
    }

    @Test
    void symlinksReadAndResolve() throws Exception {
        try (var m = mount()) {
            assertThat(run("readlink", p(m, "link")).assertOk().stdout()).isEqualTo("hello\n");
            assertThat(run("cat", p(m, "link")).assertOk().stdout()).isEqualTo("hello, world\n");
            assertThat(run("stat", "-L", "-c", "%F %s", p(m, "tree/l1")).assertOk().stdout()).isEqualTo("regular file 5\n");
            assertThat(run("cat", p(m, "tree/dirA/y")).assertOk().stdout()).isEqualTo("x\n");
            assertFails(run("cat", p(m, "tree/dangling")), "No such file or directory");
            assertFails(run("stat", "-L", p(m, "tree/dangling")), "No such file or directory");
            assertThat(run("readlink", p(m, "tree/dangling")).assertOk().stdout()).isEqualTo("nowhere\n");
            assertFails(run("readlink", "-v", p(m, "hello")), "Invalid argument");
        }
    }

    @Test
    void readdirIsInNameOrderWithTypesAlsoDeepWithoutListingTheParent() throws Exception {
        try (var m = mount()) {
            // First access to the tree is the listing of a deep directory.
            assertThat(run("ls", "-f", p(m, "tree/order")).assertOk().stdout()).isEqualTo(".\n..\nC\n_\na\nb\n\u00e9\n");
            assertThat(run("find", p(m, "tree/order"), "-mindepth", "1", "-printf", "%f %y\\n").assertOk().stdout())
                    .isEqualTo("C l\n_ f\na d\nb f\n\u00e9 f\n");
            assertThat(run("ls", "-f", p(m, "tree/a/b/c/d")).assertOk().stdout()).isEqualTo(".\n..\ndeep.txt\ne\n");
            assertThat(run("ls", "-f", p(m, "tree/a/b/c/d/e")).assertOk().stdout()).isEqualTo(".\n..\n");
            assertThat(run("ls", "-f", p(m, "tree/order")).assertOk().stdout()).as("cached listing")
                    .isEqualTo(".\n..\nC\n_\na\nb\n\u00e9\n");
        }
    }

    @Test
    void namesListedWithoutTheirLookupStatLikeLookedUpOnes() throws Exception {
        try (var m = mount()) {
            // A fresh listing gives files and symlinks out bare (inode number and type only).
            String listed = run("ls", "-f", "-i", p(m, "tree/order")).assertOk().stdout();
            StringBuilder stated = new StringBuilder();
            for (String line : listed.strip().split("\n")) {
                String name = line.strip().split(" ", 2)[1];
                String ino = run("stat", "-c", "%i", p(m, "tree/order/" + name)).assertOk().stdout().strip();
                stated.append(ino).append(' ').append(name).append('\n');
            }
            assertThat(stated.toString().replaceAll("(?m)^\\s+", "")).as("d_ino is st_ino")
                    .isEqualTo(listed.replaceAll("(?m)^\\s+", ""));
            // A walk that stats what it lists, in directories listed before and not.
            assertThat(run("find", p(m, "tree/a"), "-mindepth", "1", "-printf", "%P %y %m\\n").assertOk().stdout())
                    .isEqualTo("b d 555\nb/c d 555\nb/c/d d 555\nb/c/d/deep.txt f 444\nb/c/d/e d 555\n");
            assertThat(run("find", p(m, "tree/order"), "-mindepth", "1", "-printf", "%P %y %s %m %l\\n").assertOk().stdout())
                    .isEqualTo("C l 1 444 a\n_ f 1 555 \na d 0 555 \nb f 1 444 \n\u00e9 f 1 444 \n");
        }
    }

    @Test
    void identicalContentHasTheSameInode() throws Exception {
        try (var m = mount()) {
            String same1 = inode(m, "tree/same1");
            assertThat(inode(m, "tree/same2")).isEqualTo(same1);
            assertThat(inode(m, "tree/same-exe")).as("different mode").isNotEqualTo(same1);
            assertThat(inode(m, "tree/dirA")).isEqualTo(inode(m, "tree/dirB"));
            assertThat(inode(m, "tree/dirA/x")).isEqualTo(inode(m, "tree/dirB/x"));
            assertThat(inode(m, "tree/l1")).isEqualTo(inode(m, "tree/l2"));
            assertThat(inode(m, "tree/l1")).isNotEqualTo(inode(m, "tree/dangling"));
            assertThat(inode(m, "tree/a/b/c/d/e")).isEqualTo(inode(m, "tree/order/a")).as("empty directories");
        }
    }

    @Test
    void aDirectoryStaysWhereItIsWhenItsTwinIsLookedUp() throws Exception {
        // The kernel keeps one dentry per directory inode: were twins one node id, looking up
        // dirB would move the dentry of dirA, and a process inside dirA would find itself in dirB.
        try (var m = mount()) {
            String script = "cd " + p(m, "tree/dirA") + " && stat " + p(m, "tree/dirB/x") + " >/dev/null && pwd -P";
            assertThat(run("sh", "-c", script).assertOk().stdout()).isEqualTo(p(m, "tree/dirA") + "\n");
        }
    }

    static String inode(MountFixture m, String path) {
        return run("stat", "-c", "%i", p(m, path)).assertOk().stdout().trim();
    }

    @Test
    void writesOfEveryKindAreRefused() throws Exception {
        try (var m = mount()) {
            String file = p(m, "tree/same1");
            String dir = p(m, "tree/dirA");
            List<List<String>> writes = List.of(
                    List.of("touch", p(m, "tree/new")),
                    List.of("touch", file),
                    List.of("sh", "-c", "echo x > " + file),
                    List.of("sh", "-c", "echo x >> " + file),
                    List.of("truncate", "-s", "0", file),
                    List.of("mkdir", p(m, "tree/newdir")),
                    List.of("mkdir", p(m, "newroot")),
                    List.of("rmdir", p(m, "tree/a/b/c/d/e")),
                    List.of("rm", "-f", file),
                    List.of("mv", file, p(m, "tree/moved")),
                    List.of("ln", file, p(m, "tree/hard")),
                    List.of("ln", "-s", "x", p(m, "tree/soft")),
                    List.of("chmod", "644", file),
                    List.of("chown", "1:1", file),
                    List.of("mkfifo", p(m, "tree/fifo")),
                    List.of("setfattr", "-n", "user.x", "-v", "y", dir),
                    List.of("setfattr", "-x", "user.tvix.castore.directory.digest", dir));
            for (List<String> write : writes) {
                assertFails(Commands.run(write), "Read-only file system");
            }
            assertThat(run("cat", file).assertOk().stdout()).isEqualTo("same\n");
        }
    }

    @Test
    void aMissingDirectoryOrBlobIsEioWhileStatWorks() throws Exception {
        try (var m = mount()) {
            assertThat(run("stat", "-c", "%F", p(m, "tree/gone")).assertOk().stdout()).isEqualTo("directory\n");
            assertFails(run("ls", p(m, "tree/gone")), "Input/output error");
            assertFails(run("stat", p(m, "tree/gone/x")), "Input/output error");
            assertThat(run("stat", "-c", "%F %s", p(m, "tree/lost")).assertOk().stdout()).isEqualTo("regular file 12\n");
            assertFails(run("cat", p(m, "tree/lost")), "Input/output error");
            assertFails(run("cat", p(m, "tree/lost")), "Input/output error");
            assertThat(run("cat", p(m, "tree/same1")).assertOk().stdout()).as("everything else still served").isEqualTo("same\n");
        }
        assertThat(problems).as("each reported once").hasSize(2);
        assertThat(String.join("\n", problems)).contains(gone.digest().toString(), lost.digest().toString());
    }

    @Test
    void digestXattrsCanBeReadAndTurnedOff() throws Exception {
        FileNode hello = (FileNode) roots.get(Name.of("hello")).orElseThrow();
        try (var m = mount()) {
            assertThat(run("getfattr", "--only-values", "-n", "user.tvix.castore.blob.digest", p(m, "hello"))
                    .assertOk().stdout()).isEqualTo(hello.digest().toString());
            assertThat(run("getfattr", "--only-values", "-n", "user.tvix.castore.directory.digest", p(m, "tree"))
                    .assertOk().stdout()).isEqualTo(tree.digest().toString());
            assertThat(run("getfattr", "-d", "-m", "-", p(m, "tree")).assertOk().stdout())
                    .contains("user.tvix.castore.directory.digest=\"" + tree.digest() + "\"");
            assertThat(run("getfattr", "-d", "-m", "-", "--absolute-names", p(m, "hello")).assertOk().stdout().lines()
                    .filter(l -> l.startsWith("user.")).toList())
                    .containsExactly("user.tvix.castore.blob.digest=\"" + hello.digest() + "\"");
            assertFails(run("getfattr", "-n", "user.other", p(m, "hello")), "No such attribute");
            assertFails(run("getfattr", "-h", "-n", "user.tvix.castore.blob.digest", p(m, "link")), "No such attribute");
        }
        try (var m = mount(FsOptions.defaults().withXattrs(false))) {
            assertFails(run("getfattr", "-n", "user.tvix.castore.blob.digest", p(m, "hello")), "Operation not supported");
            assertFails(run("getfattr", "-n", "user.tvix.castore.blob.digest", p(m, "hello")), "Operation not supported");
            assertThat(run("cat", p(m, "hello")).assertOk().stdout()).isEqualTo("hello, world\n");
        }
    }

    @Test
    void aFileOfManyChunksReadsWholeAndAtRandomOffsets() throws Exception {
        Path copy = tmp.resolve("big.copy");
        Files.write(copy, big);
        try (var m = mount()) {
            // Cold: random reads first, so each one reaches the filesystem.
            var random = new SplittableRandom(5);
            try (var file = new RandomAccessFile(m.path("tree/big.bin").toFile(), "r")) {
                for (int i = 0; i < 200; i++) {
                    int chunkBoundary = CHUNK * random.nextInt(1, BIG / CHUNK + 1);
                    int offset = Math.max(0, chunkBoundary - random.nextInt(1, 9000));
                    byte[] buffer = new byte[random.nextInt(1, 20_000)];
                    file.seek(offset);
                    int n = file.read(buffer);
                    int expected = Math.min(buffer.length, BIG - offset);
                    assertThat(n).isEqualTo(expected);
                    assertThat(Arrays.equals(buffer, 0, n, big, offset, offset + n)).as("bytes at %d", offset).isTrue();
                }
            }
            run("cmp", copy.toString(), p(m, "tree/big.bin")).assertOk();
        }
        try (var m = mount()) {
            run("cmp", copy.toString(), p(m, "tree/big.bin")).assertOk();
            String tail = "dd if=" + p(m, "tree/big.bin") + " bs=1000 skip=" + (BIG / 1000) + " status=none | wc -c";
            assertThat(run("sh", "-c", tail).assertOk().stdout().trim()).as("short read at end of file")
                    .isEqualTo(String.valueOf(BIG % 1000));
        }
    }

    @Test
    void eightConcurrentReaders() throws Exception {
        Path copy = tmp.resolve("big.copy");
        Files.write(copy, big);
        try (var m = mount()) {
            List<Process> readers = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                readers.add(new ProcessBuilder("cmp", copy.toString(), p(m, "tree/big.bin")).inheritIO().start());
            }
            for (Process reader : readers) {
                assertThat(reader.waitFor()).isZero();
            }
        }
    }

    @Test
    void aFileCanBeMemoryMapped() throws Exception {
        try (var m = mount()) {
            // Mapped into an arena, so the mapping is gone before the unmount (a MappedByteBuffer
            // would keep the file, and the connection, alive until garbage collection).
            try (var arena = Arena.ofConfined();
                 var channel = FileChannel.open(m.path("tree/big.bin"), StandardOpenOption.READ)) {
                MemorySegment mapped = channel.map(FileChannel.MapMode.READ_ONLY, 0, BIG, arena);
                assertThat(mapped.asByteBuffer().mismatch(ByteBuffer.wrap(big))).isEqualTo(-1);
                assertThat(mapped.get(ValueLayout.JAVA_BYTE, BIG - 1)).isEqualTo(big[BIG - 1]);
            }
        }
    }

    @Test
    void aRootAddedOrRepointedWhileMountedShowsAfterTheRootTtl() throws Exception {
        try (var m = mount(FsOptions.defaults().withRootTtl(Duration.ofMillis(200)))) {
            assertFails(run("cat", p(m, "late")), "No such file or directory");
            assertThat(run("cat", p(m, "hello")).assertOk().stdout()).isEqualTo("hello, world\n");

            trees.root("late", trees.file("late\n"));
            trees.root("hello", trees.file("hello again\n"));
            eventually("the new root is visible", () -> run("cat", p(m, "late")).ok());
            eventually("the re-pointed root shows its new content",
                    () -> run("cat", p(m, "hello")).stdout().equals("hello again\n"));
        }
    }

    @Test
    void theInodeTableShrinksWhenTheKernelForgets() throws Exception {
        FuseAvailability.requireRoot();
        var many = ManyFiles.tree(trees, 40, 50);
        trees.root("many", many);
        CastoreFileSystem fs = filesystem(FsOptions.defaults());
        try (var m = MountFixture.mount(Files.createTempDirectory(tmp, "m"), fs)) {
            assertThat(run("sh", "-c", "find " + p(m, "many") + " -type f -exec cat {} + | wc -l").assertOk().stdout().trim())
                    .isEqualTo("2000");
            assertThat(fs.inodeCount()).isGreaterThanOrEqualTo(2000);
            // Again every 200 ms: one pass leaves a dentry someone was using at that instant.
            int[] polls = {0};
            eventually("the kernel forgot most inodes (" + fs.inodeCount() + " left)", () -> {
                if (polls[0]++ % 10 == 0) {
                    run("sh", "-c", "echo 2 > /proc/sys/vm/drop_caches").assertOk();
                }
                return fs.inodeCount() < 100;
            });
            assertThat(run("cat", p(m, "many/d07/f042")).assertOk().stdout()).isEqualTo("file 7/42\n");
        }
    }

    /** Trees with many small files. */
    static final class ManyFiles {
        static DirectoryNode tree(Trees trees, int dirs, int filesPerDir) {
            Object[] top = new Object[2 * dirs];
            for (int d = 0; d < dirs; d++) {
                Object[] files = new Object[2 * filesPerDir];
                for (int f = 0; f < filesPerDir; f++) {
                    files[2 * f] = String.format("f%03d", f);
                    files[2 * f + 1] = trees.file("file " + d + "/" + f + "\n");
                }
                top[2 * d] = String.format("d%02d", d);
                top[2 * d + 1] = trees.dir(files);
            }
            return trees.dir(top);
        }
    }
}

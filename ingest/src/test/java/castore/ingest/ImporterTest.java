package castore.ingest;

import static castore.ingest.RawTree.bytes;
import static castore.ingest.RawTree.join;
import static castore.ingest.RawTree.mkdir;
import static castore.ingest.RawTree.symlink;
import static castore.ingest.RawTree.write;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.hash.Blake3;
import castore.ingest.posix.PosixException;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.InvalidDataException;
import castore.model.Node;
import castore.model.SymlinkNode;
import castore.service.BlobService;
import castore.service.BlobWriter;
import castore.service.ForwardingBlobService;
import castore.service.ForwardingDirectoryService;
import castore.service.ForwardingBlobWriter;
import castore.service.DirectoryService;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ImporterTest {
    @TempDir
    Path tmp;

    final MemoryBlobService blobs = new MemoryBlobService();
    final List<Directory> puts = new ArrayList<>();
    final MemoryDirectoryService stored = new MemoryDirectoryService();
    /** The test's directories, in {@code stored}; subclasses override what they watch. */
    class StoredDirectories extends ForwardingDirectoryService {
        StoredDirectories() {
            super(stored);
        }
    }

    /** Records the order of puts. */
    final DirectoryService directories = new StoredDirectories() {
        @Override
        public B3Digest put(Directory directory) throws IOException {
            synchronized (puts) {
                puts.add(directory);
            }
            return super.put(directory);
        }
    };
    final Importer importer = new Importer(blobs, directories, 2);

    private static B3Digest b3(String s) {
        return Blake3.digest(s.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void treeDigestMatchesHandBuiltDirectories() throws IOException {
        byte[] root = join(bytes(tmp), "t");
        mkdir(root);
        write(join(root, "a"), "hello");
        mkdir(join(root, "b"));
        write(join(root, "b", "c"), "x".getBytes(StandardCharsets.UTF_8), 0755);
        symlink("a", join(root, "l"));

        Directory b = new Directory.Builder().add("c", new FileNode(b3("x"), 1, true)).build();
        Directory top = new Directory.Builder()
                .add("a", new FileNode(b3("hello"), 5, false))
                .add("b", new DirectoryNode(b.digest(), b.size()))
                .add("l", SymlinkNode.of("a"))
                .build();

        Node node = importer.importPath(root);
        assertThat(node).isEqualTo(new DirectoryNode(top.digest(), 4));
        assertThat(puts).as("leaves first").containsExactly(b, top);
        assertThat(blobs.has(b3("hello"))).isTrue();
    }

    /**
     * Subdirectories are imported in the order the source lists them (depth first), so file data
     * lands in the packs in the order a walk of the source reads it; a stack that popped them last
     * first laid a tree out backwards, and a cold read in walk order made one disk read per file.
     */
    @Test
    void subdirectoriesAreImportedInTheOrderTheSourceListsThem() throws IOException {
        byte[] root = join(bytes(tmp), "walk");
        mkdir(root);
        for (String d : List.of("d1", "d2", "d3", "d4", "d5", "d6")) {
            mkdir(join(root, d));
            write(join(root, d, "f"), "content of " + d);
        }
        List<String> listed;
        try (var entries = java.nio.file.Files.list(tmp.resolve("walk"))) {
            listed = entries.map(p -> p.getFileName().toString()).toList(); // readdir order
        }
        Importer oneWorker = new Importer(blobs, directories, 1);
        oneWorker.importPath(root);
        List<String> completed = new ArrayList<>();
        synchronized (puts) {
            for (Directory d : puts) {
                if (d.entryCount() == 1 && d.node(0) instanceof FileNode file) {
                    for (String name : listed) {
                        if (file.digest().equals(b3("content of " + name))) {
                            completed.add(name);
                        }
                    }
                }
            }
        }
        assertThat(completed).as("leaf directories in the order of the source's listing").isEqualTo(listed);
    }

    /**
     * Eight big files in one directory on two workers: every file's writer waits in finish()
     * until the other worker is finishing a file too, so the import completes only if the two
     * workers share the files four and four. (When a worker split off only the files it had not
     * yet opened, it kept five and the other three: the last two waited alone and timed out.)
     */
    @Test
    void bigFilesOfOneDirectoryAreSharedEvenlyByTheWorkers() throws IOException {
        bigFilesAreReadByEveryWorkerAtOnce(2);
    }

    /** More threads than 32 batches of 16 files: each gets a batch (smaller ones) and every one is busy. */
    @Test
    void moreThreadsThanBatchesOfTheDefaultSizeAreAllBusy() throws IOException {
        bigFilesAreReadByEveryWorkerAtOnce(48);
    }

    /** Files of one directory, each finishing only once every worker is reading one. */
    private void bigFilesAreReadByEveryWorkerAtOnce(int threads) throws IOException {
        byte[] dir = join(bytes(tmp), "big");
        mkdir(dir);
        List<B3Digest> digests = new ArrayList<>();
        for (int i = 0; i < Math.max(8, threads); i++) {
            byte[] content = new byte[(int) Importer.SPLIT_SIZE];
            Arrays.fill(content, (byte) i);
            write(join(dir, String.format("f%02d", i)), content, 0644);
            digests.add(Blake3.digest(content));
        }
        CyclicBarrier inPairs = new CyclicBarrier(threads);
        BlobService pairing = new ForwardingBlobService(blobs) {
            @Override
            public BlobWriter create() throws IOException {
                BlobWriter inner = blobs.create();
                return new ForwardingBlobWriter(inner) {
                    @Override
                    public B3Digest finish() throws IOException {
                        try {
                            inPairs.await(20, TimeUnit.SECONDS);
                        } catch (InterruptedException | BrokenBarrierException | TimeoutException e) {
                            inPairs.reset();
                            throw new IOException("a big file was read while the other worker had none", e);
                        }
                        return inner.finish();
                    }
                };
            }
        };
        Node node = new Importer(pairing, directories, threads).importPath(dir);
        assertThat(node).isInstanceOf(DirectoryNode.class);
        List<B3Digest> stored = puts.getFirst().entries().values().stream().map(n -> ((FileNode) n).digest()).toList();
        assertThat(stored).containsExactlyElementsOf(digests);
    }

    @Test
    void symlinkGivenAsPathIsStoredNotFollowed() throws IOException {
        byte[] dir = join(bytes(tmp), "dir");
        mkdir(dir);
        write(join(dir, "f"), "content");
        byte[] link = join(bytes(tmp), "link");
        symlink("dir", link);
        assertThat(importer.importPath(link)).isEqualTo(SymlinkNode.of("dir"));
        assertThat(puts).isEmpty();
        assertThat(importer.stats().files()).isZero();
    }

    @Test
    void fileGivenAsPathIsItsBlob() throws IOException {
        byte[] file = join(bytes(tmp), "f");
        write(file, "some bytes".getBytes(StandardCharsets.UTF_8), 0751);
        assertThat(importer.importPath(file)).isEqualTo(new FileNode(b3("some bytes"), 10, true));
        assertThat(importer.stats()).isEqualTo(new ImportStats(1, 0, 0, 10, 10, 0));
    }

    @Test
    void aFileWhoseSizeSaysZeroIsReadToItsEnd() throws IOException {
        // procfs files report size 0 but have content: tvix reads them to the end, so must we.
        byte[] content = Files.readAllBytes(Path.of("/proc/version"));
        assertThat(content).isNotEmpty();
        assertThat(importer.importPath(bytes(Path.of("/proc/version"))))
                .isEqualTo(new FileNode(Blake3.digest(content), content.length, false));
    }

    /**
     * Read buffers: 4 MiB each up to 128 threads, then 512 MiB shared (at least 256 KiB each), so
     * that 1024 threads do not hold 4 GiB; a file of several smaller buffers reads the same.
     */
    @Test
    void manyThreadsShareTheReadBuffersBudgetAndReadTheSame() throws IOException {
        assertThat(Importer.readBufferSize(1)).isEqualTo(4 << 20);
        assertThat(Importer.readBufferSize(128)).isEqualTo(4 << 20);
        assertThat(Importer.readBufferSize(1024)).isEqualTo(512 << 10);
        assertThat(Importer.readBufferSize(1000)).isEqualTo(536_576); // 536,870 rounded down to whole pages
        assertThat(Importer.readBufferSize(100_000)).isEqualTo(256 << 10);
        byte[] dir = join(bytes(tmp), "d");
        mkdir(dir);
        byte[] content = new byte[3 * (512 << 10) + 12345];
        new java.util.Random(9).nextBytes(content);
        write(join(dir, "big"), content, 0644);
        write(join(dir, "small"), "small");
        assertThat(new Importer(blobs, directories, 1024).importPath(dir)).isEqualTo(new Importer(blobs, directories, 2).importPath(dir));
        FileNode big = (FileNode) directories.get(((castore.model.DirectoryNode) importer.importPath(dir)).digest()).orElseThrow()
                .entries().get(castore.model.Name.of("big"));
        assertThat(big).isEqualTo(new FileNode(Blake3.digest(content), content.length, false));
    }

    /** Python 3.7+ bytecode's 16-byte header: magic (3.11's), flags, then mtime and size (or a source hash). */
    private static byte[] pyc(int flags, int mtime) {
        var b = java.nio.ByteBuffer.allocate(40).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.put(new byte[] {(byte) 0xa7, 0x0d, 0x0d, 0x0a}).putInt(flags).putInt(mtime).putInt(24);
        return b.array();
    }

    @Test
    void pythonBytecodeThatTrustsMtimesIsCountedWithAnExample() throws IOException {
        byte[] dir = join(bytes(tmp), "d");
        mkdir(dir);
        mkdir(join(dir, "__pycache__"));
        write(join(dir, "__pycache__", "a.cpython-311.pyc"), pyc(0, 1_745_849_508), 0644); // timestamp-based: stale on a mount
        write(join(dir, "__pycache__", "b.cpython-311.pyc"), pyc(1, 0), 0644); // hash-based (PEP 552)
        write(join(dir, "__pycache__", "c.cpython-311.pyc"), pyc(0, 0), 0644); // compiled against time 0: valid on a mount
        write(join(dir, "not-bytecode.bin"), pyc(0, 1_745_849_508), 0644); // the same bytes, another name
        write(join(dir, "short.pyc"), new byte[] {(byte) 0xa7, 0x0d, 0x0d, 0x0a}, 0644);
        assertThat(importer.mtimeBytecode()).isNull();
        importer.importPath(dir);
        Importer.MtimeBytecode found = importer.mtimeBytecode();
        assertThat(found.count()).isEqualTo(1);
        assertThat(new String(found.example(), StandardCharsets.UTF_8)).isEqualTo(tmp + "/d/__pycache__/a.cpython-311.pyc");
    }

    /** A blob service whose writers run {@code hook} after each piece of a file they write. */
    private BlobService afterEachWrite(ThrowingRunnable hook) {
        return new ForwardingBlobService(blobs) {
            @Override
            public BlobWriter create() throws IOException {
                BlobWriter inner = blobs.create();
                return new ForwardingBlobWriter(inner) {
                    @Override
                    public void write(ByteBuffer data) throws IOException {
                        inner.write(data);
                        hook.run();
                    }
                };
            }
        };
    }

    /** A blob service whose writers run {@code hook} once, after the first piece of any file is written. */
    private BlobService afterFirstWrite(ThrowingRunnable hook) {
        var ran = new java.util.concurrent.atomic.AtomicBoolean();
        return afterEachWrite(() -> {
            if (ran.compareAndSet(false, true)) {
                hook.run();
            }
        });
    }

    private interface ThrowingRunnable {
        void run() throws IOException;
    }

    @Test
    void aFileThatShrinksWhileItIsReadIsAnErrorNamingIt() throws Exception {
        byte[] dir = join(bytes(tmp), "d");
        mkdir(dir);
        byte[] file = join(dir, "log");
        byte[] content = new byte[3 * Importer.READ_BUFFER_SIZE];
        new java.util.Random(5).nextBytes(content);
        write(file, content, 0644);
        // Truncated by someone else once its first piece was read: the rest reads as end of file.
        BlobService truncating = afterEachWrite(() -> {
            try (var channel = java.nio.channels.FileChannel.open(tmp.resolve("d/log"), java.nio.file.StandardOpenOption.WRITE)) {
                channel.truncate(1000);
            }
        });
        // Before: stored as its first 4 MiB, content the file never had at any moment.
        String message = "cannot import " + tmp + "/d/log: it shrank while it was read (from " + content.length
                + " to 1000 bytes); import it again when nothing writes it";
        assertThatThrownBy(() -> new Importer(truncating, directories, 2).importPath(dir)).isInstanceOf(IOException.class).hasMessage(message);
        Files.write(tmp.resolve("d/log"), content);
        assertThatThrownBy(() -> new Importer(truncating, directories, 2).importPath(file)).isInstanceOf(IOException.class).hasMessage(message);
    }

    @Test
    void anExcludedDirectoryIsLeftOutWhereverItIsAndCannotBeImportedItself() throws Exception {
        byte[] dir = join(bytes(tmp), "d");
        mkdir(dir);
        write(join(dir, "a"), "a");
        mkdir(join(dir, "sub"));
        write(join(dir, "sub", "b"), "b");
        mkdir(join(dir, "sub", "store"));
        write(join(dir, "sub", "store", "pack"), "being written");
        mkdir(join(dir, "store")); // the same name elsewhere is another directory: imported
        write(join(dir, "store", "c"), "c");
        byte[] expected = join(bytes(tmp), "expected");
        mkdir(expected);
        write(join(expected, "a"), "a");
        mkdir(join(expected, "sub"));
        write(join(expected, "sub", "b"), "b");
        mkdir(join(expected, "store"));
        write(join(expected, "store", "c"), "c");
        // Named through a symlink, as a store address can be: the directory it names is left out.
        symlink("d/sub/store", join(bytes(tmp), "link-to-store"));
        List<byte[]> excluded = new ArrayList<>();
        Importer excluding = new Importer(blobs, directories, 2)
                .excluding(List.of(join(bytes(tmp), "link-to-store"), join(bytes(tmp), "absent")), excluded::add);
        assertThat(excluding.importPath(dir)).isEqualTo(importer.importPath(expected));
        assertThat(excluded).extracting(b -> new String(b, StandardCharsets.UTF_8)).containsExactly(tmp + "/d/sub/store");
        assertThatThrownBy(() -> excluding.importPath(join(dir, "sub", "store"))).isInstanceOf(InvalidDataException.class)
                .hasMessage("cannot import " + tmp + "/d/sub/store: it is where the store keeps its data");
    }

    @Test
    void aFileWrittenWhileItIsReadIsAnErrorNamingIt() throws Exception {
        byte[] dir = join(bytes(tmp), "d");
        mkdir(dir);
        byte[] file = join(dir, "data");
        byte[] content = new byte[3 * Importer.READ_BUFFER_SIZE];
        new java.util.Random(6).nextBytes(content);
        Path path = tmp.resolve("d/data");
        // Someone else writes the file once its first piece was read: in place (the same size,
        // later bytes new) or at its end. Its time is moved on explicitly, so that a coarse clock
        // cannot hide the write; a writer's own write moves it as well on this kernel.
        record Case(String name, java.nio.file.StandardOpenOption mode, String message) {
        }
        for (Case c : List.of(
                new Case("in place", java.nio.file.StandardOpenOption.WRITE, "it was written while it was read (its modification time changed)"),
                new Case("appended", java.nio.file.StandardOpenOption.APPEND,
                        "it grew while it was read (from " + content.length + " to " + (content.length + 10) + " bytes)"))) {
            Files.write(path, content);
            BlobService writing = afterFirstWrite(() -> {
                var before = Files.getLastModifiedTime(path);
                Files.write(path, new byte[10], c.mode());
                Files.setLastModifiedTime(path, java.nio.file.attribute.FileTime.fromMillis(before.toMillis() + 1000));
            });
            // Before: stored as its first 4 MiB followed by the new bytes (in place), or as its
            // old length (appended); neither is content the file held at any moment.
            assertThatThrownBy(() -> new Importer(writing, directories, 2).importPath(dir)).as(c.name())
                    .isInstanceOf(IOException.class)
                    .hasMessage("cannot import " + tmp + "/d/data: " + c.message() + "; import it again when nothing writes it");
        }
    }

    @Test
    void anEmptyFileWrittenFasterThanItIsReadIsAnErrorAndTheImportEnds() throws Exception {
        byte[] dir = join(bytes(tmp), "d");
        mkdir(dir);
        Path path = tmp.resolve("d/log");
        Files.write(path, new byte[0]);
        // Empty when stat'ed, then written by someone else before the first read and after every
        // piece read: read to its end as a procfs file is, it had no end.
        byte[] piece = new byte[Importer.READ_BUFFER_SIZE];
        ThrowingRunnable append = () -> Files.write(path, piece, java.nio.file.StandardOpenOption.APPEND);
        var pieces = new java.util.concurrent.atomic.AtomicInteger();
        BlobService growing = new ForwardingBlobService(afterEachWrite(() -> {
            if (pieces.incrementAndGet() < 64) { // a bound, so that the test itself ends: 256 MiB
                append.run();
            }
        })) {
            @Override
            public BlobWriter create() throws IOException {
                append.run();
                return super.create();
            }
        };
        assertThatThrownBy(() -> new Importer(growing, directories, 2).importPath(dir))
                .isInstanceOf(IOException.class)
                .hasMessage("cannot import " + tmp + "/d/log: it grew while it was read (from 0 to "
                        + 2 * piece.length + " bytes); import it again when nothing writes it");
        assertThat(pieces).hasValue(1);
    }

    @Test
    void aFileWhoseModeOrLinksChangeWhileItIsReadIsStored() throws Exception {
        byte[] dir = join(bytes(tmp), "d");
        mkdir(dir);
        byte[] content = new byte[2 * Importer.READ_BUFFER_SIZE];
        new java.util.Random(7).nextBytes(content);
        Path path = tmp.resolve("d/data");
        Files.write(path, content);
        // A chmod or a new hard link moves the change time, not the modification time: the
        // content read is the file's, and the import succeeds.
        var touched = new java.util.concurrent.atomic.AtomicBoolean();
        BlobService touching = afterFirstWrite(() -> {
            Files.setPosixFilePermissions(path, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
            Files.createLink(tmp.resolve("link"), path);
            touched.set(true);
        });
        DirectoryNode node = (DirectoryNode) new Importer(touching, directories, 2).importPath(dir);
        assertThat(touched).isTrue();
        assertThat(stored.get(node.digest()).orElseThrow().entries())
                .containsExactly(java.util.Map.entry(castore.model.Name.of("data"), new FileNode(Blake3.digest(content), content.length, false)));
    }

    @Test
    void aFileReplacedByADirectoryOrASymlinkAfterItWasListedIsAnErrorSayingItChanged() throws Exception {
        for (String now : List.of("a directory", "a symlink", "gone")) {
            Path d = tmp.resolve(now.replace("a ", ""));
            Files.createDirectory(d);
            for (int i = 0; i < 20; i++) {
                Files.writeString(d.resolve(String.format("f%02d", i)), "content " + i);
            }
            // Once the first file is being read, every file is replaced (those already open read on).
            java.util.concurrent.atomic.AtomicBoolean replaced = new java.util.concurrent.atomic.AtomicBoolean();
            BlobService replacing = new ForwardingBlobService(blobs) {
                @Override
                public BlobWriter create() throws IOException {
                    if (replaced.compareAndSet(false, true)) {
                        for (int i = 0; i < 20; i++) {
                            Path f = d.resolve(String.format("f%02d", i));
                            Files.delete(f);
                            if (now.equals("a directory")) {
                                Files.createDirectory(f);
                            } else if (now.equals("a symlink")) {
                                Files.createSymbolicLink(f, Path.of("elsewhere"));
                            }
                        }
                    }
                    return blobs.create();
                }
            };
            // Before: "it is a directory (only regular files, directories and symlinks can be
            // imported)", "Too many levels of symbolic links", and "cannot open ...: No such file
            // or directory", which said nothing of a tree that changed.
            assertThatThrownBy(() -> new Importer(replacing, directories, 1).importPath(bytes(d)))
                    .isInstanceOf(IOException.class)
                    .hasMessageMatching("cannot import " + java.util.regex.Pattern.quote(d.toString()) + "/f[0-9]{2}: it changed during the import \\(a regular file when listed, now "
                            + now + "\\); import it again when nothing changes it");
        }
    }

    @Test
    void aSysfsFileShorterThanItsSizeIsReadAsItIs() throws IOException {
        // sysfs says 4096 for files that hold a line: short of its size, it did not shrink.
        Path sysfs = Path.of("/sys/devices/system/cpu/online");
        if (!Files.isReadable(sysfs) && System.getenv("CI") == null) {
            return;
        }
        byte[] content = Files.readAllBytes(sysfs);
        assertThat(Files.size(sysfs)).isGreaterThan(content.length);
        assertThat(importer.importPath(bytes(sysfs))).isEqualTo(new FileNode(Blake3.digest(content), content.length, false));
    }

    @Test
    void emptyDirectoryIsTheEmptyDirectory() throws IOException {
        byte[] dir = join(bytes(tmp), "e");
        mkdir(dir);
        assertThat(importer.importPath(dir)).isEqualTo(new DirectoryNode(Directory.empty().digest(), 0));
    }

    private static void mkfifo(Path path) throws Exception {
        assertThat(new ProcessBuilder("mkfifo", path.toString()).inheritIO().start().waitFor()).isZero();
    }

    @Test
    void fifoIsAClearErrorNamingThePath() throws Exception {
        byte[] dir = join(bytes(tmp), "d");
        mkdir(dir);
        mkdir(join(dir, "sub"));
        write(join(dir, "sub", "ok"), "fine");
        mkfifo(tmp.resolve("d/sub/pipe"));
        assertThatThrownBy(() -> importer.importPath(dir))
                .isInstanceOf(SpecialFileException.class)
                .hasMessage("cannot import " + tmp + "/d/sub/pipe: it is a fifo (only regular files, directories and symlinks can be imported)");
        assertThatThrownBy(() -> importer.importPath(join(dir, "sub", "pipe")))
                .isInstanceOf(SpecialFileException.class).hasMessageContaining("/d/sub/pipe: it is a fifo");
    }

    @Test
    void aFileWithHolesIsStoredAsTheZerosTheyReadAsWithoutReadingThem() throws Exception {
        long size = 40L << 20;
        // Data at the start, inside a hole, across a buffer's end, and at the very end; holes between.
        long[][] pieces = {{0, 3000}, {9L << 20, 70_000}, {(16L << 20) - 5000, 10_000}, {size - 1234, 1234}};
        byte[] dense = new byte[(int) size];
        var random = new java.util.SplittableRandom(42);
        Path sparse = tmp.resolve("sparse.img");
        try (var file = java.nio.channels.FileChannel.open(sparse, java.nio.file.StandardOpenOption.CREATE_NEW,
                java.nio.file.StandardOpenOption.WRITE)) {
            for (long[] piece : pieces) {
                byte[] data = new byte[(int) piece[1]];
                random.nextBytes(data);
                System.arraycopy(data, 0, dense, (int) piece[0], data.length);
                file.write(ByteBuffer.wrap(data), piece[0]);
            }
        }
        assertThat(Files.size(sparse)).isEqualTo(size);
        Path hole = tmp.resolve("hole-first.img"); // a hole at the start, data in the middle, a hole at the end
        try (var file = new java.io.RandomAccessFile(hole.toFile(), "rw")) {
            file.seek(20L << 20);
            file.write("middle".getBytes(StandardCharsets.UTF_8));
            file.setLength(size); // extended by a hole
        }
        byte[] holeDense = new byte[(int) size];
        System.arraycopy("middle".getBytes(StandardCharsets.UTF_8), 0, holeDense, 20 << 20, 6);

        FileNode sparseNode = (FileNode) importer.importPath(bytes(sparse));
        FileNode holeNode = (FileNode) importer.importPath(bytes(hole));
        assertThat(sparseNode.size()).isEqualTo(size);
        assertThat(sparseNode.digest()).isEqualTo(Blake3.digest(dense));
        assertThat(holeNode.digest()).isEqualTo(Blake3.digest(holeDense));
        // The same bytes written out whole give the same node, and the store reads them back.
        Path whole = Files.write(tmp.resolve("dense.img"), dense);
        assertThat(new Importer(new MemoryBlobService(), new MemoryDirectoryService(), 2).importPath(bytes(whole)))
                .isEqualTo(sparseNode);
        try (var reader = blobs.open(sparseNode.digest()).orElseThrow()) {
            assertThat(Arrays.equals(reader.inputStream(0).readAllBytes(), dense)).isTrue();
        }
        // On a file system with holes (tmpfs, ext4, xfs, btrfs) they were not read.
        long dataBytes = 3000 + 70_000 + 10_000 + 1234;
        assertThat(importer.stats().holeBytes()).as("bytes taken as zeros without reading")
                .isGreaterThanOrEqualTo(2 * size - dataBytes - 6 - 8 * 4096 - (4L << 20));
    }

    @Test
    void specialFilesAreLeftOutWhenAskedEachOneHeardAndTheTreeIsAsWithoutThem() throws Exception {
        Path with = Files.createDirectories(tmp.resolve("with/sub"));
        Path without = Files.createDirectories(tmp.resolve("without/sub"));
        for (Path dir : List.of(with, without)) {
            Files.writeString(dir.resolve("ok"), "fine");
            Files.writeString(dir.getParent().resolve("top"), "top");
        }
        mkfifo(with.resolve("pipe"));
        List<String> expected = new ArrayList<>(List.of(with.resolve("pipe") + " fifo", with.getParent().resolve("sock") + " socket"));
        boolean root = "0".equals(new String(new ProcessBuilder("id", "-u").start().getInputStream().readAllBytes()).strip());
        if (root) { // a device node needs root (CI runs as root)
            assertThat(new ProcessBuilder("mknod", with.resolve("null").toString(), "c", "1", "3").inheritIO().start().waitFor()).isZero();
            expected.add(with.resolve("null") + " character device");
        }
        List<String> heard = java.util.Collections.synchronizedList(new ArrayList<>());
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(with.getParent().resolve("sock")));
            Node node = importer.skippingSpecialFiles((path, kind) -> heard.add(new String(path, StandardCharsets.UTF_8) + " " + kind))
                    .importPath(bytes(with.getParent()));
            Node plain = new Importer(new MemoryBlobService(), new MemoryDirectoryService(), 2).importPath(bytes(without.getParent()));
            assertThat(((DirectoryNode) node).digest()).isEqualTo(((DirectoryNode) plain).digest());
            assertThat(heard).containsExactlyInAnyOrderElementsOf(expected);
            // Named as the path to import, it still fails: there would be nothing to import.
            assertThatThrownBy(() -> importer.importPath(bytes(with.resolve("pipe"))))
                    .isInstanceOf(SpecialFileException.class).hasMessageContaining("/sub/pipe: it is a fifo");
        }
    }

    @Test
    void anImportThatFailsClosesItsUnfinishedClosure() throws Exception {
        byte[] dir = join(bytes(tmp), "d");
        mkdir(dir);
        mkdir(join(dir, "a"));
        write(join(dir, "a", "ok"), "fine");
        mkdir(join(dir, "b"));
        mkfifo(tmp.resolve("d/b/pipe"));
        var closed = new java.util.concurrent.atomic.AtomicInteger();
        var finished = new java.util.concurrent.atomic.AtomicInteger();
        DirectoryService watched = new StoredDirectories() { // a remote's putter holds a call open until closed
            @Override
            public castore.service.ClosurePutter putClosure() {
                var inner = new castore.service.ClosurePutter.Simple(this);
                return new castore.service.ClosurePutter() {
                    @Override
                    public void put(Directory directory) throws IOException {
                        inner.put(directory);
                    }

                    @Override
                    public B3Digest finish() throws IOException {
                        finished.incrementAndGet();
                        return inner.finish();
                    }

                    @Override
                    public void close() {
                        closed.incrementAndGet();
                    }
                };
            }
        };
        assertThatThrownBy(() -> new Importer(blobs, watched, 2).importPath(dir)).isInstanceOf(SpecialFileException.class);
        assertThat(finished).hasValue(0);
        assertThat(closed).as("the abandoned closure, closed").hasValue(1);
        write(join(dir, "b", "x"), "y");
        Files.delete(tmp.resolve("d/b/pipe"));
        new Importer(blobs, watched, 2).importPath(dir);
        assertThat(finished).hasValue(1);
        assertThat(closed).as("a finished one, closed too").hasValue(2);
    }

    @Test
    void aChainOfDirectoriesDeeperThanAStackAndPathMaxImports() throws Exception {
        int depth = 30_000; // paths of 60 KB: made and removed relative to each parent's descriptor
        Path top = tmp.resolve("deep");
        byte[] d = {'d'};
        byte[] where = bytes(top);
        castore.ingest.posix.Posix.mkdirat(castore.ingest.posix.Posix.AT_FDCWD, where, 0755, where);
        int fd = castore.ingest.posix.Posix.openat(castore.ingest.posix.Posix.AT_FDCWD, where,
                castore.ingest.posix.Posix.O_RDONLY | castore.ingest.posix.Posix.O_DIRECTORY, 0, where);
        try {
            for (int i = 0; i < depth; i++) {
                castore.ingest.posix.Posix.mkdirat(fd, d, 0755, where);
                int next = castore.ingest.posix.Posix.openat(fd, d, castore.ingest.posix.Posix.O_RDONLY
                        | castore.ingest.posix.Posix.O_DIRECTORY, 0, where);
                castore.ingest.posix.Posix.close(fd);
                fd = next;
            }
            Node node = importer.importPath(where);
            assertThat(node).isInstanceOfSatisfying(DirectoryNode.class, n -> assertThat(n.size()).isEqualTo(depth));
            synchronized (puts) {
                assertThat(puts).hasSize(depth + 1); // the empty bottom one, then each parent
            }
        } finally {
            castore.ingest.posix.Posix.close(fd);
            // rm walks relative to each directory, past PATH_MAX; JUnit's clean-up could not.
            assertThat(new ProcessBuilder("rm", "-rf", top.toString()).inheritIO().start().waitFor()).isZero();
        }
    }

    @Test
    void socketIsAClearError() throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("s"));
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(dir.resolve("sock")));
            assertThatThrownBy(() -> importer.importPath(bytes(dir)))
                    .isInstanceOf(SpecialFileException.class).hasMessageContaining(dir + "/sock: it is a socket");
        }
    }

    @Test
    void characterDeviceIsAClearError() throws Exception {
        Path dir = Files.createDirectory(tmp.resolve("dev"));
        Process p = new ProcessBuilder("mknod", dir.resolve("null").toString(), "c", "1", "3").inheritIO().start();
        org.junit.jupiter.api.Assumptions.assumeTrue(p.waitFor() == 0 || System.getenv("CI") != null, "mknod needs root");
        assertThatThrownBy(() -> importer.importPath(bytes(dir)))
                .isInstanceOf(SpecialFileException.class).hasMessageContaining(dir + "/null: it is a character device");
    }

    @Test
    void nonexistentPathNamesThePath() {
        assertThatThrownBy(() -> importer.importPath(join(bytes(tmp), "missing")))
                .isInstanceOf(PosixException.class)
                .hasMessage("cannot stat " + tmp + "/missing: No such file or directory")
                .satisfies(e -> assertThat(((PosixException) e).notFound()).isTrue());
    }

    @Test
    void nonUtf8NamesAreEscapedInMessages() throws Exception {
        byte[] dir = join(bytes(tmp), new byte[] {'x', (byte) 0xff});
        mkdir(dir);
        Process p = new ProcessBuilder("mkfifo", "p").directory(tmp.toFile()).start();
        assertThat(p.waitFor()).isZero();
        assertThatThrownBy(() -> importer.importPath(join(bytes(tmp), "p")))
                .hasMessageContaining(tmp + "/p: it is a fifo");
        write(join(dir, new byte[] {'\n', (byte) 0xfe}), "z");
        symlink(new byte[] {'\n', (byte) 0xfe}, join(bytes(tmp), "pointer"));
        assertThat(importer.importPath(join(bytes(tmp), "pointer")))
                .isEqualTo(SymlinkNode.of(new byte[] {'\n', (byte) 0xfe}));
    }
}

package castore.fs;

import static org.assertj.core.api.Assertions.assertThat;

import castore.fuse.testing.Commands;
import castore.fuse.testing.MountFixture;
import castore.ingest.Importer;
import castore.model.Name;
import castore.model.FileNode;
import castore.model.Node;
import castore.service.ChunkMeta;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Real trees of this machine imported into a local store on disk and compared through the mount. */
class ImportedTreeTest {
    /** Thousands of files (Python's library) and hundreds of symlinks (the time zone database). */
    static final List<String> SOURCES = List.of("/usr/lib/python3", "/usr/share/zoneinfo");

    @TempDir
    Path tmp;

    @Test
    void anImportedTreeReadsBackIdenticalThroughTheMount() throws Exception {
        try (Store store = Stores.open(tmp.resolve("store").toString(), StoreOptions.DEFAULT)) {
            var importer = new Importer(store.blobs(), store.directories(), 2);
            for (String source : SOURCES) {
                Node node = importer.importPath(source.getBytes(StandardCharsets.UTF_8));
                store.roots().put(Name.of(Path.of(source).getFileName().toString()), node);
            }
            assertThat(importer.stats().files()).isGreaterThan(3000);
            var fs = new CastoreFileSystem(store, FsOptions.defaults());
            try (var m = MountFixture.mount(Files.createDirectories(tmp.resolve("m")), fs)) {
                for (String source : SOURCES) {
                    assertSameTree(source, m.path(Path.of(source).getFileName().toString()).toString());
                }
            }
        }
    }

    @Test
    void aRootImportedOrRepointedByAnotherProcessShowsAfterTheRootTtl() throws Exception {
        String store = tmp.resolve("store").toString();
        Path first = Files.createDirectories(tmp.resolve("v1/sub"));
        Files.writeString(first.resolve("version"), "1\n");
        Path second = Files.createDirectories(tmp.resolve("v2/sub"));
        Files.writeString(second.resolve("version"), "2\n");
        Files.writeString(second.resolve("added"), "new in 2\n");
        importInAnotherProcess(store, "/usr/share/zoneinfo", "zoneinfo");

        try (Store opened = Stores.open(store, StoreOptions.DEFAULT.withReadOnly(true))) {
            var fs = new CastoreFileSystem(opened, FsOptions.defaults().withRootTtl(Duration.ofMillis(300)));
            try (var m = MountFixture.mount(Files.createDirectories(tmp.resolve("m")), fs)) {
                String app = m.path("app").toString();
                assertThat(Commands.run("ls", app).stderr()).contains("No such file or directory");

                importInAnotherProcess(store, tmp.resolve("v1").toString(), "app");
                MountTest.eventually("the imported root appears", () -> Commands.run("diff", "-r", tmp.resolve("v1").toString(), app).ok());

                importInAnotherProcess(store, tmp.resolve("v2").toString(), "app");
                MountTest.eventually("the re-pointed root shows the new tree",
                        () -> Commands.run("diff", "-r", tmp.resolve("v2").toString(), app).ok());
                assertSameTree("/usr/share/zoneinfo", m.path("zoneinfo").toString());
            }
        }
    }

    @Test
    void aFileOfManyRealChunksReadsWholeAndAcrossEveryChunkBoundary() throws Exception {
        byte[] data = new byte[9 * 1024 * 1024 + 333];
        new SplittableRandom(21).nextBytes(data);
        Path source = Files.write(tmp.resolve("big.bin"), data);
        try (Store store = Stores.open(tmp.resolve("store").toString(), StoreOptions.DEFAULT)) {
            List<ChunkMeta> chunks = importAsRoot(store, source, "big.bin");
            assertThat(chunks).as("FastCDC chunks of at most 512 KiB").hasSizeGreaterThan(10);

            var fs = new CastoreFileSystem(store, FsOptions.defaults());
            try (var m = MountFixture.mount(Files.createDirectories(tmp.resolve("m")), fs)) {
                // Cold, so every read reaches the filesystem: a read straddling each chunk boundary.
                var random = new SplittableRandom(8);
                try (var in = FileChannel.open(m.path("big.bin"))) {
                    long boundary = 0;
                    for (ChunkMeta chunk : chunks) {
                        boundary += chunk.size();
                        assertReadsAt(in, data, Math.max(0, boundary - random.nextInt(1, 70_000)), random.nextInt(1, 140_000));
                    }
                }
                Commands.run("cmp", source.toString(), m.path("big.bin").toString()).assertOk();
            }
        }
    }

    @Test
    void aMostlyZeroImageWhoseChunksRepeatReadsBackIdenticalAtEveryPlace() throws Exception {
        // A disk image's shape: data, zeros (one 512 KiB chunk listed over and over), data, zeros, data.
        int mib = 1024 * 1024;
        byte[] data = new byte[40 * mib + 4321];
        var random = new SplittableRandom(22);
        for (int at : new int[] {0, 17 * mib + 5, 40 * mib - 3 * mib}) {
            byte[] part = new byte[3 * mib];
            random.nextBytes(part);
            System.arraycopy(part, 0, data, at, Math.min(part.length, data.length - at));
        }
        Path source = Files.write(tmp.resolve("disk.img"), data);
        try (Store store = Stores.open(tmp.resolve("store").toString(), StoreOptions.DEFAULT)) {
            List<ChunkMeta> chunks = importAsRoot(store, source, "disk.img");
            assertThat(chunks.stream().map(ChunkMeta::digest).distinct().count()).as("zero chunks listed many times")
                    .isLessThan(chunks.size() - 40);
        }
        // Published, and opened as a mount opens its store: direct streams, which must not read ahead into the repeats.
        try (Store store = Stores.open(tmp.resolve("store").toString(), StoreOptions.DEFAULT.withDirectReads(true))) {
            var fs = new CastoreFileSystem(store, FsOptions.defaults());
            try (var m = MountFixture.mount(Files.createDirectories(tmp.resolve("m")), fs)) {
                // Cold random reads first (each reaches the filesystem; the rest of a chunk goes to the kernel), then whole.
                try (var in = FileChannel.open(m.path("disk.img"))) {
                    for (int i = 0; i < 300; i++) {
                        assertReadsAt(in, data, random.nextLong(data.length), random.nextInt(1, 300_000));
                    }
                }
                Commands.run("cmp", source.toString(), m.path("disk.img").toString()).assertOk();
            }
            try (var m = MountFixture.mount(Files.createDirectories(tmp.resolve("m2")), new CastoreFileSystem(store, FsOptions.defaults()))) {
                Commands.run("cmp", source.toString(), m.path("disk.img").toString()).assertOk(); // a sequential reader first
            }
        }
    }

    /** Imports the file {@code source} as root {@code name}; its chunk list. */
    static List<ChunkMeta> importAsRoot(Store store, Path source, String name) throws java.io.IOException {
        var file = (FileNode) new Importer(store.blobs(), store.directories(), 1)
                .importPath(source.toString().getBytes(StandardCharsets.UTF_8));
        store.roots().put(Name.of(name), file);
        return store.blobs().chunks(file.digest()).orElseThrow();
    }

    /** Reads {@code size} bytes at {@code offset} (fewer at the end) and compares them with the source. */
    static void assertReadsAt(FileChannel in, byte[] data, long offset, int size) throws java.io.IOException {
        ByteBuffer buffer = ByteBuffer.allocate(size);
        int n = in.read(buffer, offset);
        assertThat(n).isEqualTo((int) Math.min(size, data.length - offset));
        assertThat(Arrays.equals(buffer.array(), 0, n, data, (int) offset, (int) offset + n)).as("bytes at %d", offset).isTrue();
    }

    static void importInAnotherProcess(String store, String source, String name) {
        Commands.run(ProcessHandle.current().info().command().orElse("java"), "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), ImportMain.class.getName(), store, source, name).assertOk();
    }

    static void assertSameTree(String source, String mounted) {
        Commands.run("diff", "-r", "--no-dereference", source, mounted).assertOk();
        assertThat(listing(mounted)).isEqualTo(listing(source));
        assertThat(executables(mounted)).isEqualTo(executables(source));
    }

    /** Every entry's type, path and symlink target, sorted. */
    static String listing(String root) {
        return Commands.run("sh", "-c", "cd " + root + " && find . -printf '%y %p %l\\n' | LC_ALL=C sort").assertOk().stdout();
    }

    static String executables(String root) {
        return Commands.run("sh", "-c", "cd " + root + " && find . -type f -perm -u+x | LC_ALL=C sort").assertOk().stdout();
    }
}

package castore.ingest;

import static castore.ingest.RawTree.bytes;
import static castore.ingest.RawTree.join;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.hash.Blake3;
import castore.ingest.posix.PosixException;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.SymlinkNode;
import castore.service.BlobWriter;
import castore.service.NotFoundException;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import castore.service.BlobReader;
import castore.service.BlobService;
import castore.service.ForwardingBlobService;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ExporterTest {
    @TempDir
    Path tmp;

    final MemoryBlobService blobs = new MemoryBlobService();
    final MemoryDirectoryService directories = new MemoryDirectoryService();
    final Exporter exporter = new Exporter(blobs, directories, 2);

    private FileNode store(String content, boolean executable) throws IOException {
        byte[] bytes = content.getBytes(StandardCharsets.UTF_8);
        try (BlobWriter w = blobs.create()) {
            w.write(bytes, 0, bytes.length);
            return new FileNode(w.finish(), bytes.length, executable);
        }
    }

    /**
     * A directory's small files are announced to the store in groups of at most 32 MiB before
     * they are written (BlobService.fetchAhead: over a daemon, one request per group instead of
     * one per file); big and empty files are not among them, and every file is written whole.
     */
    @Test
    void smallFilesAreAnnouncedInGroupsBeforeTheyAreWritten() throws IOException {
        Directory.Builder dir = Directory.builder();
        java.util.Map<String, byte[]> contents = new java.util.HashMap<>();
        Random random = new Random(8);
        for (int i = 0; i < 100; i++) {
            byte[] data = new byte[500 * 1024 - i];
            random.nextBytes(data);
            contents.put(String.format("s%03d", i), data);
        }
        byte[] bigContent = new byte[600 * 1024];
        random.nextBytes(bigContent);
        contents.put("big", bigContent);
        contents.put("empty", new byte[0]);
        for (var e : contents.entrySet()) {
            try (BlobWriter w = blobs.create()) {
                w.write(e.getValue(), 0, e.getValue().length);
                dir.add(e.getKey(), new FileNode(w.finish(), e.getValue().length, false));
            }
        }
        Directory d = dir.build();
        directories.put(d);
        List<List<castore.service.ChunkMeta>> groups = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        BlobService announcing = new ForwardingBlobService(blobs) {
            @Override
            public void fetchAhead(List<castore.service.ChunkMeta> ahead) {
                groups.add(ahead);
            }
        };
        new Exporter(announcing, directories, 2).export(d.toNode(), join(bytes(tmp), "out"));
        assertThat(groups).extracting(List::size).containsExactly(65, 35);
        assertThat(groups).allSatisfy(g -> assertThat(g.stream().mapToLong(castore.service.ChunkMeta::size).sum()).isLessThanOrEqualTo(32 << 20));
        assertThat(groups.stream().flatMap(List::stream).map(castore.service.ChunkMeta::size))
                .allSatisfy(size -> assertThat(size).isBetween(1L, 512L * 1024));
        for (var e : contents.entrySet()) {
            assertThat(Files.readAllBytes(tmp.resolve("out").resolve(e.getKey()))).as(e.getKey()).isEqualTo(e.getValue());
        }
    }

    @Test
    void fileAndSymlinkRoots() throws IOException {
        exporter.export(store("hello", true), bytes(tmp.resolve("f")));
        assertThat(Files.readString(tmp.resolve("f"))).isEqualTo("hello");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(tmp.resolve("f")))).isEqualTo("rwxr-xr-x");
        exporter.export(SymlinkNode.of("../somewhere"), bytes(tmp.resolve("l")));
        assertThat(Files.readSymbolicLink(tmp.resolve("l"))).isEqualTo(Path.of("../somewhere"));
        assertThat(exporter.stats()).isEqualTo(new ExportStats(1, 0, 1, 5));
    }

    @Test
    void destinationThatExistsIsRefusedAndLeftAlone() throws IOException {
        Files.writeString(tmp.resolve("taken"), "mine");
        assertThatThrownBy(() -> exporter.export(store("x", false), bytes(tmp.resolve("taken"))))
                .isInstanceOf(PosixException.class).hasMessage("cannot create " + tmp + "/taken: File exists");
        assertThatThrownBy(() -> exporter.export(new DirectoryNode(Directory.empty().digest(), 0), bytes(tmp)))
                .isInstanceOf(PosixException.class).hasMessage("cannot create directory " + tmp + ": File exists");
        assertThat(Files.readString(tmp.resolve("taken"))).isEqualTo("mine");
    }

    @Test
    void missingBlobAndDirectoryNameThePath() throws IOException {
        B3Digest absent = Blake3.digest("absent".getBytes(StandardCharsets.UTF_8));
        Directory sub = Directory.builder().add("gone", new FileNode(absent, 6, false)).build();
        directories.put(sub);
        Directory top = Directory.builder().add("sub", new DirectoryNode(sub.digest(), sub.size())).build();
        directories.put(top);
        byte[] dest = bytes(tmp.resolve("out"));
        assertThatThrownBy(() -> exporter.export(new DirectoryNode(top.digest(), top.size()), dest))
                .isInstanceOf(NotFoundException.class)
                .hasMessage("blob " + absent + " (for " + tmp + "/out/sub/gone) is not in the store");

        B3Digest missingDir = Blake3.digest("no such directory".getBytes(StandardCharsets.UTF_8));
        assertThatThrownBy(() -> exporter.export(new DirectoryNode(missingDir, 3), join(bytes(tmp), "out2")))
                .isInstanceOf(NotFoundException.class)
                .hasMessage("directory " + missingDir + " (for " + tmp + "/out2) is not in the store");
    }

    private FileNode store(byte[] bytes) throws IOException {
        try (BlobWriter w = blobs.create()) {
            w.write(bytes, 0, bytes.length);
            return new FileNode(w.finish(), bytes.length, false);
        }
    }

    /** Bytes the file takes on disk (st_blocks), from stat(1): java.nio does not give them. */
    private static long allocated(Path file) throws Exception {
        Process p = new ProcessBuilder("stat", "-c", "%b %B", file.toString()).redirectErrorStream(true).start();
        String[] out = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).trim().split(" ");
        assertThat(p.waitFor()).isZero();
        return Long.parseLong(out[0]) * Long.parseLong(out[1]);
    }

    /** Random bytes, 3 MiB of zeros, random bytes, 2 MiB of zeros at the end: 5 MiB of holes to make. */
    /** A stored directory of "big", a file of {@code data}, and "small": what a stalling or failing reader is tried on. */
    private Directory bigAndSmall(byte[] data) throws IOException {
        Directory top = Directory.builder().add("big", store(data)).add("small", store("done", false)).build();
        directories.put(top);
        return top;
    }

    private static byte[] mostlyZeros() {
        byte[] data = new byte[5000 + (3 << 20) + 100 + (2 << 20)];
        Random random = new Random(7);
        byte[] head = new byte[5000];
        random.nextBytes(head);
        System.arraycopy(head, 0, data, 0, head.length);
        byte[] middle = new byte[100];
        random.nextBytes(middle);
        System.arraycopy(middle, 0, data, 5000 + (3 << 20), middle.length);
        return data;
    }

    @Test
    void blocksOfZerosBecomeHolesAndReadBackTheSame() throws Exception {
        byte[] data = mostlyZeros();
        exporter.export(store(data), bytes(tmp.resolve("image")));
        assertThat(Files.readAllBytes(tmp.resolve("image"))).isEqualTo(data); // also the size: the hole at the end counts
        // Data in 3 or 4 blocks (the head spans two), plus what the file system may keep for the file.
        assertThat(allocated(tmp.resolve("image"))).isLessThan(64 << 10);
        assertThat(exporter.stats().bytesWritten()).isEqualTo(data.length);

        // A file with no zero block at all is written as before.
        byte[] random = new byte[3 << 20];
        new Random(8).nextBytes(random);
        exporter.export(store(random), bytes(tmp.resolve("random")));
        assertThat(Files.readAllBytes(tmp.resolve("random"))).isEqualTo(random);
        assertThat(allocated(tmp.resolve("random"))).isGreaterThanOrEqualTo(random.length);
    }

    @Test
    void holesStayWhereTheyAreWhenTheReaderStopsAtChunkEnds() throws Exception {
        byte[] data = mostlyZeros();
        FileNode image = store(data);
        // Reads that end every 100,000 bytes, at no multiple of 4 KiB, as a chunked store's may.
        BlobService shortReads = readingThrough((reader, position, dst) -> {
            long end = Math.min(reader.size(), (position / 100_000 + 1) * 100_000);
            ByteBuffer piece = dst.slice(dst.position(), (int) Math.min(dst.remaining(), end - position));
            int n = reader.read(position, piece);
            dst.position(dst.position() + Math.max(n, 0));
            return n;
        });
        new Exporter(shortReads, directories, 1).export(image, bytes(tmp.resolve("image")));
        assertThat(Files.readAllBytes(tmp.resolve("image"))).isEqualTo(data);
        assertThat(allocated(tmp.resolve("image"))).isLessThan(64 << 10);
    }

    @Test
    void noSparseWritesEveryBlock() throws Exception {
        byte[] data = mostlyZeros();
        new Exporter(blobs, directories, 2, false).export(store(data), bytes(tmp.resolve("image")));
        assertThat(Files.readAllBytes(tmp.resolve("image"))).isEqualTo(data);
        assertThat(allocated(tmp.resolve("image"))).isGreaterThanOrEqualTo(data.length);
    }

    @Test
    void aFileThatFailsPartWayIsRemoved() throws Exception {
        byte[] data = new byte[3 << 20];
        new Random(9).nextBytes(data);
        Directory top = bigAndSmall(data);
        // A store whose reader of the big blob fails after its first MiB (a remote gone, a bad chunk).
        BlobService failing = readingThrough((reader, position, dst) -> {
            if (reader.size() == data.length && position > 0) {
                throw new IOException("the store went away");
            }
            return reader.read(position, dst);
        });
        Exporter failingExporter = new Exporter(failing, directories, 1);
        assertThatThrownBy(() -> failingExporter.export(new DirectoryNode(top.digest(), top.size()), bytes(tmp.resolve("out"))))
                .hasMessage("the store went away");
        assertThat(tmp.resolve("out")).isDirectory();
        assertThat(tmp.resolve("out/big")).doesNotExist();

        // A file root too.
        assertThatThrownBy(() -> failingExporter.export(store(data), bytes(tmp.resolve("alone")))).hasMessage("the store went away");
        assertThat(tmp.resolve("alone")).doesNotExist();
    }

    @Test
    void filesBeingWrittenWhenTheExportIsStoppedAreRemoved() throws Exception {
        byte[] data = new byte[3 << 20];
        new Random(10).nextBytes(data);
        Directory top = bigAndSmall(data);
        java.util.concurrent.CountDownLatch midWay = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        // The big blob's reader stops after its first MiB, as a slow store would, until released.
        BlobService slow = readingThrough((reader, position, dst) -> {
            if (reader.size() == data.length && position > 0) {
                midWay.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    throw new java.io.InterruptedIOException();
                }
            }
            return reader.read(position, dst);
        });
        Exporter exporter = new Exporter(slow, directories, 2);
        var done = java.util.concurrent.Executors.newSingleThreadExecutor();
        try {
            var export = done.submit(() -> {
                exporter.export(new DirectoryNode(top.digest(), top.size()), bytes(tmp.resolve("out")));
                return null;
            });
            assertThat(midWay.await(30, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
            assertThat(Files.size(tmp.resolve("out/big"))).isGreaterThan(0);
            // What the shutdown hook runs when SIGINT or SIGTERM stops the JVM here.
            exporter.abandonUnfinished();
            assertThat(tmp.resolve("out/big")).doesNotExist();
            release.countDown();
            try {
                export.get(30, java.util.concurrent.TimeUnit.SECONDS); // the JVM would be gone; here it just ends
            } catch (java.util.concurrent.ExecutionException e) {
                // "small" had not been started when the hook ran: it is refused, not created after it.
                assertThat(e.getCause()).hasMessageContaining("the export was stopped before");
            }
            assertThat(tmp.resolve("out/big")).doesNotExist();
            if (Files.exists(tmp.resolve("out/small"))) {
                assertThat(Files.readString(tmp.resolve("out/small"))).isEqualTo("done"); // finished before the hook
            }
        } finally {
            release.countDown();
            done.shutdownNow();
        }
    }

    /** How a test reader reads: through the real one, changed. */
    private interface Read {
        int read(BlobReader real, long position, ByteBuffer dst) throws IOException;
    }

    /** This test's blobs, each read through {@code read}. */
    private BlobService readingThrough(Read read) {
        return new ForwardingBlobService(blobs) {
            @Override
            public Optional<BlobReader> open(B3Digest digest) throws IOException {
                Optional<BlobReader> opened = inner.open(digest);
                if (opened.isEmpty()) {
                    return opened;
                }
                BlobReader real = opened.get();
                return Optional.of(new BlobReader() {
                    @Override
                    public long size() {
                        return real.size();
                    }

                    @Override
                    public int read(long position, ByteBuffer dst) throws IOException {
                        return read.read(real, position, dst);
                    }
                });
            }
        };
    }
}

package castore.ingest;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.Node;
import castore.model.SymlinkNode;
import castore.service.BlobReader;
import castore.service.BlobService;
import castore.service.BlobWriter;
import castore.service.ChunkMeta;
import castore.service.CorruptedDataException;
import castore.service.DirectoryService;
import castore.service.ForwardingBlobService;
import castore.service.ForwardingDirectoryService;
import castore.service.NotFoundException;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class CopierTest {
    final MemoryBlobService sourceBlobs = new MemoryBlobService();
    final MemoryDirectoryService sourceDirectories = new MemoryDirectoryService();
    final MemoryBlobService destBlobs = new MemoryBlobService();
    final MemoryDirectoryService destDirectories = new MemoryDirectoryService();
    final SplittableRandom random = new SplittableRandom(11);
    /** Every blob stored in the source, by digest. */
    final Map<B3Digest, byte[]> contents = new HashMap<>();

    private FileNode file(byte[] data, boolean executable) throws IOException {
        try (BlobWriter w = sourceBlobs.create()) {
            w.write(data, 0, data.length);
            B3Digest digest = w.finish();
            contents.put(digest, data);
            return new FileNode(digest, data.length, executable);
        }
    }

    private FileNode randomFile(int size) throws IOException {
        byte[] data = new byte[size];
        random.nextBytes(data);
        return file(data, false);
    }

    private DirectoryNode directory(Directory d) throws IOException {
        sourceDirectories.put(d);
        return d.toNode();
    }

    /** lib: 30 small files, a 3 MiB one and a subdirectory; bin: an executable, a symlink, an empty file; a file twice. */
    private DirectoryNode lib() throws IOException {
        Directory.Builder lib = Directory.builder();
        for (int i = 0; i < 30; i++) {
            lib.add("f" + i, randomFile(random.nextInt(1, 20_000)));
        }
        lib.add("big", randomFile(3 << 20));
        lib.add("deep", directory(Directory.builder().add("x", randomFile(700_000)).add("same", file("twice".getBytes(), false)).build()));
        return directory(lib.build());
    }

    private DirectoryNode bin(String tool) throws IOException {
        return directory(Directory.builder()
                .add("tool", file(tool.getBytes(), true))
                .add("link", SymlinkNode.of("../lib/f1"))
                .add("empty", file(new byte[0], false))
                .add("same", file("twice".getBytes(), false))
                .build());
    }

    private DirectoryNode tree(DirectoryNode lib, DirectoryNode bin) throws IOException {
        return directory(Directory.builder().add("lib", lib).add("bin", bin).add("README", file("readme".getBytes(), false)).build());
    }

    private Copier copier(BlobService toBlobs, DirectoryService toDirectories) {
        return new Copier(sourceBlobs, sourceDirectories, toBlobs, toDirectories, 3);
    }

    /** {@code directories}, recording the digest of every Directory put, taking stored children or wanting whole closures (tvix). */
    private static DirectoryService recordingPuts(MemoryDirectoryService directories, List<B3Digest> put, boolean acceptsStoredChildren) {
        return new ForwardingDirectoryService(directories) {
            @Override
            public B3Digest put(Directory directory) throws IOException {
                put.add(directory.digest());
                return super.put(directory);
            }

            @Override
            public boolean acceptsStoredChildren() {
                return acceptsStoredChildren;
            }
        };
    }

    /** {@code blobs}, recording every digest asked about with has. */
    private static BlobService recordingHas(BlobService blobs, List<B3Digest> asked) {
        return new ForwardingBlobService(blobs) {
            @Override
            public boolean has(B3Digest digest) throws IOException {
                asked.add(digest);
                return super.has(digest);
            }
        };
    }

    private static byte[] read(BlobService blobs, FileNode file) throws IOException {
        try (BlobReader reader = blobs.open(file.digest()).orElseThrow()) {
            ByteBuffer data = ByteBuffer.allocate((int) reader.size());
            while (data.hasRemaining() && reader.read(data.position(), data) >= 0) {
            }
            return data.array();
        }
    }

    /** Every Directory and every file's bytes of {@code top} are in the destination, as in the source. */
    private void assertCopied(DirectoryNode top) throws IOException {
        List<Directory> all;
        try (var stream = sourceDirectories.getRecursive(top.digest())) {
            all = stream.toList();
        }
        for (Directory d : all) {
            assertThat(destDirectories.get(d.digest())).contains(d);
            for (Node node : d.entries().values()) {
                if (node instanceof FileNode f) {
                    assertThat(read(destBlobs, f)).isEqualTo(contents.get(f.digest()));
                }
            }
        }
    }

    @Test
    void aTreeArrivesWholeUnderTheSameDigests() throws IOException {
        DirectoryNode top = tree(lib(), bin("v1"));
        Copier copier = copier(destBlobs, destDirectories);
        copier.copy(top, "t");
        assertCopied(top);
        CopyStats stats = copier.stats();
        // t, lib, lib/deep, bin; 30 + big + x + same ("twice", in two places) + tool + empty + README.
        assertThat(stats.directories()).isEqualTo(4);
        assertThat(stats.directoriesSent()).isEqualTo(4);
        assertThat(stats.blobs()).isEqualTo(36);
        assertThat(stats.blobsToSend()).isEqualTo(36);
        assertThat(stats.blobsSent()).isEqualTo(36);
        long bytes = contents.values().stream().mapToLong(b -> b.length).sum();
        assertThat(stats.bytesToSend()).isEqualTo(bytes);
        assertThat(stats.bytesSent()).isEqualTo(bytes);
        assertThat(stats.bytesStored()).isEqualTo(bytes);
    }

    /**
     * A Directory that is a child of the top and also a grandchild through a sibling is put
     * before both: children first, also where a breadth-first order meets it first at the top.
     * Before session 38 the copy put the sibling first and every destination refused it ("refers
     * to ..., which is not stored"), as a copy of the bench tree to a new local store did.
     */
    @Test
    void identicalSubtreesAtTwoDepthsArePutChildrenFirst() throws IOException {
        DirectoryNode shared = directory(Directory.builder().add("f", file("shared".getBytes(), false)).build());
        DirectoryNode sibling = directory(Directory.builder().add("again", shared).add("g", file("sibling".getBytes(), false)).build());
        // "a" sorts before "b": breadth-first meets the shared Directory first, at the top.
        DirectoryNode top = directory(Directory.builder().add("a", shared).add("b", sibling).build());
        for (boolean whole : new boolean[] {false, true}) {
            List<B3Digest> put = new ArrayList<>();
            // A memory service refuses a Directory whose children are not stored.
            copier(destBlobs, recordingPuts(new MemoryDirectoryService(), put, !whole)).copy(top, "t");
            assertThat(put).as(whole ? "whole closure" : "incremental").containsExactly(shared.digest(), sibling.digest(), top.digest());
        }
    }

    @Test
    void aTreeCopiedAgainCostsOneQuestion() throws IOException {
        DirectoryNode top = tree(lib(), bin("v1"));
        copier(destBlobs, destDirectories).copy(top, "t");
        List<B3Digest> asked = Collections.synchronizedList(new ArrayList<>());
        Copier again = copier(recordingHas(destBlobs, asked), destDirectories);
        again.copy(top, "t");
        assertThat(again.stats()).isEqualTo(new CopyStats(1, 0, 0, 0, 0, 0, 0, 0));
        assertThat(asked).isEmpty();
    }

    /** A new version of a tree sends the Directories and blobs that changed; what it shares is not even asked about. */
    @Test
    void aNewVersionSendsOnlyWhatChanged() throws IOException {
        DirectoryNode lib = lib();
        DirectoryNode v1 = tree(lib, bin("v1"));
        copier(destBlobs, destDirectories).copy(v1, "t");
        DirectoryNode v2 = tree(lib, bin("v2"));
        List<B3Digest> asked = Collections.synchronizedList(new ArrayList<>());
        Copier copier = copier(recordingHas(destBlobs, asked), destDirectories);
        copier.copy(v2, "t");
        assertCopied(v2);
        CopyStats stats = copier.stats();
        assertThat(stats.directories()).isEqualTo(3); // t, bin, and lib found there
        assertThat(stats.directoriesSent()).isEqualTo(2);
        assertThat(stats.blobs()).isEqualTo(4); // tool, empty, same, README
        assertThat(stats.blobsSent()).isEqualTo(1);
        assertThat(stats.bytesSent()).isEqualTo(2);
        assertThat(asked).hasSize(4);
    }

    /** A tvix server wants the whole closure in every put: it gets it, stored parts too, and only the blobs it lacks. */
    @Test
    void aDestinationThatWantsWholeClosuresGetsThem() throws IOException {
        DirectoryNode lib = lib();
        copier(destBlobs, destDirectories).copy(lib, "lib");
        DirectoryNode top = tree(lib, bin("v1"));
        List<B3Digest> put = new ArrayList<>();
        Copier copier = copier(destBlobs, recordingPuts(destDirectories, put, false));
        copier.copy(top, "t");
        assertCopied(top);
        assertThat(put).hasSize(4).last().isEqualTo(top.digest());
        assertThat(copier.stats().directoriesSent()).isEqualTo(4);
        assertThat(copier.stats().blobsSent()).isEqualTo(3); // tool, empty, README: not "same", which lib/deep holds
    }

    @Test
    void aBlobMissingFromTheSourceFailsNamingItsPathAndLeavesTheTreeOut() throws IOException {
        byte[] never = "never stored".getBytes();
        DirectoryNode lib = directory(Directory.builder()
                .add("here", randomFile(100))
                .add("gone", new FileNode(Blake3.digest(never), never.length, false))
                .build());
        DirectoryNode top = directory(Directory.builder().add("lib", lib).build());
        assertThatThrownBy(() -> copier(destBlobs, destDirectories).copy(top, "t"))
                .isInstanceOf(NotFoundException.class)
                .hasMessageContaining("t/lib/gone").hasMessageContaining("not in the source store");
        assertThat(destDirectories.count()).isZero();
    }

    @Test
    void aLargeBlobMissingFromTheSourceFailsNamingItsPath() throws IOException {
        byte[] never = new byte[2 << 20];
        DirectoryNode top = directory(Directory.builder()
                .add("gone", new FileNode(Blake3.digest(never), never.length, false)).build());
        assertThatThrownBy(() -> copier(destBlobs, destDirectories).copy(top, "t"))
                .isInstanceOf(NotFoundException.class).hasMessageContaining("t/gone");
        assertThat(destDirectories.count()).isZero();
    }

    @Test
    void aDirectoryMissingFromTheSourceIsNotFoundAndNothingIsStored() throws IOException {
        DirectoryNode lib = lib();
        DirectoryNode top = tree(lib, bin("v1"));
        DirectoryService lacksLib = new DirectoryService() {
            @Override
            public Optional<Directory> get(B3Digest digest) throws IOException {
                return digest.equals(lib.digest()) ? Optional.empty() : sourceDirectories.get(digest);
            }

            @Override
            public boolean has(B3Digest digest) {
                return !digest.equals(lib.digest()) && sourceDirectories.has(digest);
            }

            @Override
            public B3Digest put(Directory directory) {
                throw new UnsupportedOperationException();
            }
        };
        Copier copier = new Copier(sourceBlobs, lacksLib, destBlobs, destDirectories, 2);
        assertThatThrownBy(() -> copier.copy(top, "t")).isInstanceOf(NotFoundException.class)
                .hasMessageContaining(lib.digest().toString());
        assertThat(destDirectories.count()).isZero();
    }

    /** A source whose reader gives other bytes than its digest's is caught by the hash the destination computes. */
    @Test
    void bytesThatAreNotTheBlobAreRefusedNamingThePath() throws IOException {
        FileNode big = randomFile(2 << 20);
        DirectoryNode top = directory(Directory.builder().add("big", big).build());
        BlobService lying = new ForwardingBlobService(sourceBlobs) {
            @Override
            public Optional<BlobReader> open(B3Digest digest) throws IOException {
                byte[] other = contents.get(digest).clone();
                other[12345] ^= 1;
                return Optional.of(new BlobReader() {
                    @Override
                    public long size() {
                        return other.length;
                    }

                    @Override
                    public int read(long position, ByteBuffer dst) {
                        int n = (int) Math.min(dst.remaining(), other.length - position);
                        dst.put(other, (int) position, n);
                        return n;
                    }
                });
            }
        };
        Copier copier = new Copier(lying, sourceDirectories, destBlobs, destDirectories, 2);
        assertThatThrownBy(() -> copier.copy(top, "t")).isInstanceOf(CorruptedDataException.class)
                .hasMessageContaining("t/big").hasMessageContaining(big.digest().toString());
        assertThat(destDirectories.count()).isZero();
    }

    /** readBlobs may leave blobs out (a tvix server has no such call): those are read one by one. */
    @Test
    void smallBlobsLeftOutOfABatchAreReadAlone() throws IOException {
        DirectoryNode top = tree(lib(), bin("v1"));
        List<Integer> batches = Collections.synchronizedList(new ArrayList<>());
        BlobService noBatches = new ForwardingBlobService(sourceBlobs) {
            @Override
            public Map<B3Digest, byte[]> readBlobs(List<ChunkMeta> blobs) {
                batches.add(blobs.size());
                return Map.of();
            }
        };
        new Copier(noBatches, sourceDirectories, destBlobs, destDirectories, 2).copy(top, "t");
        assertCopied(top);
        assertThat(batches).isNotEmpty();
        assertThat(batches.stream().mapToInt(Integer::intValue).sum()).isEqualTo(34); // all but big and x (over 512 KiB)
    }

    @Test
    void aFileRootCopiesItsBlobAndASymlinkRootNothing() throws IOException {
        FileNode f = randomFile(5000);
        Copier copier = copier(destBlobs, destDirectories);
        copier.copy(f, "f");
        copier.copy(SymlinkNode.of("anywhere"), "s");
        assertThat(read(destBlobs, f)).isEqualTo(contents.get(f.digest()));
        assertThat(copier.stats()).isEqualTo(new CopyStats(0, 0, 1, 1, 1, 5000, 5000, 5000));
    }

    /** A failing destination: the error comes out, and the closure is never finished. */
    @Test
    void aDestinationThatFailsToStoreAFailsTheCopy() throws IOException {
        DirectoryNode top = tree(lib(), bin("v1"));
        BlobService full = new ForwardingBlobService(destBlobs) {
            @Override
            public BlobWriter createDeferred() throws IOException {
                throw new IOException("no space left on device");
            }
        };
        assertThatThrownBy(() -> copier(full, destDirectories).copy(top, "t")).isInstanceOf(IOException.class)
                .hasMessage("no space left on device");
        assertThat(destDirectories.count()).isZero(); // Directories go only once every blob is stored
    }
}

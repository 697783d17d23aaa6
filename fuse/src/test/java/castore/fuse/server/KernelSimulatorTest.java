package castore.fuse.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.fuse.api.AttrReply;
import castore.fuse.api.BackingFiles;
import castore.fuse.api.DirectorySink;
import castore.fuse.api.Entry;
import castore.fuse.api.Errno;
import castore.fuse.api.FileSystem;
import castore.fuse.api.FuseException;
import castore.fuse.api.InitInfo;
import castore.fuse.api.KernelCache;
import castore.fuse.api.OpenReply;
import castore.fuse.api.Request;
import castore.fuse.api.StatFs;
import castore.fuse.api.Operation;
import castore.fuse.testing.MemoryFileSystem;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The in-process kernel: requests encoded as the kernel does, replies decoded, bookkeeping kept. */
class KernelSimulatorTest {
    private static final int FILES = 300;

    private final byte[] big = new byte[200_000];
    private final java.util.List<KernelSimulator> started = new java.util.ArrayList<>();
    private final MemoryFileSystem fs;

    KernelSimulatorTest() {
        new Random(1).nextBytes(big);
        var builder = MemoryFileSystem.builder()
                .file("big.bin", big)
                .symlink("link", "big.bin")
                .xattr("big.bin", "user.digest", "b3:abc".getBytes(StandardCharsets.UTF_8))
                .offload(Operation.READ); // replies from another thread, as slow reads are
        for (int i = 0; i < FILES; i++) {
            builder.file("many/a-rather-long-file-name-so-that-one-buffer-cannot-hold-them-all-" + i, "x" + i);
        }
        fs = builder.build();
    }

    private KernelSimulator start(FileSystem filesystem, int maxWrite) throws Exception {
        KernelSimulator kernel = KernelSimulator.start(filesystem, maxWrite);
        started.add(kernel);
        return kernel;
    }

    @AfterEach
    void closeSimulators() {
        started.forEach(KernelSimulator::close);
    }

    @Test
    void listsADirectoryAcrossManyBuffersAndGivesEveryLookupBack() throws Exception {
        var kernel = start(fs, 1 << 20);
        long many = kernel.lookup(1, "many");
        assertThat(many).isEqualTo(fs.nodeId("many"));

        List<Long> found = kernel.readDirectoryPlus(many, 4096);
        assertThat(fs.openHandles()).as("RELEASEDIR sent").isZero();
        assertThat(found).hasSize(FILES);
        assertThat(new HashSet<>(found)).hasSize(FILES).doesNotContain(many, 1L);
        assertThat(kernel.readDirectory(many, 4096)).as("children plus . and ..").isEqualTo(FILES + 2);
        assertThat(fs.lookupCount(found.get(7))).isEqualTo(1);

        long[] nodes = found.stream().mapToLong(Long::longValue).toArray();
        long[] counts = new long[nodes.length];
        java.util.Arrays.fill(counts, 1);
        kernel.batchForget(nodes, counts);
        kernel.forget(many, 1);
        assertThat(fs.totalLookupCount()).isZero();
    }

    @Test
    void readsWholeFilesAndAtOffsetsThenReleasesTheHandle() throws Exception {
        var kernel = start(fs, 1 << 16);
        long file = kernel.lookup(1, "big.bin");
        assertThat(kernel.readFile(file, 1 << 20)).as("capped at max_write, read to the end").isEqualTo(big.length);
        assertThat(fs.calls(Operation.READ)).isEqualTo(4); // 3 x 64 KiB, then the rest
        kernel.readAt(file, new long[] {0, 70_000, 199_999}, 4096);
        assertThat(fs.calls(Operation.READ)).isEqualTo(7);
        assertThat(fs.openHandles()).isZero();
        assertThat(new String(kernel.readlink(kernel.lookup(1, "link")), StandardCharsets.UTF_8)).isEqualTo("big.bin");
        assertThat(kernel.getattr(file)).hasSize(104);
    }

    @Test
    void missingNamesAreZeroAndOtherErrorsCarryTheirErrno() throws Exception {
        var kernel = start(fs, 1 << 20);
        assertThat(kernel.lookup(1, "no-such-name")).isZero();
        long file = kernel.lookup(1, "big.bin");
        assertThat(kernel.getxattr(file, "user.digest", 0)).as("the size probe").hasSize(8);
        assertThat(new String(kernel.getxattr(file, "user.digest", 64), StandardCharsets.UTF_8)).isEqualTo("b3:abc");
        assertThatThrownBy(() -> kernel.getxattr(file, "user.digest", 2))
                .isInstanceOfSatisfying(KernelSimulator.ErrorReply.class, e -> assertThat(e.errno()).isEqualTo(Errno.ERANGE))
                .hasMessageContaining("GETXATTR").hasMessageContaining("ERANGE");
        assertThatThrownBy(() -> kernel.readlink(file))
                .isInstanceOfSatisfying(KernelSimulator.ErrorReply.class, e -> assertThat(e.errno()).isEqualTo(Errno.EINVAL));
        kernel.destroy();
        assertThat(fs.isDestroyed()).isTrue();
    }

    @Test
    void handleZeroIsReleasedAndEnosysOpensAreNotSentAgain() throws Exception {
        var opens = new java.util.concurrent.atomic.AtomicInteger();
        var releasedDirectories = new java.util.ArrayList<Long>();
        // Directories opened with handle 0; files opened by the kernel itself (zero-message opens).
        FileSystem handles = new Delegating(fs) {
            @Override
            public OpenReply opendir(Request request, long nodeId) {
                return new OpenReply(0, OpenReply.CACHE_DIR);
            }

            @Override
            public void releasedir(Request request, long nodeId, long fileHandle) {
                releasedDirectories.add(fileHandle);
            }

            @Override
            public OpenReply open(Request request, long nodeId, int flags) throws FuseException {
                opens.incrementAndGet();
                throw new FuseException(Errno.ENOSYS);
            }
        };
        var kernel = start(handles, 1 << 20);
        long many = kernel.lookup(1, "many");
        kernel.readDirectory(many, 4096);
        kernel.readDirectoryPlus(many, 4096);
        assertThat(releasedDirectories).containsExactly(0L, 0L);
        long file = kernel.lookup(1, "big.bin");
        assertThat(kernel.readFile(file, 1 << 20)).isEqualTo(big.length);
        assertThat(kernel.readFile(file, 1 << 20)).isEqualTo(big.length);
        kernel.readAt(file, new long[] {5}, 10);
        assertThat(opens.get()).as("OPEN after its ENOSYS").isEqualTo(1);
    }

    /** Every call to another filesystem, for tests that change one or two of them. */
    private static class Delegating implements FileSystem {
        private final FileSystem inner;

        Delegating(FileSystem inner) {
            this.inner = inner;
        }

        @Override
        public void init(InitInfo info, KernelCache kernelCache, BackingFiles backingFiles) {
            inner.init(info, kernelCache, backingFiles);
        }

        @Override
        public boolean mayBlock(Operation op, long nodeId) {
            return inner.mayBlock(op, nodeId);
        }

        @Override
        public Entry lookup(Request request, long parent, byte[] name) throws FuseException {
            return inner.lookup(request, parent, name);
        }

        @Override
        public void forget(long nodeId, long nlookup) {
            inner.forget(nodeId, nlookup);
        }

        @Override
        public AttrReply getattr(Request request, long nodeId) throws FuseException {
            return inner.getattr(request, nodeId);
        }

        @Override
        public byte[] readlink(Request request, long nodeId) throws FuseException {
            return inner.readlink(request, nodeId);
        }

        @Override
        public OpenReply open(Request request, long nodeId, int flags) throws FuseException {
            return inner.open(request, nodeId, flags);
        }

        @Override
        public void read(Request request, long nodeId, long fileHandle, long offset, ByteBuffer dst) throws FuseException {
            inner.read(request, nodeId, fileHandle, offset, dst);
        }

        @Override
        public OpenReply opendir(Request request, long nodeId) throws FuseException {
            return inner.opendir(request, nodeId);
        }

        @Override
        public void readdir(Request request, long nodeId, long fileHandle, long offset, boolean plus, DirectorySink sink)
                throws FuseException {
            inner.readdir(request, nodeId, fileHandle, offset, plus, sink);
        }

        @Override
        public StatFs statfs(Request request, long nodeId) throws FuseException {
            return inner.statfs(request, nodeId);
        }

        @Override
        public byte[] getxattr(Request request, long nodeId, byte[] name) throws FuseException {
            return inner.getxattr(request, nodeId, name);
        }

        @Override
        public byte[] listxattr(Request request, long nodeId) throws FuseException {
            return inner.listxattr(request, nodeId);
        }
    }
}

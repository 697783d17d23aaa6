package castore.fuse.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.fuse.api.Errno;
import castore.fuse.api.Operation;
import castore.fuse.testing.MemoryFileSystem;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The in-process kernel: requests encoded as the kernel does, replies decoded, bookkeeping kept. */
class KernelSimulatorTest {
    private static final int FILES = 300;

    private final byte[] big = new byte[200_000];
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

    @Test
    void listsADirectoryAcrossManyBuffersAndGivesEveryLookupBack() throws Exception {
        KernelSimulator kernel = KernelSimulator.start(fs, 1 << 20);
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
        KernelSimulator kernel = KernelSimulator.start(fs, 1 << 16);
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
        KernelSimulator kernel = KernelSimulator.start(fs, 1 << 20);
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
}

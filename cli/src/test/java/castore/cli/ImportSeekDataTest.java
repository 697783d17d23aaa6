package castore.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.fuse.testing.FuseAvailability;
import castore.fuse.testing.MemoryFileSystem;
import castore.fuse.testing.MountFixture;
import castore.hash.Blake3;
import castore.ingest.posix.Posix;
import castore.ingest.posix.PosixException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A file that looks sparse (fewer blocks on disk than its size) on a file system that refuses
 * SEEK_DATA, or answers it wrongly, is imported by reading it plainly: here a real FUSE mount whose
 * files say they take no blocks and whose LSEEK answers EINVAL, or offsets that do not add up.
 */
class ImportSeekDataTest {
    @TempDir
    Path tmp;

    private final byte[] content = new byte[3 << 20];

    /** Mounts 3 MiB of random bytes as data.bin with LSEEK answered as {@code seek}; checks what the mount shows, then the import. */
    private void importsWhole(MemoryFileSystem.Seek seek, java.util.function.Consumer<byte[]> mountedFile) throws Exception {
        FuseAvailability.requireMountable();
        new java.util.SplittableRandom(seek.ordinal()).nextBytes(content);
        MemoryFileSystem fs = MemoryFileSystem.builder().file("data.bin", content).seek(seek).build();
        try (MountFixture mount = MountFixture.mount(tmp, fs)) {
            byte[] path = mount.path("data.bin").toString().getBytes(StandardCharsets.UTF_8);
            assertThat(Posix.lstatat(Posix.AT_FDCWD, path, path).mayHaveHoles(1 << 20)).as("no blocks on disk").isTrue();
            mountedFile.accept(path);
            Cli.Result r = new Cli(tmp.resolve("store").toString()).run("import", "-q", "--name", "data", mount.path("data.bin").toString());
            assertThat(r.exit()).as(r.stderr()).isZero();
            assertThat(r.stdout()).isEqualTo("data\t" + Blake3.digest(content) + "\n");
        }
    }

    @Test
    void aFileThatLooksSparseWhereSeekDataIsRefusedIsReadPlainly() throws Exception {
        importsWhole(MemoryFileSystem.Seek.REFUSED, path -> {
            try {
                int fd = Posix.openat(Posix.AT_FDCWD, path, Posix.O_RDONLY, 0, path);
                try {
                    assertThatThrownBy(() -> Posix.seekData(fd, 0, path)).isInstanceOf(PosixException.class)
                            .hasMessageContaining("Invalid argument");
                } finally {
                    Posix.close(fd);
                }
            } catch (PosixException e) {
                throw new AssertionError(e);
            }
        });
    }

    @Test
    void aFileWhoseFileSystemAnswersSeekDataWronglyIsReadPlainlyNotCutShort() throws Exception {
        // Data "at 0" whatever the offset asked, a "hole" at 1 MiB: the first MiB is read, then
        // the answer for the next offset lies before it. Taken as it came, the import would store
        // the first MiB as the whole file.
        importsWhole(MemoryFileSystem.Seek.WRONG, path -> { });
    }
}

package castore.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.fuse.testing.FuseAvailability;
import castore.fuse.testing.MemoryFileSystem;
import castore.fuse.testing.MountFixture;
import castore.hash.Blake3;
import castore.ingest.posix.Posix;
import castore.ingest.posix.PosixException;
import java.nio.file.Files;
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

    @Test
    void aFileThatLooksSparseWhereSeekDataIsRefusedIsReadPlainly() throws Exception {
        FuseAvailability.requireMountable();
        byte[] content = new byte[3 << 20];
        new java.util.SplittableRandom(9).nextBytes(content);
        MemoryFileSystem fs = MemoryFileSystem.builder().file("data.bin", content).seek(MemoryFileSystem.Seek.REFUSED).build();
        try (MountFixture mount = MountFixture.mount(tmp, fs)) {
            Path file = mount.path("data.bin");
            assertThat(Files.getAttribute(file, "unix:size")).isEqualTo((long) content.length);
            // What the importer sees: no blocks on disk, and lseek(SEEK_DATA) failing with EINVAL.
            byte[] path = file.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
            assertThat(Posix.lstatat(Posix.AT_FDCWD, path, path).mayHaveHoles(1 << 20)).isTrue();
            int fd = Posix.openat(Posix.AT_FDCWD, path, Posix.O_RDONLY, 0, path);
            try {
                assertThatThrownBy(() -> Posix.seekData(fd, 0, path)).isInstanceOf(PosixException.class)
                        .hasMessageContaining("Invalid argument");
            } finally {
                Posix.close(fd);
            }
            Cli.Result r = new Cli(tmp.resolve("store").toString()).run("import", "-q", "--name", "data", file.toString());
            assertThat(r.exit()).as(r.stderr()).isZero();
            assertThat(r.stdout()).isEqualTo("data\t" + Blake3.digest(content) + "\n");
        }
    }

    @Test
    void aFileWhoseFileSystemAnswersSeekDataWronglyIsReadPlainlyNotCutShort() throws Exception {
        FuseAvailability.requireMountable();
        byte[] content = new byte[3 << 20];
        new java.util.SplittableRandom(10).nextBytes(content);
        // Data "at 0" whatever the offset asked, a "hole" at 1 MiB: the first MiB is read, then
        // the answer for the next offset lies before it. Taken as it came, the import would store
        // the first MiB as the whole file.
        MemoryFileSystem fs = MemoryFileSystem.builder().file("data.bin", content).seek(MemoryFileSystem.Seek.WRONG).build();
        try (MountFixture mount = MountFixture.mount(tmp, fs)) {
            Cli.Result r = new Cli(tmp.resolve("store").toString()).run("import", "-q", "--name", "data",
                    mount.path("data.bin").toString());
            assertThat(r.exit()).as(r.stderr()).isZero();
            assertThat(r.stdout()).isEqualTo("data\t" + Blake3.digest(content) + "\n");
        }
    }
}

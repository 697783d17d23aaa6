package castore.fs;

import static org.assertj.core.api.Assertions.assertThat;

import castore.fuse.testing.ChildJvm;
import castore.fuse.testing.Commands;
import castore.fuse.testing.FuseAvailability;
import castore.fuse.testing.MountInfo;
import castore.fuse.transport.FuseMount;
import castore.model.B3Digest;
import com.google.protobuf.ByteString;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A mount by an ordinary user (uid 65534 via setpriv) through fusermount3: the daemon runs in a
 * child JVM as that user; the user reads the tree and unmounts it with fusermount3 -u.
 */
class UnprivilegedMountTest {
    static final int NOBODY = 65534;

    @TempDir
    Path tmp;

    @Test
    void anOrdinaryUserMountsReadsAndUnmounts() throws Exception {
        FuseAvailability.requireRoot();
        FuseAvailability.requireProgram("fusermount3");
        FuseAvailability.requireProgram("setpriv");
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxr-xr-x"));
        Path mountpoint = Files.createDirectory(tmp.resolve("mnt"));
        Files.setAttribute(mountpoint, "unix:uid", NOBODY);
        Files.setAttribute(mountpoint, "unix:gid", NOBODY);
        // The protobuf jar lives in root's private Maven repository: give the user a copy.
        Path protobuf = Files.copy(ChildJvm.codeSourceOf(ByteString.class), tmp.resolve("protobuf.jar"),
                StandardCopyOption.REPLACE_EXISTING);
        Files.setPosixFilePermissions(protobuf, PosixFilePermissions.fromString("rw-r--r--"));
        List<Path> classpath = List.of(ChildJvm.codeSourceOf(FuseMount.class), ChildJvm.codeSourceOf(B3Digest.class),
                ChildJvm.codeSourceOf(CastoreFileSystem.class), ChildJvm.codeSourceOf(UnprivilegedMountMain.class), protobuf);

        try (var daemon = ChildJvm.start(classpath, UnprivilegedMountMain.class.getName(), List.of(mountpoint.toString()), NOBODY)) {
            assertThat(daemon.awaitLine("ready")).as("each round trip one request").isEqualTo("ready after round trips: 10");
            assertThat(MountInfo.find(mountpoint)).hasValueSatisfying(info -> assertThat(info.mountOptions()).contains("ro"));
            assertThat(Files.readString(Path.of("/proc/self/mountinfo")).lines()
                    .filter(l -> l.contains(" " + mountpoint + " ")).findFirst().orElseThrow()).contains("user_id=" + NOBODY);
            assertThat(Commands.runAs(NOBODY, "cat", mountpoint.resolve("hello").toString()).assertOk().stdout())
                    .isEqualTo("hello from an ordinary user\n");
            assertThat(Commands.runAs(NOBODY, "cat", mountpoint.resolve("tree/a/b").toString()).assertOk().stdout())
                    .isEqualTo("deep\n");
            assertThat(Commands.runAs(NOBODY, "touch", mountpoint.resolve("x").toString()).stderr())
                    .contains("Read-only file system");

            Commands.runAs(NOBODY, "fusermount3", "-u", mountpoint.toString()).assertOk();
            assertThat(daemon.waitFor()).as("the daemon ends after the unmount, exit 0").isZero();
        } finally {
            if (MountInfo.find(mountpoint).isPresent()) {
                Commands.run("umount", "-l", mountpoint.toString());
            }
        }
    }
}

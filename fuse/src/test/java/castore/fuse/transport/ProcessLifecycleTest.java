package castore.fuse.transport;

import castore.fuse.testing.ChildJvm;
import castore.fuse.testing.Commands;
import castore.fuse.testing.FuseAvailability;
import castore.fuse.testing.MemoryFileSystem;
import castore.fuse.testing.MountInfo;
import castore.fuse.testing.MountMain;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Whole daemon processes: signals, death, and a mount by an ordinary user. */
class ProcessLifecycleTest {
    private static final int NOBODY = 65534;
    private static final List<Path> CLASSPATH = List.of(ChildJvm.codeSourceOf(FuseMount.class),
            ChildJvm.codeSourceOf(MountMain.class));

    @TempDir
    Path tmp;

    private static ChildJvm daemon(Path mountpoint, Integer uid) throws IOException {
        return ChildJvm.start(CLASSPATH, MountMain.class.getName(), List.of(mountpoint.toString()), uid);
    }

    /** SIGTERM: the daemon unmounts, destroys its filesystem, exits 0, and the mount is gone. */
    private static void terminateAndExpectCleanExit(ChildJvm child, Path mnt) throws Exception {
        child.terminate();
        assertThat(child.awaitLine("unmounted")).isEqualTo("unmounted destroyed=true");
        assertThat(child.waitFor()).as("exit code; stderr: %s", child.stderr()).isZero();
        assertThat(MountInfo.find(mnt)).isEmpty();
    }

    /** Detaches whatever a failed test left mounted. */
    private static void detach(Path mountpoint) {
        if (MountInfo.find(mountpoint).isPresent()) {
            Commands.run("umount", "-l", mountpoint.toString());
        }
    }

    @Test
    void sigtermUnmountsAndTheDaemonExitsZero() throws Exception {
        FuseAvailability.requireMountable();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        try (ChildJvm child = daemon(mnt, null)) {
            child.awaitLine("mounted");
            assertThat(MountInfo.find(mnt)).isPresent();
            assertThat(Commands.run("cat", mnt + "/hello.txt").assertOk().stdout()).isEqualTo("hello from uid 0\n");
            terminateAndExpectCleanExit(child, mnt);
        } finally {
            detach(mnt);
        }
    }

    @Test
    void aSigtermSentTwiceAtOnceIsOneStop() throws Exception {
        // timeout(1) sends SIGTERM to the process and then to its whole group. The copy must not
        // halt the daemon: it serves the detached mount while a file keeps it alive, then exits 0.
        FuseAvailability.requireMountable();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Process holder = null;
        try (ChildJvm child = daemon(mnt, null)) {
            child.awaitLine("mounted");
            holder = holdOpen(mnt + "/hello.txt");
            child.terminate();
            Thread.sleep(50); // not at once: two pending SIGTERMs would merge into one
            child.terminate();
            Thread.sleep(500);
            assertThat(child.process().isAlive()).as("alive while the file is open").isTrue();
            holder.destroyForcibly().waitFor();
            assertThat(child.awaitLine("unmounted")).isEqualTo("unmounted destroyed=true");
            assertThat(child.waitFor()).as("exit code; stderr: %s", child.stderr()).isZero();
            assertThat(child.stderr()).doesNotContain("again: stopping now");
            assertThat(MountInfo.find(mnt)).isEmpty();
        } finally {
            if (holder != null) {
                holder.destroyForcibly();
            }
            detach(mnt);
        }
    }

    /** A process with {@code file} open (waits until it is), which keeps a detached mount alive. */
    private static Process holdOpen(String file) throws Exception {
        Process holder = new ProcessBuilder("sh", "-c", "exec 3<\"$1\"; exec sleep 60", "sh", file).start();
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (Commands.run("sh", "-c", "ls -l /proc/" + holder.pid() + "/fd | grep -q " + Path.of(file).getFileName()).exitCode() != 0
                && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        return holder;
    }

    @Test
    void aSecondSigtermStopsADaemonWhoseMountAFileKeepsAlive() throws Exception {
        FuseAvailability.requireMountable();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        Process holder = null;
        try (ChildJvm child = daemon(mnt, null)) {
            child.awaitLine("mounted");
            // A process with a file open on the mount: the first SIGTERM detaches it, but the
            // kernel keeps the connection for that file, and the daemon serves on.
            holder = holdOpen(mnt + "/hello.txt");
            child.terminate();
            Thread.sleep(500);
            assertThat(child.process().isAlive()).as("alive while the file is open").isTrue();
            child.terminate(); // the second: stop now
            assertThat(child.process().waitFor(15, java.util.concurrent.TimeUnit.SECONDS)).as("exited; stderr: %s", child.stderr()).isTrue();
            assertThat(child.process().exitValue()).isEqualTo(128 + 15);
            assertThat(child.stderr()).contains("again: stopping now");
        } finally {
            if (holder != null) {
                holder.destroyForcibly();
            }
            detach(mnt);
        }
    }

    @Test
    void afterSigkillTheMountIsStaleButDetachable() throws Exception {
        FuseAvailability.requireMountable();
        FuseAvailability.requireRoot();
        Path mnt = Files.createDirectory(tmp.resolve("mnt"));
        try (ChildJvm child = daemon(mnt, null)) {
            child.awaitLine("mounted");
            child.kill(); // no chance to unmount
            assertThat(child.waitFor()).isEqualTo(137);
            assertThat(MountInfo.find(mnt)).isPresent();
            assertThat(Commands.run("stat", mnt.toString()).stderr()).contains("Transport endpoint is not connected");
            assertThatThrownBy(() -> FuseMount.mount(mnt, MemoryFileSystem.builder().build(), MountOptions.defaults()))
                    .isInstanceOf(IOException.class).hasMessageContaining("umount -l " + mnt);
            Commands.run("umount", "-l", mnt.toString()).assertOk();
            assertThat(MountInfo.find(mnt)).isEmpty();
            assertThat(Files.isDirectory(mnt)).isTrue();
        } finally {
            detach(mnt);
        }
    }

    @Test
    void anOrdinaryUserMountsThroughFusermount3() throws Exception {
        FuseAvailability.requireRoot(); // to become another user
        FuseAvailability.requireProgram("fusermount3");
        FuseAvailability.requireProgram("setpriv");
        FuseAvailability.requireDevFuseForUsers();
        Path mnt = FuseAvailability.userMountpoint(NOBODY);
        try (ChildJvm child = daemon(mnt, NOBODY)) {
            child.awaitLine("mounted");
            MountInfo info = MountInfo.find(mnt).orElseThrow();
            assertThat(info.fsType()).isEqualTo("fuse.castore");
            assertThat(info.source()).isEqualTo("castore-child");
            assertThat(info.mountOptions()).contains("ro", "nosuid", "nodev");
            assertThat(info.superOptions()).contains("user_id=" + NOBODY, "group_id=" + NOBODY);
            assertThat(Commands.runAs(NOBODY, "cat", mnt + "/hello.txt").assertOk().stdout())
                    .isEqualTo("hello from uid " + NOBODY + "\n");
            assertThat(Commands.runAs(NOBODY, "touch", mnt + "/new").stderr()).contains("Read-only file system");
            // Without allow_other not even root gets in.
            assertThat(Commands.run("cat", mnt + "/hello.txt").stderr()).contains("Permission denied");
            terminateAndExpectCleanExit(child, mnt);
        } finally {
            detach(mnt);
            FuseAvailability.deleteUserMountpoint(mnt);
        }
    }
}

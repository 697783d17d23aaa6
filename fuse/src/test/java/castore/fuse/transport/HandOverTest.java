package castore.fuse.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.fuse.api.Operation;
import castore.fuse.testing.ChildJvm;
import castore.fuse.testing.FuseAvailability;
import castore.fuse.testing.MemoryFileSystem;
import castore.fuse.testing.Commands;
import castore.fuse.testing.MountInfo;
import castore.fuse.testing.MountMain;
import castore.fuse.testing.TakeOverMain;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Hand-over of a live mount ({@link FuseMount#acceptTakeOvers}, {@link FuseMount#takeOver}) on
 * real mounts: here both ends are in one process, which the protocol allows (same uid), and the
 * other user's attempt comes from a child JVM. castore's own filesystem is taken over between
 * processes in the cli module's TakeOverTest.
 */
class HandOverTest {
    private static final int NOBODY = 65534;

    @TempDir
    Path tmp;

    private static MemoryFileSystem tree() {
        return MemoryFileSystem.builder().file("hello.txt", "hello\n").file("dir/inner.txt", "inner\n").build();
    }

    private Path mountpoint() throws IOException {
        FuseAvailability.requireMountable();
        return Files.createDirectories(tmp.resolve("mnt"));
    }

    @Test
    void theNewServerServesFromThenOnAndTheOldOneEndsWithoutUnmounting() throws Exception {
        Path mnt = mountpoint();
        MemoryFileSystem before = tree();
        before.handsOver("node ids".getBytes(StandardCharsets.UTF_8));
        FuseMount first = FuseMount.mount(mnt, before, MountOptions.defaults()).acceptTakeOvers();
        FuseMount second = null;
        try {
            assertThat(Files.readString(mnt.resolve("dir/inner.txt"))).isEqualTo("inner\n");
            MemoryFileSystem after = tree();
            second = FuseMount.takeOver(mnt, after, MountOptions.defaults());
            assertThat(after.takenState()).isEqualTo("node ids".getBytes(StandardCharsets.UTF_8));
            assertThat(second.takenFrom()).isEqualTo(ProcessHandle.current().pid());
            assertThat(second.initInfo()).isEqualTo(first.initInfo());
            first.awaitUnmount(); // the first session ends...
            assertThat(first.handedTo()).isEqualTo(ProcessHandle.current().pid());
            assertThat(before.isDestroyed()).isTrue();
            first.close();
            assertThat(MountInfo.find(mnt)).as("...but the mount stays").isPresent();
            // What the kernel cached stays; a name it never looked up goes to the new server.
            long firstLookups = before.calls(Operation.LOOKUP);
            assertThat(Files.readString(mnt.resolve("dir/inner.txt"))).isEqualTo("inner\n");
            assertThat(Files.readString(mnt.resolve("hello.txt"))).isEqualTo("hello\n");
            assertThat(after.calls(Operation.LOOKUP)).isPositive();
            assertThat(before.calls(Operation.LOOKUP)).isEqualTo(firstLookups);
            second.close();
            assertThat(MountInfo.find(mnt)).isEmpty();
            assertThat(after.isDestroyed()).isTrue();
        } finally {
            if (second != null) {
                second.close();
            }
            first.close();
            if (MountInfo.find(mnt).isPresent()) {
                new ProcessBuilder("umount", "-l", mnt.toString()).start().waitFor(10, TimeUnit.SECONDS);
            }
        }
    }

    @Test
    void aFilesystemThatCannotBeHandedOverIsRefusedAndGoesOnServing() throws Exception {
        Path mnt = mountpoint();
        assertThatThrownBy(() -> FuseMount.takeOver(mnt, tree(), MountOptions.defaults()))
                .isInstanceOf(IOException.class)
                .hasMessage("no process serving a mount at " + mnt + " accepts a take-over (is it mounted by castore mount, from the same path?)");
        MemoryFileSystem fs = tree(); // no handsOver: refuses
        try (FuseMount mount = FuseMount.mount(mnt, fs, MountOptions.defaults()).acceptTakeOvers()) {
            assertThatThrownBy(() -> FuseMount.takeOver(mnt, tree(), MountOptions.defaults()))
                    .isInstanceOf(IOException.class)
                    .hasMessage("taking over " + mnt + " failed: this filesystem cannot be handed over to another process");
            // Paused and resumed: still served by the first server.
            assertThat(Files.readString(mnt.resolve("hello.txt"))).isEqualTo("hello\n");
            assertThat(mount.handedTo()).isZero();
            assertThat(mount.isUnmounted()).isFalse();
        }
        assertThat(MountInfo.find(mnt)).isEmpty();
    }

    @Test
    void aSecondMountOnAPathAnotherServesIsRefusedAndTheFirstGoesOnServing() throws Exception {
        Path mnt = mountpoint();
        MemoryFileSystem other = MemoryFileSystem.builder().file("hello.txt", "another\n").build();
        try (FuseMount first = FuseMount.mount(mnt, tree(), MountOptions.defaults())) {
            // Refused before the first listens for take-overs (its socket is bound from the start) and after.
            assertThatThrownBy(() -> FuseMount.mount(mnt, other, MountOptions.defaults()))
                    .isInstanceOf(MountpointServedException.class)
                    .hasMessage(mnt + " is already mounted by another process that serves it");
            first.acceptTakeOvers();
            assertThatThrownBy(() -> FuseMount.mount(mnt, other, MountOptions.defaults()))
                    .isInstanceOf(MountpointServedException.class);
            assertThat(Files.readString(mnt.resolve("hello.txt"))).isEqualTo("hello\n");
            assertThat(Commands.run("grep", "-c", " " + mnt + " ", "/proc/self/mountinfo").stdout().strip())
                    .as("one mount on the path, not two stacked").isEqualTo("1");
            assertThat(first.isUnmounted()).isFalse();
        }
        assertThat(MountInfo.find(mnt)).isEmpty();
        try (FuseMount again = FuseMount.mount(mnt, other, MountOptions.defaults())) {
            assertThat(Files.readString(mnt.resolve("hello.txt"))).isEqualTo("another\n");
        }
    }

    @Test
    void aMountDetachedWhileAFileIsOpenLeavesThePathToAnotherMount() throws Exception {
        Path mnt = mountpoint();
        MemoryFileSystem other = MemoryFileSystem.builder().file("hello.txt", "another\n").build();
        try (FuseMount first = FuseMount.mount(mnt, tree(), MountOptions.defaults()).acceptTakeOvers()) {
            try (var open = Files.newInputStream(mnt.resolve("hello.txt"))) {
                Commands.run("umount", "-l", mnt.toString()).assertOk();
                assertThat(MountInfo.find(mnt)).isEmpty();
                // The first process still serves the open file, and still listens: the path is free all the same.
                try (FuseMount second = FuseMount.mount(mnt, other, MountOptions.defaults())) {
                    assertThat(Files.readString(mnt.resolve("hello.txt"))).isEqualTo("another\n");
                    assertThat(new String(open.readAllBytes(), StandardCharsets.UTF_8)).isEqualTo("hello\n");
                    assertThat(first.isUnmounted()).isFalse();
                }
            }
        } finally {
            if (MountInfo.find(mnt).isPresent()) {
                Commands.run("umount", "-l", mnt.toString());
            }
        }
    }

    @Test
    void anOrdinaryUsersMountIsHandedOverAndThenUnmountedThroughFusermount3() throws Exception {
        FuseAvailability.requireRoot(); // to become another user
        FuseAvailability.requireProgram("fusermount3");
        FuseAvailability.requireProgram("setpriv");
        FuseAvailability.requireDevFuseForUsers();
        Path mnt = FuseAvailability.userMountpoint(NOBODY);
        List<Path> classpath = List.of(ChildJvm.codeSourceOf(FuseMount.class), ChildJvm.codeSourceOf(TakeOverMain.class));
        try (ChildJvm first = ChildJvm.start(classpath, MountMain.class.getName(), List.of(mnt.toString(), "take-overs"), NOBODY)) {
            first.awaitLine("mounted");
            try (ChildJvm second = ChildJvm.start(classpath, TakeOverMain.class.getName(), List.of(mnt.toString(), "serve"), NOBODY)) {
                assertThat(second.awaitLine("took over")).isEqualTo("took over from " + first.process().pid());
                assertThat(first.awaitLine("handed")).isEqualTo("handed over to " + second.process().pid());
                assertThat(first.waitFor()).as("stderr: %s", first.stderr()).isZero();
                assertThat(MountInfo.find(mnt).orElseThrow().superOptions()).contains("user_id=" + NOBODY);
                assertThat(Commands.runAs(NOBODY, "cat", mnt + "/hello.txt").assertOk().stdout())
                        .isEqualTo("hello from uid " + NOBODY + "\n");
                // The new process unmounts as the first would have: through fusermount3.
                second.terminate();
                assertThat(second.awaitLine("unmounted")).isEqualTo("unmounted");
                assertThat(second.waitFor()).as("stderr: %s", second.stderr()).isZero();
                assertThat(MountInfo.find(mnt)).isEmpty();
            }
        } finally {
            if (MountInfo.find(mnt).isPresent()) {
                Commands.run("umount", "-l", mnt.toString());
            }
            FuseAvailability.deleteUserMountpoint(mnt);
        }
    }

    @Test
    void anotherUserMayNotTakeTheMount() throws Exception {
        FuseAvailability.requireRoot(); // to become another user
        FuseAvailability.requireProgram("setpriv");
        Path mnt = mountpoint();
        MemoryFileSystem fs = tree();
        fs.handsOver(new byte[0]);
        try (FuseMount mount = FuseMount.mount(mnt, fs, MountOptions.defaults()).acceptTakeOvers()) {
            List<Path> classpath = List.of(ChildJvm.codeSourceOf(FuseMount.class), ChildJvm.codeSourceOf(TakeOverMain.class));
            try (ChildJvm child = ChildJvm.start(classpath, TakeOverMain.class.getName(), List.of(mnt.toString()), NOBODY)) {
                assertThat(child.awaitLine("error")).isEqualTo(
                        "error: taking over " + mnt + " failed: uid " + NOBODY + " may not take over a mount of uid 0");
                assertThat(child.waitFor()).isEqualTo(1);
            }
            assertThat(Files.readString(mnt.resolve("hello.txt"))).isEqualTo("hello\n");
            assertThat(mount.handedTo()).isZero();
        }
    }
}

package castore.fuse.testing;

import castore.fuse.sys.Libc;
import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Whether this machine can run real FUSE mounts. Without one a test is skipped, except under
 * {@code CI=true}, where a missing /dev/fuse, root or fusermount3 fails the test: CI must run them.
 */
public final class FuseAvailability {
    private FuseAvailability() {
    }

    public static boolean inCi() {
        return "true".equalsIgnoreCase(System.getenv("CI"));
    }

    /** Skips (or under CI fails) unless /dev/fuse opens here and this process may mount. */
    public static void requireMountable() {
        require(problem());
    }

    /** Skips (or under CI fails) unless this process runs as root (needed to switch to another uid). */
    public static void requireRoot() {
        require(Libc.geteuid() == 0 ? null : "not running as root");
    }

    /**
     * Skips (or under CI fails) unless ordinary users may open /dev/fuse: fusermount3 opens it
     * with the user's own rights, so it needs the usual mode 0666 (some containers make it 0600).
     */
    public static void requireDevFuseForUsers() {
        require(devFuseForUsersProblem());
    }

    private static String devFuseForUsersProblem() {
        String problem;
        try {
            var perms = Files.getPosixFilePermissions(Path.of("/dev/fuse"));
            problem = perms.contains(java.nio.file.attribute.PosixFilePermission.OTHERS_READ)
                    && perms.contains(java.nio.file.attribute.PosixFilePermission.OTHERS_WRITE) ? null
                    : "/dev/fuse is not open to ordinary users (mode "
                    + java.nio.file.attribute.PosixFilePermissions.toString(perms) + "; fix: chmod 0666 /dev/fuse)";
        } catch (IOException e) {
            problem = "/dev/fuse: " + e.getMessage();
        }
        return problem;
    }

    /**
     * A directory for passthrough backing files: {@code preferred} unless it lies on a stacked
     * filesystem (overlayfs, as in many containers), whose files the kernel refuses as backing
     * files of a mount with stack depth 1 (ELOOP); then a fresh directory in /dev/shm (tmpfs).
     * The caller deletes it.
     */
    public static Path backingDirectory(Path preferred) throws IOException {
        Files.createDirectories(preferred);
        if (!Files.getFileStore(preferred).type().equals("overlay")) {
            return preferred;
        }
        return Files.createTempDirectory(Path.of("/dev/shm"), "castore-backing");
    }

    /** Deletes, with everything in it, a directory {@link #backingDirectory} made outside {@code preferred}. */
    public static void deleteBackingDirectory(Path dir, Path preferred) throws IOException {
        if (dir.startsWith(preferred)) {
            return; // the test's own temporary directory, which JUnit deletes
        }
        try (var files = Files.walk(dir)) {
            for (Path f : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(f);
            }
        }
    }

    /**
     * An empty directory "mnt" owned by {@code uid}, in a new directory under /tmp that everyone
     * may enter (a {@code @TempDir} is private to root): a mountpoint for another user. Delete
     * both with {@link #deleteUserMountpoint}.
     */
    public static Path userMountpoint(int uid) throws IOException {
        Path base = Files.createTempDirectory(Path.of("/tmp"), "castore-fuse-user-",
                java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
                        java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x")));
        Path mnt = Files.createDirectory(base.resolve("mnt"));
        Files.setOwner(mnt, mnt.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByName(String.valueOf(uid)));
        return mnt;
    }

    /** Deletes a directory {@link #userMountpoint} made, and the one it made it in. */
    public static void deleteUserMountpoint(Path mnt) throws IOException {
        Files.deleteIfExists(mnt);
        Files.deleteIfExists(mnt.getParent());
    }

    /** Skips (or under CI fails) unless {@code program} is on the PATH. */
    public static void requireProgram(String program) {
        require(onPath(program) ? null : program + " is not installed");
    }

    static void require(String problem) {
        if (problem == null) {
            return;
        }
        if (inCi()) {
            throw new AssertionError("CI=true but real FUSE mounts cannot run: " + problem);
        }
        Assumptions.abort("real FUSE mounts cannot run here: " + problem);
    }

    private static String problem() {
        if (Libc.geteuid() != 0) {
            return onPath("fusermount3") ? devFuseForUsersProblem() : "not root and no fusermount3";
        }
        try (FileChannel ignored = FileChannel.open(Path.of("/dev/fuse"), StandardOpenOption.READ,
                StandardOpenOption.WRITE)) {
            return null;
        } catch (IOException | UnsupportedOperationException e) {
            return "/dev/fuse cannot be opened: " + e.getMessage();
        }
    }

    static boolean onPath(String program) {
        String path = System.getenv().getOrDefault("PATH", "/usr/bin:/bin");
        for (String dir : path.split(":")) {
            if (!dir.isEmpty() && Files.isExecutable(Path.of(dir, program))) {
                return true;
            }
        }
        return false;
    }
}

package castore.fuse.testing;

import castore.fuse.api.FileSystem;
import castore.fuse.transport.FuseMount;
import castore.fuse.transport.MountOptions;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

/**
 * A real mount for a test: {@code try (var m = MountFixture.mount(tempDir, fs)) { ... }}. It skips
 * the test when FUSE is unavailable (fails under CI=true) and always unmounts on close, checking
 * that the mount is gone. Exercise the mount from the test thread, other threads or child
 * processes ({@link Commands}), never from inside the filesystem's own methods.
 */
public final class MountFixture implements AutoCloseable {
    private final FuseMount mount;

    private MountFixture(FuseMount mount) {
        this.mount = mount;
    }

    /** Mounts {@code fs} on a new directory "mnt" under {@code tempDir}, with default options. */
    public static MountFixture mount(Path tempDir, FileSystem fs) throws IOException {
        return mount(tempDir, fs, MountOptions.defaults().withFsName("castore-test"));
    }

    public static MountFixture mount(Path tempDir, FileSystem fs, MountOptions options) throws IOException {
        FuseAvailability.requireMountable();
        Path mountpoint = Files.createDirectories(tempDir.resolve("mnt"));
        return new MountFixture(FuseMount.mount(mountpoint, fs, options));
    }

    /** The mountpoint. */
    public Path path() {
        return mount.mountpoint();
    }

    /** A path inside the mount. */
    public Path path(String relative) {
        return mount.mountpoint().resolve(relative);
    }

    public FuseMount fuseMount() {
        return mount;
    }

    /** This mount's line of /proc/self/mountinfo, if it is mounted. */
    public Optional<MountInfo> mountInfo() {
        return MountInfo.find(mount.mountpoint());
    }

    @Override
    public void close() {
        mount.close();
        if (MountInfo.find(mount.mountpoint()).isPresent()) {
            throw new UncheckedIOException(new IOException(mount.mountpoint() + " is still mounted after close"));
        }
    }
}

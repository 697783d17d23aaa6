package castore.fuse.transport;

import castore.fuse.api.FileSystem;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A mounted FUSE filesystem served from /dev/fuse by reader threads. {@link #close()} unmounts and
 * waits for the threads; {@link #awaitUnmount()} blocks until the mount goes away (close, an outside
 * {@code umount}/{@code fusermount3 -u}, or a signal after {@link #unmountOnSignals()}).
 */
public final class FuseMount implements AutoCloseable {

    private FuseMount() {
    }

    /**
     * Mounts {@code fs} read-only (ro, nosuid, nodev) on {@code mountpoint} and starts serving it.
     * Returns once the kernel holds the mount; the first access waits for INIT, which the readers
     * answer at once.
     */
    public static FuseMount mount(Path mountpoint, FileSystem fs, MountOptions options) throws IOException {
        throw new UnsupportedOperationException("not yet");
    }

    public Path mountpoint() {
        throw new UnsupportedOperationException("not yet");
    }

    /** Blocks until the filesystem is unmounted and every reader has stopped. */
    public void awaitUnmount() throws InterruptedException {
        throw new UnsupportedOperationException("not yet");
    }

    /**
     * On SIGINT or SIGTERM, unmount (from a thread of its own) instead of dying: a thread blocked in
     * {@link #awaitUnmount()} returns and the program can exit 0.
     */
    public FuseMount unmountOnSignals() {
        throw new UnsupportedOperationException("not yet");
    }

    /** Unmounts (lazily, never touching the mountpoint's files), stops the readers and waits for them. */
    @Override
    public void close() {
        throw new UnsupportedOperationException("not yet");
    }
}

package castore.fuse.transport;

import java.io.IOException;
import java.nio.file.Path;

/**
 * {@link FuseMount#mount} refused: another live process serves a mount at that path (it listens
 * for take-overs of it). The kernel would stack a second mount on the same path and hide the
 * first; the caller unmounts that one first, or takes it over ({@link FuseMount#takeOver}).
 */
public final class MountpointServedException extends IOException {
    private final transient Path mountpoint;

    public MountpointServedException(Path mountpoint) {
        super(mountpoint + " is already mounted by another process that serves it");
        this.mountpoint = mountpoint;
    }

    public Path mountpoint() {
        return mountpoint;
    }
}

package castore.ingest.posix;

import java.io.IOException;

/** A failed libc call: the errno, what was attempted and on which path (raw bytes). */
public final class PosixException extends IOException {
    private final int errno;
    private final byte[] path;

    public PosixException(int errno, String operation, byte[] path) {
        super("cannot " + operation + " " + Display.escape(path) + ": " + Posix.strerror(errno));
        this.errno = errno;
        this.path = path.clone();
    }

    public int errno() {
        return errno;
    }

    public byte[] path() {
        return path.clone();
    }

    public boolean notFound() {
        return errno == Posix.ENOENT || errno == Posix.ENOTDIR;
    }

    public boolean permissionDenied() {
        return errno == Posix.EACCES || errno == 1 /* EPERM */;
    }
}

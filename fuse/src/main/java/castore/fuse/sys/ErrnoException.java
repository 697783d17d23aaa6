package castore.fuse.sys;

import java.io.IOException;

/** A failed libc call: which call, on what, and the errno with the C library's words for it. */
public final class ErrnoException extends IOException {
    private final int errno;

    public ErrnoException(String call, int errno) {
        super(call + ": " + Libc.strerror(errno) + " (" + castore.fuse.api.Errno.name(errno) + ")");
        this.errno = errno;
    }

    public int errno() {
        return errno;
    }
}

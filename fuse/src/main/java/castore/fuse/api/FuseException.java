package castore.fuse.api;

/**
 * A failed operation with its errno, sent to the kernel as the reply's error. No stack trace is
 * captured: these are expected outcomes on hot paths (ENOENT on lookup), not bugs.
 */
public final class FuseException extends Exception {
    private final int errno;

    public FuseException(int errno) {
        super(null, null, false, false);
        this.errno = errno;
    }

    public FuseException(int errno, String message) {
        super(message, null, false, false);
        this.errno = errno;
    }

    public int errno() {
        return errno;
    }

    @Override
    public String getMessage() {
        String m = super.getMessage();
        return Errno.name(errno) + (m == null ? "" : ": " + m);
    }
}

package castore.fuse.api;

/**
 * The reply to OPEN/OPENDIR: a file handle and FOPEN_* flags, e.g. {@link #KEEP_CACHE} for
 * immutable content (the page cache survives re-opening) and {@link #CACHE_DIR} for directories.
 * A {@link #passthrough} reply names a backing id from {@link BackingFiles} instead: the kernel
 * reads that file itself.
 */
public record OpenReply(long fileHandle, int openFlags, int backingId) {
    public static final int DIRECT_IO = 1;
    public static final int KEEP_CACHE = 1 << 1;
    public static final int NONSEEKABLE = 1 << 2;
    public static final int CACHE_DIR = 1 << 3;
    public static final int STREAM = 1 << 4;
    public static final int NOFLUSH = 1 << 5;
    public static final int PARALLEL_DIRECT_WRITES = 1 << 6;
    public static final int PASSTHROUGH = 1 << 7;

    public OpenReply {
        if (backingId < 0 || (backingId > 0) != ((openFlags & PASSTHROUGH) != 0)) {
            throw new IllegalArgumentException("backing id " + backingId + " with open flags 0x" + Integer.toHexString(openFlags));
        }
    }

    public OpenReply(long fileHandle, int openFlags) {
        this(fileHandle, openFlags, 0);
    }

    /** Open {@code fileHandle} reading backing file {@code backingId} ({@link BackingFiles#open}). */
    public static OpenReply passthrough(long fileHandle, int backingId) {
        return new OpenReply(fileHandle, PASSTHROUGH, backingId);
    }
}

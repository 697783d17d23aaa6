package castore.fuse.api;

/**
 * The reply to OPEN/OPENDIR: a file handle and FOPEN_* flags, e.g. {@link #KEEP_CACHE} for
 * immutable content (the page cache survives re-opening) and {@link #CACHE_DIR} for directories.
 */
public record OpenReply(long fileHandle, int openFlags) {
    public static final int DIRECT_IO = 1;
    public static final int KEEP_CACHE = 1 << 1;
    public static final int NONSEEKABLE = 1 << 2;
    public static final int CACHE_DIR = 1 << 3;
    public static final int STREAM = 1 << 4;
    public static final int NOFLUSH = 1 << 5;
    public static final int PARALLEL_DIRECT_WRITES = 1 << 6;
}

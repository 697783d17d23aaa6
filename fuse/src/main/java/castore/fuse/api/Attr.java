package castore.fuse.api;

/**
 * The attributes of a node ({@code fuse_attr}). {@code mode} includes the file type bits
 * (S_IFREG, S_IFDIR, S_IFLNK). Times are seconds since the epoch plus nanoseconds.
 */
public record Attr(long ino, long size, long blocks, long atime, long mtime, long ctime,
                   int atimeNsec, int mtimeNsec, int ctimeNsec, int mode, int nlink, int uid, int gid,
                   int rdev, int blksize) {
    public static final int S_IFMT = 0170000;
    public static final int S_IFDIR = 0040000;
    public static final int S_IFREG = 0100000;
    public static final int S_IFLNK = 0120000;

    /** Attributes with epoch times, 512-byte block count derived from size, no rdev. */
    public static Attr of(long ino, int mode, long size, int nlink, int uid, int gid) {
        return new Attr(ino, size, (size + 511) / 512, 0, 0, 0, 0, 0, 0, mode, nlink, uid, gid, 0, 4096);
    }

    /** The d_type of a directory entry for this mode: (mode & S_IFMT) >> 12. */
    public int direntType() {
        return (mode & S_IFMT) >>> 12;
    }
}

package castore.fuse.api;

/** {@code fuse_kstatfs}: block counts in units of {@code frsize}, inode counts, limits. */
public record StatFs(long blocks, long bfree, long bavail, long files, long ffree, int bsize, int namelen, int frsize) {
}

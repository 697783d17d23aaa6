package castore.fuse.api;

/**
 * Files the kernel reads by itself (FUSE passthrough, Linux 6.9+): a filesystem registers an
 * open descriptor of a local file holding exactly a file's bytes, and answers OPEN with
 * {@link OpenReply#passthrough}; reads, splice and mmap of that open file then go straight to
 * the backing file and never reach the filesystem. Registering needs CAP_SYS_ADMIN.
 *
 * <p>The kernel lets an inode be open either through the page cache or through one backing
 * file at a time: while any open file of a node uses one mode, every new open of that node must
 * use the same mode (and the same backing id), or the open fails with EIO.
 */
public interface BackingFiles {
    /**
     * Registers {@code fd} (any open descriptor of the file, O_RDONLY is enough) and returns its
     * backing id, greater than 0. The kernel holds its own reference: the caller may close
     * {@code fd} at once.
     *
     * @throws FuseException with the kernel's errno (EPERM without CAP_SYS_ADMIN)
     */
    int open(int fd) throws FuseException;

    /** Drops a backing id; open files already using it keep reading their backing file. */
    void close(int backingId);
}

package castore.fuse.api;

/**
 * The requests a {@link FileSystem} serves, named so the transport can ask
 * {@link FileSystem#mayBlock} where to run each one.
 */
public enum Operation {
    LOOKUP, GETATTR, READLINK, OPEN, READ, RELEASE, OPENDIR, READDIR, READDIRPLUS, RELEASEDIR,
    STATFS, GETXATTR, LISTXATTR, ACCESS, LSEEK
}

package castore.fs;

import castore.fuse.api.Attr;
import castore.model.B3Digest;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.Node;
import castore.model.SymlinkNode;

/** What the kernel sees of a node: its attributes, directory entry type and digest xattr. */
final class NodeAttributes {
    static final int DT_DIR = 4;
    static final int DT_REG = 8;
    static final int DT_LNK = 10;
    static final String DIRECTORY_DIGEST_XATTR = "user.tvix.castore.directory.digest";
    static final String BLOB_DIGEST_XATTR = "user.tvix.castore.blob.digest";

    private NodeAttributes() {
    }

    /**
     * Read-only modes, uid/gid 0, epoch times. Directories report nlink 1, the convention for
     * "subdirectory count unknown" (btrfs does the same): counting would mean fetching the
     * directory, and 2 would tell tools like find that there are no subdirectories.
     */
    static Attr attr(Inode inode) {
        // instanceof rather than a pattern switch on this per-entry path: a switch site is
        // linked through invokedynamic on first use, which costs milliseconds in a fresh mount.
        Node node = inode.node;
        if (node instanceof FileNode f) {
            return Attr.of(inode.ino, Attr.S_IFREG | (f.executable() ? 0555 : 0444), f.size(), 1, 0, 0);
        }
        if (node instanceof DirectoryNode d) {
            return Attr.of(inode.ino, Attr.S_IFDIR | 0555, d.size(), 1, 0, 0);
        }
        if (node instanceof SymlinkNode s) {
            return Attr.of(inode.ino, Attr.S_IFLNK | 0444, s.target().size(), 1, 0, 0);
        }
        return Attr.of(inode.ino, Attr.S_IFDIR | 0555, 0, 1, 0, 0); // the mount root
    }

    static int direntType(Node node) {
        return node instanceof FileNode ? DT_REG : node instanceof DirectoryNode ? DT_DIR : DT_LNK;
    }

    /** The one extended attribute a node has (tvix's names), or null (symlinks, the mount root). */
    static String digestXattr(Node node) {
        return switch (node) {
            case DirectoryNode d -> DIRECTORY_DIGEST_XATTR;
            case FileNode f -> BLOB_DIGEST_XATTR;
            case null, default -> null;
        };
    }

    static B3Digest digestOf(Node node) {
        return switch (node) {
            case DirectoryNode d -> d.digest();
            case FileNode f -> f.digest();
            default -> throw new IllegalArgumentException("no digest: " + node);
        };
    }
}

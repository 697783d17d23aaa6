package castore.fs;

import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.Node;
import castore.model.SymlinkNode;

/**
 * st_ino values derived from content: 64 bits of the digest (or, for symlinks, of the BLAKE3 of
 * the target), with a different mix per kind so that a blob whose bytes happen to encode a
 * Directory, or an executable and a plain copy of one blob, get different numbers. Identical
 * content thus has the same inode number everywhere and for the life of the mount, even after the
 * kernel forgot it, and a directory listing can report it without allocating anything.
 */
final class InodeNumbers {
    /** The mount root's st_ino; derived numbers never take it (nor 0). */
    static final long ROOT = 1;

    private static final long FILE = 0x9e3779b97f4a7c15L;
    private static final long EXECUTABLE = 0xc2b2ae3d27d4eb4fL;
    private static final long DIRECTORY = 0x165667b19e3779f9L;
    private static final long SYMLINK = 0x27d4eb2f165667c5L;

    private InodeNumbers() {
    }

    static long of(Node node) {
        // instanceof, not a pattern switch: this runs per new inode from the first request on,
        // before the JIT has linked a switch's invokedynamic site (see NodeAttributes.attr).
        long n;
        if (node instanceof FileNode f) {
            n = first64(f.digest()) ^ (f.executable() ? EXECUTABLE : FILE);
        } else if (node instanceof DirectoryNode d) {
            n = first64(d.digest()) ^ DIRECTORY;
        } else {
            n = first64(Blake3.digest(((SymlinkNode) node).target().toByteArray())) ^ SYMLINK;
        }
        return n == 0 || n == ROOT ? n + 2 : n;
    }

    private static long first64(B3Digest digest) {
        long v = 0;
        for (int i = 0; i < Long.BYTES; i++) {
            v = v << 8 | (digest.byteAt(i) & 0xff);
        }
        return v;
    }
}

package castore.fs;

import castore.model.Directory;
import castore.model.FileNode;
import castore.model.Node;
import castore.service.BlobService;

/**
 * Read-ahead across the files of one directory: when a reader opens a second file of a
 * directory after another one shortly before it in name order (a tree read by {@code cp -r},
 * {@code tar}, {@code rsync}, a build reading headers), the blob service is told that the next
 * files will be read ({@link BlobService#willRead}), up to {@value #FILES} files or
 * {@value #BYTES} bytes past the one opened, and kept that far ahead as the reader goes on. A
 * remote store's cache then fetches them in the background while the reader reads the one before:
 * a cold tree read over a daemon waited for one round trip per file. A local store ignores the
 * hints. A reader that opens files of a directory at random, or one file, hints nothing.
 *
 * <p>One per directory inode, made at its first file open; its state is a few ints.
 */
final class FilesAhead {
    /** Files hinted past the one opened, at most. */
    static final int FILES = 16;
    /** Bytes of files hinted past the one opened, at most (a directory of large files hints fewer). */
    static final long BYTES = 8L << 20;
    /** How far past the previous open a next one may be and still follow it (entries between: subdirectories, files read in parallel). */
    static final int GAP = 8;

    // Guarded by this.
    private int lastOpened = -1;
    private int hintedUpTo = -1;

    /**
     * Entry {@code index} of {@code listing} was opened: hints the files ahead of it if it follows
     * the previous open of this directory.
     */
    void opened(Directory listing, int index, BlobService blobs) {
        int from;
        int to;
        synchronized (this) {
            boolean follows = lastOpened >= 0 && index > lastOpened && index - lastOpened <= GAP;
            lastOpened = index;
            if (!follows) {
                return;
            }
            from = Math.max(index + 1, hintedUpTo + 1);
            to = end(listing, index);
            if (from > to) {
                return;
            }
            hintedUpTo = to;
        }
        for (int i = from; i <= to; i++) {
            if (listing.node(i) instanceof FileNode file) {
                blobs.willRead(file.digest(), file.size());
            }
        }
    }

    /** The last entry within {@value #FILES} files and {@value #BYTES} bytes past {@code index}. */
    private static int end(Directory listing, int index) {
        int files = 0;
        long bytes = 0;
        int last = index;
        for (int i = index + 1; i < listing.entryCount() && files < FILES; i++) {
            Node node = listing.node(i);
            if (node instanceof FileNode file) {
                if (bytes + file.size() > BYTES && files > 0) {
                    break;
                }
                bytes += file.size();
                files++;
            }
            last = i;
        }
        return last;
    }
}

package castore.fs;

import castore.model.Directory;
import castore.model.FileNode;
import castore.model.Node;
import castore.service.BlobService;
import castore.service.ChunkMeta;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;

/**
 * Read-ahead across the files of one directory: when a reader opens the first file of a
 * directory in name order, or a file after another one shortly before it (a tree read by
 * {@code cp -r}, {@code tar}, {@code rsync}, a build reading headers), the blob service is told that the next
 * files will be read ({@link BlobService#willRead(java.util.List)}), up to {@value #FILES} files
 * or {@value #BYTES} bytes past the one opened. A remote store's cache then fetches them in the
 * background while the reader reads the one before: a cold tree read over a daemon waited for
 * one round trip per file. The window is topped up in batches, once the files hinted and not yet
 * opened are half of it or fewer, so the cache can fetch each batch with one request (a hint per
 * open made a request per file). A local store ignores the hints. A reader that opens files of a
 * directory at random, or one file other than the first, hints nothing.
 *
 * <p>One per directory inode, made at its first file open; its state is an int and a bit per
 * entry, once a run has started.
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
    /** Entries hinted so far: each file is hinted once, whatever order its directory is read in. */
    private BitSet hinted;

    /**
     * Entry {@code index} of {@code listing} was opened: hints the files ahead of it if it follows
     * the previous open of this directory.
     */
    void opened(Directory listing, int index, BlobService blobs) {
        List<ChunkMeta> next;
        synchronized (this) {
            // A run starts at the directory's first file (tar, cp -r and rsync start there) or
            // at a file shortly after the one opened before.
            boolean follows = lastOpened >= 0 ? index > lastOpened && index - lastOpened <= GAP : index == firstFile(listing);
            lastOpened = index;
            if (!follows) {
                return;
            }
            if (hinted == null) {
                hinted = new BitSet(listing.entryCount());
            }
            int to = end(listing, index);
            int window = 0;
            int pending = 0;
            for (int i = index + 1; i <= to; i++) {
                if (listing.node(i) instanceof FileNode) {
                    window++;
                    if (hinted.get(i)) {
                        pending++;
                    }
                }
            }
            if (2 * pending > window) {
                return; // more than half the window is hinted already
            }
            // Hints made elsewhere in the directory (a symlink's target is opened where it is)
            // count as hinted; the window's other files are this batch.
            next = new ArrayList<>(window - pending);
            for (int i = index + 1; i <= to; i++) {
                if (listing.node(i) instanceof FileNode file && !hinted.get(i)) {
                    hinted.set(i);
                    next.add(new ChunkMeta(file.digest(), file.size()));
                }
            }
        }
        if (!next.isEmpty()) {
            blobs.willRead(next);
        }
    }

    /** The index of the first file of {@code listing}, -1 if it has none. */
    private static int firstFile(Directory listing) {
        for (int i = 0; i < listing.entryCount(); i++) {
            if (listing.node(i) instanceof FileNode) {
                return i;
            }
        }
        return -1;
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

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
 * Read-ahead across the files of one directory, two ways.
 * <ul>
 * <li><b>In name order.</b> When a reader opens the first file of a directory in name order, or a
 * file after another one shortly before it (a tree read by {@code cp -r}, {@code tar},
 * {@code rsync}), the blob service is told that the next files will be read
 * ({@link BlobService#willRead(java.util.List)}), up to {@value #FILES} files or {@value #BYTES}
 * bytes past the one opened.
 * <li><b>In any order.</b> Once a reader has opened a quarter of a directory's files (at least 2,
 * at most {@value #FILES}) in no order (a {@code find | xargs cat} of a tree copied from a disk,
 * a build reading headers), the directory is taken to be read whole: its files not yet opened
 * are hinted, starting after the one opened and wrapping round.
 * </ul>
 * A remote store's cache then fetches them in the background while the reader reads the one
 * before: a cold tree read over a daemon waited for one round trip per file. Hints are topped up
 * in batches, once the files hinted and not yet opened are half of the window or fewer, so the
 * cache can fetch each batch with one request (a hint per open made a request per file). So a
 * reader that stops early leaves at most one window of files fetched for nothing. Each file is
 * hinted once. A local store ignores the hints.
 *
 * <p>One per directory inode, made at its first file open; its state is a few ints and two bits
 * per entry.
 */
final class FilesAhead {
    /** Files in a window of hints, at most: past the one opened in name order, hinted and not yet opened in any order. */
    static final int FILES = 16;
    /** Bytes of files in a window of hints, at most (a directory of large files hints fewer). */
    static final long BYTES = 8L << 20;
    /** How far past the previous open a next one may be and still follow it (entries between: subdirectories, files read in parallel). */
    static final int GAP = 8;

    // Guarded by this.
    private int lastOpened = -1;
    private int fileCount = -1;
    private int firstFile = -1;
    /** Entries hinted so far: each file is hinted once, whatever order its directory is read in. */
    private BitSet hinted;
    /** Entries opened so far. */
    private BitSet opened;
    private int openedCount;
    /** Files hinted and not yet opened, and their bytes. */
    private int pendingFiles;
    private long pendingBytes;

    /**
     * Entry {@code index} of {@code listing} was opened: hints the files ahead of it if it follows
     * the previous open of this directory, or the directory's other files if it is being read whole.
     */
    void opened(Directory listing, int index, BlobService blobs) {
        List<ChunkMeta> next;
        synchronized (this) {
            if (opened == null) {
                count(listing);
                opened = new BitSet(listing.entryCount());
                hinted = new BitSet(listing.entryCount());
            }
            if (!opened.get(index)) {
                opened.set(index);
                openedCount++;
                if (hinted.get(index)) {
                    pendingFiles--;
                    pendingBytes -= size(listing, index);
                }
            }
            // A run starts at the directory's first file (tar, cp -r and rsync start there) or
            // at a file shortly after the one opened before.
            boolean follows = lastOpened >= 0 ? index > lastOpened && index - lastOpened <= GAP : index == firstFile;
            lastOpened = index;
            if (follows) {
                next = inNameOrder(listing, index);
            } else if (openedCount >= Math.max(2, Math.min(FILES, fileCount / 4))) {
                next = inAnyOrder(listing, index);
            } else {
                return;
            }
        }
        if (!next.isEmpty()) {
            blobs.willRead(next);
        }
    }

    /** The files within the window past {@code index} not yet hinted, if at most half the window is hinted. */
    private List<ChunkMeta> inNameOrder(Directory listing, int index) {
        int to = end(listing, index);
        int window = 0;
        int pending = 0;
        for (int i = index + 1; i <= to; i++) {
            if (listing.node(i) instanceof FileNode) {
                window++;
                if (hinted.get(i) || opened.get(i)) {
                    pending++;
                }
            }
        }
        if (2 * pending > window) {
            return List.of(); // more than half the window is hinted already
        }
        // Hints made elsewhere in the directory (a symlink's target is opened where it is)
        // count as hinted; the window's other files are this batch.
        List<ChunkMeta> next = new ArrayList<>(window - pending);
        for (int i = index + 1; i <= to; i++) {
            if (listing.node(i) instanceof FileNode file && !hinted.get(i) && !opened.get(i)) {
                hint(next, i, file);
            }
        }
        return next;
    }

    /**
     * The directory's files not yet hinted or opened, from {@code index} on and round, up to
     * the window less what is pending, once at most half the window is pending.
     */
    private List<ChunkMeta> inAnyOrder(Directory listing, int index) {
        if (2 * pendingFiles > FILES || 2 * pendingBytes > BYTES) {
            return List.of();
        }
        List<ChunkMeta> next = new ArrayList<>();
        int entries = listing.entryCount();
        for (int step = 1; step < entries && pendingFiles < FILES; step++) {
            int i = (index + step) % entries;
            if (listing.node(i) instanceof FileNode file && !hinted.get(i) && !opened.get(i)) {
                if (pendingBytes + file.size() > BYTES && pendingFiles > 0) {
                    break;
                }
                hint(next, i, file);
            }
        }
        return next;
    }

    private void hint(List<ChunkMeta> batch, int index, FileNode file) {
        hinted.set(index);
        pendingFiles++;
        pendingBytes += file.size();
        batch.add(new ChunkMeta(file.digest(), file.size()));
    }

    private static long size(Directory listing, int index) {
        return listing.node(index) instanceof FileNode file ? file.size() : 0;
    }

    /** Counts the files of {@code listing} and finds the first one. */
    private void count(Directory listing) {
        fileCount = 0;
        for (int i = 0; i < listing.entryCount(); i++) {
            if (listing.node(i) instanceof FileNode) {
                if (fileCount++ == 0) {
                    firstFile = i;
                }
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

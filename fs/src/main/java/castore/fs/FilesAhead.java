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
 * are hinted, starting after the one opened and wrapping round, up to twice as many files and
 * bytes as the reader has opened there (at least {@value #FILES} files and {@value #BYTES}
 * bytes), at most {@value #BATCH} files at a time. In a large directory read at random, a
 * reader's next file is rarely among a few hinted ones; a window that grows with what was
 * read brings most of it ahead, and a reader that stops early leaves at most twice what it read
 * fetched for nothing.
 * </ul>
 * A remote store's cache then fetches them in the background while the reader reads the one
 * before: a cold tree read over a daemon waited for one round trip per file. Hints are topped up
 * in batches, once the files hinted and not yet opened are half of the window or fewer, so the
 * cache can fetch each batch with one request (a hint per open made a request per file). Each
 * file is hinted once. A local store ignores the hints.
 *
 * <p>One per directory inode, made at its first file open; its state is a few numbers and two
 * bits per entry.
 */
final class FilesAhead {
    /** Files in a window of hints, at most: past the one opened in name order, hinted and not yet opened in any order. */
    static final int FILES = 16;
    /** Bytes of files in a window of hints, at most (a directory of large files hints fewer). */
    static final long BYTES = 8L << 20;
    /** How far past the previous open a next one may be and still follow it (entries between: subdirectories, files read in parallel). */
    static final int GAP = 8;
    /** Files one open hints at most in any order (a request's worth; the next opens top up). */
    static final int BATCH = 64;

    // Guarded by this.
    private int lastOpened = -1;
    private int fileCount;
    private int firstFile = -1;
    /** Entries opened so far. */
    private BitSet opened;
    /**
     * Entries hinted or opened so far, and those that are no files: each file is hinted once,
     * whatever order its directory is read in, and a search for the next ones to hint skips
     * what is taken (a scan of a large directory at every open made a read of it quadratic).
     */
    private BitSet taken;
    /** Files neither hinted nor opened. */
    private int free;
    private int openedCount;
    private long openedBytes;
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
                start(listing);
            }
            if (!opened.get(index) && listing.node(index) instanceof FileNode file) {
                opened.set(index);
                openedCount++;
                openedBytes += file.size();
                if (taken.get(index)) { // hinted before
                    pendingFiles--;
                    pendingBytes -= file.size();
                } else {
                    taken.set(index);
                    free--;
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
                if (taken.get(i)) {
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
        for (int i = taken.nextClearBit(index + 1); i <= to; i = taken.nextClearBit(i + 1)) {
            hint(next, i, (FileNode) listing.node(i));
        }
        return next;
    }

    /**
     * The directory's files not yet hinted or opened, from {@code index} on and round, up to
     * the window less what is pending, once at most half the window is pending; the window is
     * twice what was opened, at least {@value #FILES} files and {@value #BYTES} bytes.
     */
    private List<ChunkMeta> inAnyOrder(Directory listing, int index) {
        long windowFiles = Math.max(FILES, 2L * openedCount);
        long windowBytes = Math.max(BYTES, 2 * openedBytes);
        if (2 * pendingFiles > windowFiles || 2 * pendingBytes > windowBytes) {
            return List.of();
        }
        List<ChunkMeta> next = new ArrayList<>();
        int i = index;
        while (free > 0 && pendingFiles < windowFiles && next.size() < BATCH) {
            i = taken.nextClearBit(i + 1);
            if (i >= listing.entryCount()) {
                i = taken.nextClearBit(0); // round: a free file is there
            }
            FileNode file = (FileNode) listing.node(i);
            if (pendingBytes + file.size() > windowBytes && pendingFiles > 0) {
                break;
            }
            hint(next, i, file);
        }
        return next;
    }

    private void hint(List<ChunkMeta> batch, int index, FileNode file) {
        taken.set(index);
        free--;
        pendingFiles++;
        pendingBytes += file.size();
        batch.add(new ChunkMeta(file.digest(), file.size()));
    }

    /** Counts the files of {@code listing}, finds the first one and marks the other entries taken. */
    private void start(Directory listing) {
        int entries = listing.entryCount();
        opened = new BitSet(entries);
        taken = new BitSet(entries);
        for (int i = 0; i < entries; i++) {
            if (listing.node(i) instanceof FileNode) {
                if (fileCount++ == 0) {
                    firstFile = i;
                }
            } else {
                taken.set(i);
            }
        }
        free = fileCount;
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

package castore.fs;

import castore.fuse.api.BackingFiles;
import castore.fuse.api.Errno;
import castore.fuse.api.FuseException;
import castore.io.Libc;
import castore.model.B3Digest;
import java.io.IOException;
import java.util.HashMap;
import java.util.Map;

/**
 * Decides, per OPEN of a file big enough to have a {@link PlainCopies plain copy}, whether the
 * kernel reads it from that copy (FUSE passthrough) or through its page cache and READ requests.
 *
 * <p>The kernel's rule: while a node has open files, they all use the page cache, or all the same
 * backing file; an open that breaks it fails with EIO. So the first open of a node with no open
 * files decides, and later opens follow it until the last one is released. A node opened through
 * the page cache whose blob opened ({@link #openedThroughPageCache}: a missing blob is reported by
 * the open alone) asks for a copy when its last open file is released, and a later first open
 * gets it.
 */
final class PassthroughOpens {
    private final BackingFiles backing;
    private final PlainCopies copies;
    private final ProblemLog problems;
    /** Open files per node, and the backing id they use (0: page cache). Guarded by this. */
    private final Map<Long, Opens> byNode = new HashMap<>();
    /** Set when the kernel refuses backing files (EPERM: no CAP_SYS_ADMIN): stop asking. */
    private volatile boolean refused;

    private static final class Opens {
        final int backingId;
        int count;
        /** Set when an open through the page cache found the blob: a copy is asked for at the last release. */
        B3Digest wanted;
        long wantedSize;

        Opens(int backingId) {
            this.backingId = backingId;
        }
    }

    PassthroughOpens(BackingFiles backing, PlainCopies copies, ProblemLog problems) {
        this.backing = backing;
        this.copies = copies;
        this.problems = problems;
    }

    /** Whether files of {@code size} bytes are decided here (smaller ones are never copied). */
    boolean covers(long size) {
        return size >= copies.minBytes();
    }

    /**
     * Registers an open of {@code nodeId} (content {@code digest}, {@code size} bytes) and returns
     * the backing id it must be answered with, or 0 for the page cache. Every call is paired
     * with one {@link #release}.
     */
    synchronized int open(long nodeId, B3Digest digest, long size) {
        Opens opens = byNode.get(nodeId);
        if (opens == null) {
            opens = new Opens(refused ? 0 : backingIdOfCopy(digest, size));
            byNode.put(nodeId, opens);
        }
        opens.count++;
        return opens.backingId;
    }

    /**
     * Node {@code nodeId} was opened through the page cache and its blob found: its copy is asked
     * for when its last open file is released. Not before: a copy made while the file is being
     * read fetches, hashes and writes the same blob beside the reader (over a remote store it
     * took the idle moments of a cold 1 GiB read and doubled the mount's CPU), and no open of the
     * node could use it before then anyway.
     */
    synchronized void openedThroughPageCache(long nodeId, B3Digest digest, long size) {
        Opens opens = byNode.get(nodeId);
        if (opens != null) {
            opens.wanted = digest;
            opens.wantedSize = size;
        }
    }

    /**
     * Ends one open of {@code nodeId}; the last one drops the node's backing id, or asks for the
     * copy its page-cache opens wanted (unless the kernel refuses backing files: copies would be
     * of no use).
     */
    void release(long nodeId) {
        int dropped = 0;
        B3Digest wanted = null;
        long wantedSize = 0;
        synchronized (this) {
            Opens opens = byNode.get(nodeId);
            if (opens != null && --opens.count == 0) {
                byNode.remove(nodeId);
                dropped = opens.backingId;
                wanted = opens.wanted;
                wantedSize = opens.wantedSize;
            }
        }
        if (dropped > 0) {
            backing.close(dropped);
        } else if (wanted != null && !refused) {
            copies.request(wanted, wantedSize);
        }
    }

    /** Nodes with open files (tests). */
    synchronized int openNodes() {
        return byNode.size();
    }

    /** The kernel takes no backing file from this mount: stop using and making copies. */
    private void refuse() {
        refused = true;
        copies.stopRequests();
    }

    private int backingIdOfCopy(B3Digest digest, long size) {
        int fd;
        try {
            fd = copies.open(digest, size);
        } catch (IOException e) {
            problems.report(digest, "plain copy of blob " + digest + " unusable, reading it through the store: " + e.getMessage());
            return 0;
        }
        if (fd < 0) {
            return 0;
        }
        try {
            return backing.open(fd);
        } catch (FuseException e) {
            if (e.errno() == Errno.EPERM) {
                refuse();
                problems.report(PassthroughOpens.class, "the kernel refuses passthrough files without CAP_SYS_ADMIN;"
                        + " files are read through the page cache");
            } else if (e.errno() == Errno.ELOOP) {
                // The copies' filesystem is itself stacked (overlayfs, ...): true of every copy there.
                refuse();
                problems.report(PassthroughOpens.class, "the kernel refuses passthrough files on a stacked filesystem"
                        + " (such as overlayfs), and the plain copies are on one; files are read through the page cache");
            } else {
                problems.report(digest, "the kernel refused the plain copy of blob " + digest + " as a passthrough file ("
                        + Libc.strerror(e.errno()) + "); reading it through the page cache");
            }
            return 0;
        } finally {
            Libc.close(fd);
        }
    }
}

package castore.fs;

import castore.model.Directory;
import castore.model.Node;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.CompletableFuture;

/**
 * One node id handed to the kernel. It lives in the {@link InodeTable} while the kernel holds
 * lookup references to it or a handle is open on it; then it is dropped, and a later lookup of
 * the same content gets a fresh node id (node ids are never reused, so generation is always 0).
 */
final class Inode {
    private static final VarHandle LISTING;

    static {
        try {
            LISTING = MethodHandles.lookup().findVarHandle(Inode.class, "listing", CompletableFuture.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    final long id;
    /** The table key; null for the mount root, which is never dropped. */
    final Object key;
    /** The castore node; null for the mount root. */
    final Node node;
    /** st_ino: derived from the content, so identical content shows the same inode number. */
    final long ino;
    /** st_ino of the directory this one was looked up in, for "..". */
    final long parentIno;

    // Guarded by this.
    private long lookups;
    private int opens;
    private boolean dropped;

    /** Directories only: the loaded listing, or the load in progress; null until first needed. */
    @SuppressWarnings("unused") // accessed through LISTING
    private volatile CompletableFuture<Directory> listing;

    /** Directories only: a READDIRPLUS reply gave out some of its entries without their lookup. */
    private volatile boolean listedBare;

    /**
     * Files only: the directory inode and entry index of the latest lookup of this file (an
     * inode shared by identical files keeps the latest place). For {@link FilesAhead}; racy
     * writes are fine, as for any hint.
     */
    Inode lookedUpIn;
    int indexInParent = -1;

    /** Directories only: read-ahead across its files, made at the first file opened from it. */
    private volatile FilesAhead filesAhead;

    FilesAhead filesAhead() {
        FilesAhead ahead = filesAhead;
        if (ahead == null) {
            synchronized (this) {
                ahead = filesAhead;
                if (ahead == null) {
                    ahead = new FilesAhead();
                    filesAhead = ahead;
                }
            }
        }
        return ahead;
    }

    Inode(long id, Object key, Node node, long ino, long parentIno) {
        this.id = id;
        this.key = key;
        this.node = node;
        this.ino = ino;
        this.parentIno = parentIno;
    }

    /** Adds one lookup reference; false if this inode was already dropped (look it up afresh). */
    synchronized boolean reference() {
        if (dropped) {
            return false;
        }
        lookups++;
        return true;
    }

    /** Removes references; true if that made this inode unused, so the caller must drop it from the table. */
    synchronized boolean forget(long n) {
        lookups = Math.max(0, lookups - n);
        return dropIfUnused();
    }

    /** Lookup references and open handles, for a hand-over: {lookups, opens}. */
    synchronized long[] counts() {
        return new long[]{lookups, opens};
    }

    /** Sets the counts the process that handed the mount over had (a fresh inode, not yet shared). */
    synchronized void restoreCounts(long lookups, int opens) {
        this.lookups = lookups;
        this.opens = opens;
    }

    synchronized void opened() {
        opens++;
    }

    /** True if closing this handle made the inode unused. */
    synchronized boolean closed() {
        opens = Math.max(0, opens - 1);
        return dropIfUnused();
    }

    private boolean dropIfUnused() {
        if (lookups == 0 && opens == 0 && !dropped && key != null) {
            dropped = true;
            return true;
        }
        return false;
    }

    void markListedBare() {
        if (!listedBare) {
            listedBare = true;
        }
    }

    boolean listedBare() {
        return listedBare;
    }

    @SuppressWarnings("unchecked")
    CompletableFuture<Directory> listing() {
        return (CompletableFuture<Directory>) LISTING.getVolatile(this);
    }

    boolean casListing(CompletableFuture<Directory> expected, CompletableFuture<Directory> value) {
        return LISTING.compareAndSet(this, expected, value);
    }
}

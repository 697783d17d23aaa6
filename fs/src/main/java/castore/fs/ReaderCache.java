package castore.fs;

import castore.fuse.api.FuseException;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Open blobs by node id, for reads that come without a file handle (zero-message opens): the
 * kernel opens files itself, so each READ finds its reader here. The cache keeps the most
 * recently read {@code capacity} files; an evicted one is closed once no read uses it, and opened
 * again if read again (the page cache answers most re-reads anyway).
 */
final class ReaderCache {
    /** An open file and how many reads are using it; guarded by the cache's lock. */
    private static final class Slot {
        final OpenFile file;
        int users;

        Slot(OpenFile file) {
            this.file = file;
        }
    }

    /** Opens the blob of an inode; called outside the lock, so a slow open blocks nobody else. */
    interface Opener {
        OpenFile open(Inode inode) throws FuseException;
    }

    private final int capacity;
    /** Open files by node id, least recently used first. */
    private final LinkedHashMap<Long, Slot> slots = new LinkedHashMap<>(16, 0.75f, true);
    /** Files evicted while reads were using them, closed by their last release. */
    private final Map<OpenFile, Slot> evictedSlots = new IdentityHashMap<>();

    ReaderCache(int capacity) {
        this.capacity = capacity;
    }

    /** The open file of {@code inode}, opened if needed; give it back with {@link #release}. */
    OpenFile acquire(Inode inode, Opener opener) throws FuseException {
        synchronized (this) {
            Slot slot = slots.get(inode.id);
            if (slot != null) {
                slot.users++;
                return slot.file;
            }
        }
        OpenFile opened = opener.open(inode);
        List<OpenFile> toClose = new ArrayList<>();
        OpenFile result;
        synchronized (this) {
            Slot slot = slots.get(inode.id);
            if (slot == null) {
                slot = new Slot(opened);
                slots.put(inode.id, slot);
                evictBeyondCapacity(toClose);
            } else {
                toClose.add(opened); // another read opened it meanwhile
            }
            slot.users++;
            result = slot.file;
        }
        toClose.forEach(ReaderCache::closeQuietly);
        return result;
    }

    void release(OpenFile file) {
        boolean close = false;
        synchronized (this) {
            Slot slot = slots.get(file.inode.id);
            if (slot != null && slot.file == file) {
                slot.users--;
            } else {
                slot = evictedSlots.get(file);
                if (slot != null && --slot.users == 0) {
                    evictedSlots.remove(file);
                    close = true;
                }
            }
        }
        if (close) {
            closeQuietly(file);
        }
    }

    private void evictBeyondCapacity(List<OpenFile> toClose) {
        var it = slots.values().iterator();
        while (slots.size() > capacity && it.hasNext()) {
            Slot eldest = it.next();
            it.remove();
            if (eldest.users == 0) {
                toClose.add(eldest.file);
            } else {
                evictedSlots.put(eldest.file, eldest);
            }
        }
    }

    synchronized int size() {
        return slots.size();
    }

    /** Closes everything (the session ended). */
    void clear() {
        List<OpenFile> all = new ArrayList<>();
        synchronized (this) {
            slots.values().forEach(s -> all.add(s.file));
            slots.clear();
            all.addAll(evictedSlots.keySet());
            evictedSlots.clear();
        }
        all.forEach(ReaderCache::closeQuietly);
    }

    private static void closeQuietly(OpenFile file) {
        try {
            file.close();
        } catch (Exception ignored) {
            // Closing a reader of immutable data: nothing to recover.
        }
    }
}

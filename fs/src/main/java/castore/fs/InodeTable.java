package castore.fs;

import castore.fuse.api.FileSystem;
import castore.model.Node;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The node ids the kernel currently holds, found by id (every request) and by content key
 * (lookups, so identical content shares one node id and one page cache). Entries are removed
 * when the kernel forgets them and no handle is open, which keeps memory bounded on huge trees.
 */
final class InodeTable {
    private final AtomicLong nextId = new AtomicLong(FileSystem.ROOT_ID + 1);
    // Sized for a walk of tens of thousands of entries (a table of 128k slots, 512 KiB each):
    // growing a large table in a fresh JVM (interpreted rehashing) showed up in profiles of a cold walk.
    private final ConcurrentHashMap<Long, Inode> byId = new ConcurrentHashMap<>(1 << 16);
    private final ConcurrentHashMap<Object, Inode> byKey = new ConcurrentHashMap<>(1 << 16);

    /** The inode for {@code key}, created if absent, with one more lookup reference. */
    Inode reference(Object key, Node node, long parentIno) {
        while (true) {
            Inode inode = byKey.get(key);
            if (inode == null) {
                Inode created = new Inode(nextId.getAndIncrement(), key, node, InodeNumbers.of(node), parentIno);
                // Published by id first: once in byKey, another thread may hand its id to the kernel.
                byId.put(created.id, created);
                inode = byKey.putIfAbsent(key, created);
                if (inode == null) {
                    inode = created;
                } else {
                    byId.remove(created.id, created); // lost a race: that id was never handed out
                }
            }
            if (inode.reference()) {
                return inode;
            }
            // Dropped by a concurrent forget that has not removed it yet: remove it ourselves and retry.
            byKey.remove(key, inode);
        }
    }

    Inode get(long id) {
        return byId.get(id);
    }

    void forget(long id, long nlookup) {
        Inode inode = byId.get(id);
        if (inode != null && inode.forget(nlookup)) {
            remove(inode);
        }
    }

    void closed(Inode inode) {
        if (inode.closed()) {
            remove(inode);
        }
    }

    private void remove(Inode inode) {
        byKey.remove(inode.key, inode);
        byId.remove(inode.id, inode);
    }

    /** Every node id held, for a hand-over (taken with no request in flight). */
    java.util.Collection<Inode> all() {
        return byId.values();
    }

    /** The id the next new inode gets. */
    long nextId() {
        return nextId.get();
    }

    /** Puts an inode as another process held it (hand-over); later ids start past {@code nextId}. */
    void adopt(Inode inode, long nextId) {
        byId.put(inode.id, inode);
        byKey.put(inode.key, inode);
        this.nextId.accumulateAndGet(Math.max(nextId, inode.id + 1), Math::max);
    }

    int size() {
        return byId.size();
    }

    void clear() {
        byId.clear();
        byKey.clear();
    }
}

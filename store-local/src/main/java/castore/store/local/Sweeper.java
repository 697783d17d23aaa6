package castore.store.local;

import castore.model.B3Digest;
import castore.service.StoreMaintenance.SweepResult;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Garbage collection of packs, run under the exclusive writer lock. A pack whose entries are all
 * live stays as it is; a pack with dead or duplicate entries (and, when there are several, packs
 * too small to be worth keeping apart) is rewritten: its live entries are copied into new packs,
 * the new packs are published, and only then are the old files deleted. At every moment each
 * live object is in some published pack, and readers that still map a deleted pack keep reading
 * it (Linux frees an unlinked file when its last mapping goes).
 */
final class Sweeper {
    private static final System.Logger LOG = System.getLogger(Sweeper.class.getName());
    /** Packs below this size are merged when gc rewrites anything or finds two or more of them. */
    static final long SMALL_PACK = 64L << 20;

    private final StoreLayout layout;
    private final PackStore packs;
    private final long packSize;

    Sweeper(StoreLayout layout, PackStore packs, long packSize) {
        this.layout = layout;
        this.packs = packs;
        this.packSize = packSize;
    }

    private record Key(ObjectKind kind, B3Digest digest) {
    }

    SweepResult sweep(Set<B3Digest> liveBlobs, Set<B3Digest> liveDirectories) throws IOException {
        PackSet set = packs.packs();
        set.rescan();
        // A pack whose index cannot be read is invisible to the marking below: a live blob's
        // chunk list in it would leave that blob's chunks unmarked, and the sweep would rewrite
        // them away. An index fault is repairable (the pack's data is intact); a sweep past it
        // would make the loss permanent.
        if (!set.broken().isEmpty()) {
            throw new IOException("gc stopped, nothing deleted: pack(s) " + String.join(", ", set.broken().keySet())
                    + " cannot be read (" + set.broken().values().iterator().next() + "); `castore verify` names every problem");
        }
        Set<B3Digest> liveChunks = liveChunks(liveBlobs);

        List<Pack> keep = new ArrayList<>();
        List<Pack> rewrite = new ArrayList<>();
        List<Pack> small = new ArrayList<>();
        for (Pack p : set.packs()) {
            int dead = 0;
            for (int i = 0; i < p.count(); i++) {
                if (!isLive(p.entry(i), liveBlobs, liveDirectories, liveChunks)) {
                    dead++;
                }
            }
            if (dead > 0) {
                rewrite.add(p);
            } else if (p.packSize() < SMALL_PACK) {
                small.add(p);
            } else {
                keep.add(p);
            }
        }
        // A pack left alone keeps all it holds: one that repeats a kept pack's entries (two
        // processes stored the same data at once) is rewritten, which drops the repeats. Before,
        // duplicates in packs of 64 MiB or more whose entries were all live stayed for good.
        List<Pack> repeating = repeating(keep);
        keep.removeAll(repeating);
        rewrite.addAll(repeating);

        long removed = 0;
        long freed = 0;
        // Room first: a full disk is when gc is wanted most, and copying before deleting anything
        // failed there with ENOSPC and freed nothing, however much was garbage. Crash leftovers
        // and packs with nothing to copy (every live entry also in a kept pack) hold no live
        // object only they have, so they go before anything is written, and this process lets
        // go of their files at once (other processes' readers keep theirs until they rescan).
        for (Path orphan : LocalStore.orphans(layout.packs())) {
            freed += delete(orphan);
        }
        int emptied = 0;
        // Small packs hold their entries whether merged or not (a merge that fails leaves them), so
        // what they hold need not be copied out of a pack of garbage either.
        List<Pack> holders = new ArrayList<>(keep);
        holders.addAll(small);
        for (var it = rewrite.iterator(); it.hasNext();) {
            Pack p = it.next();
            if (nothingToCopy(p, holders, liveBlobs, liveDirectories, liveChunks)) {
                it.remove();
                emptied++;
                removed += p.count();
                freed += delete(p.indexPath()) + delete(p.packPath());
                p.release();
            }
        }
        // Small packs are merged when that leaves fewer packs: decided after the packs above went,
        // so one small pack is not copied into one new pack because a pack of garbage was there.
        List<Pack> merge = List.of();
        if (rewrite.size() + small.size() >= 2) {
            merge = small;
        } else {
            keep.addAll(small);
            List<Pack> repeatingSmall = repeating(keep); // a small pack kept may repeat a kept pack too
            keep.removeAll(repeatingSmall);
            rewrite.addAll(repeatingSmall);
        }
        Set<Key> copied = new HashSet<>();
        Copy needed;
        try {
            needed = copy(rewrite, keep, liveBlobs, liveDirectories, liveChunks, copied, emptied);
        } catch (WriteFailed e) {
            long stillFreed = freed - e.partial.addTo(set); // its packs are published; the packs they copy from stay
            throw new IOException("gc stopped, nothing live deleted" + (stillFreed > 0 ? " (" + stillFreed
                    + " bytes of garbage freed)" : "") + ": " + e.getMessage(), e.getCause());
        }
        removed += needed.removed();
        freed -= needed.addTo(set);
        // New packs are durable and published; now the old ones can go, index first.
        for (Pack p : rewrite) {
            freed += delete(p.indexPath()) + delete(p.packPath());
        }
        // Merging only saves lookups: when it cannot be written (a full disk), the small packs
        // stay as they are and gc still succeeds with what it freed. It used to fail (exit 5)
        // with the write's error after freeing packs of garbage
        // (LocalStoreTest.gcOnADiskTooFullToMergeSmallPacksFreesTheGarbageAndSucceeds).
        try {
            Copy merged = copy(merge, keep, liveBlobs, liveDirectories, liveChunks, copied, emptied);
            removed += merged.removed();
            freed -= merged.addTo(set);
            for (Pack p : merge) {
                freed += delete(p.indexPath()) + delete(p.packPath());
            }
        } catch (WriteFailed e) {
            freed -= e.partial.addTo(set); // packs it did publish: copies of entries still in the small packs
            LOG.log(System.Logger.Level.WARNING, "small packs not merged (" + e.getCause().getMessage() + "); gc again merges them");
        }
        StoreLayout.syncDirectory(layout.packs());
        set.rescan();
        return new SweepResult(removed, freed);
    }

    /** What one copy phase did: entries it left out, packs it published. */
    private record Copy(long removed, List<Pack> written) {
        /** Adds the written packs to {@code set}; returns their size on disk. */
        long addTo(PackSet set) throws IOException {
            long size = 0;
            for (Pack p : written) {
                set.add(p);
                size += Files.size(p.packPath()) + Files.size(p.indexPath());
            }
            return size;
        }
    }

    /** A copy phase failed writing; {@code partial} holds the packs it published before. */
    private static final class WriteFailed extends IOException {
        final Copy partial;

        WriteFailed(Copy partial, IOException cause) {
            super(cause.getMessage(), cause);
            this.partial = partial;
        }
    }

    /**
     * Copies the live entries of {@code from} that no kept pack and no earlier copy holds into new
     * packs, each published (durable) before this returns; {@code from} may be deleted after.
     * A failed read stops gc (a live entry that cannot be copied); a failed write throws
     * {@link WriteFailed}, whose packs published so far must still be added to the set.
     */
    private Copy copy(List<Pack> from, List<Pack> keep, Set<B3Digest> liveBlobs, Set<B3Digest> liveDirectories,
                      Set<B3Digest> liveChunks, Set<Key> copied, int emptied) throws IOException {
        long removed = 0;
        List<Pack> written = new ArrayList<>();
        PackWriter out = null;
        try {
            for (Pack p : from) {
                for (int i = 0; i < p.count(); i++) {
                    Location l = p.entry(i);
                    if (!isLive(l, liveBlobs, liveDirectories, liveChunks) || inKept(keep, l) || !copied.add(new Key(l.kind(), l.digest()))) {
                        removed++;
                        continue;
                    }
                    byte[] payload;
                    try {
                        payload = p.read(l);
                    } catch (IOException e) {
                        throw new IOException("gc stopped, " + (emptied == 0 ? "nothing deleted" : "nothing live deleted (only "
                                + emptied + " pack(s) of garbage)") + ": cannot copy live " + l.describe() + ": " + e.getMessage(), e);
                    }
                    try {
                        if (out == null) {
                            out = PackWriter.create(layout.packs(), packs.sync());
                        }
                        out.append(l.kind(), l.digest(), payload, 0, payload.length, l.aux());
                        if (out.size() >= packSize || out.count() >= PackWriter.MAX_ENTRIES) {
                            written.add(out.publish());
                            out = null;
                        }
                    } catch (IOException e) {
                        throw new WriteFailed(new Copy(removed, written), e);
                    }
                }
            }
            if (out != null) {
                try {
                    written.add(out.publish());
                } catch (IOException e) {
                    throw new WriteFailed(new Copy(removed, written), e);
                }
                out = null;
            }
        } finally {
            if (out != null) {
                out.discard(); // not published: its file goes, the room with it
            }
        }
        return new Copy(removed, written);
    }

    /** Chunks of live blobs: the blob itself when it is one chunk, else every chunk its list names. */
    private Set<B3Digest> liveChunks(Set<B3Digest> liveBlobs) throws IOException {
        Set<B3Digest> chunks = new HashSet<>();
        for (B3Digest blob : liveBlobs) {
            if (packs.findKnown(ObjectKind.CHUNK, blob) != null) {
                chunks.add(blob);
            }
            Location list = packs.findKnown(ObjectKind.BLOB, blob);
            if (list != null) {
                try {
                    for (B3Digest d : ChunkList.decode(list.source().read(list), list).digests()) {
                        chunks.add(d);
                    }
                } catch (IOException e) {
                    throw new IOException("gc stopped, nothing deleted: " + e.getMessage(), e);
                }
            }
        }
        return chunks;
    }

    /**
     * The packs of {@code packs} holding an entry (kind and digest) that an earlier one of them, or
     * an earlier entry of their own, holds too. Digest prefixes of all entries are sorted to find
     * the few that repeat (8 bytes per entry, no object per entry); only those are looked up.
     */
    static List<Pack> repeating(List<Pack> packs) {
        long[] prefixes = new long[Math.toIntExact(packs.stream().mapToLong(Pack::count).sum())];
        int n = 0;
        for (Pack p : packs) {
            for (int i = 0; i < p.count(); i++) {
                prefixes[n++] = p.digestPrefix(i);
            }
        }
        Arrays.sort(prefixes);
        Set<Long> repeated = new HashSet<>();
        for (int i = 1; i < n; i++) {
            if (prefixes[i] == prefixes[i - 1]) {
                repeated.add(prefixes[i]);
            }
        }
        List<Pack> out = new ArrayList<>();
        if (repeated.isEmpty()) {
            return out;
        }
        for (int k = 0; k < packs.size(); k++) {
            Pack p = packs.get(k);
            boolean repeats = false;
            for (int i = 0; i < p.count() && !repeats; i++) {
                Location l = repeated.contains(p.digestPrefix(i)) ? p.entry(i) : null;
                if (l == null) {
                    continue;
                }
                // Index order is (digest, kind): a repeat within the pack is the entry before.
                Location before = i > 0 ? p.entry(i - 1) : null;
                repeats = before != null && before.kind() == l.kind() && before.digest().equals(l.digest());
                PackFormat.Key key = PackFormat.Key.of(l.digest());
                for (int j = 0; j < k && !repeats; j++) {
                    repeats = packs.get(j).find(key, l.kind(), l.digest()) != null;
                }
            }
            if (repeats) {
                out.add(p);
            }
        }
        return out;
    }

    private static boolean isLive(Location l, Set<B3Digest> blobs, Set<B3Digest> directories, Set<B3Digest> chunks) {
        if (l == null) {
            return false; // unknown kind: nothing can refer to it
        }
        return switch (l.kind()) {
            case CHUNK -> chunks.contains(l.digest());
            case BLOB -> blobs.contains(l.digest());
            case DIRECTORY -> directories.contains(l.digest());
        };
    }

    private static boolean nothingToCopy(Pack p, List<Pack> keep, Set<B3Digest> blobs, Set<B3Digest> directories,
            Set<B3Digest> chunks) {
        for (int i = 0; i < p.count(); i++) {
            Location l = p.entry(i);
            if (isLive(l, blobs, directories, chunks) && !inKept(keep, l)) {
                return false;
            }
        }
        return true;
    }

    private static boolean inKept(List<Pack> keep, Location l) {
        PackFormat.Key key = PackFormat.Key.of(l.digest());
        for (Pack p : keep) {
            if (p.find(key, l.kind(), l.digest()) != null) {
                return true;
            }
        }
        return false;
    }

    private static long delete(Path p) throws IOException {
        try {
            long size = Files.size(p);
            Files.delete(p);
            return size;
        } catch (NoSuchFileException e) {
            return 0;
        }
    }
}

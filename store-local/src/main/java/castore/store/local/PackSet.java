package castore.store.local;

import castore.model.B3Digest;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The published packs of a store as this process knows them. Other processes publish packs at
 * any time, so a lookup that misses re-reads the packs directory, but only when its mtime moved:
 * a miss costs one stat when nothing changed. A listing made within {@link #RACY_MILLIS} of the
 * directory's mtime is "racy" (a rename in the same timestamp tick would not move the mtime), so
 * the next miss lists again regardless.
 */
final class PackSet {
    private static final long RACY_MILLIS = 100;
    private static final long PERIODIC_CHECK_NANOS = 1_000_000_000L;
    private static final System.Logger LOG = System.getLogger(PackSet.class.getName());

    private final Path dir;
    private volatile Pack[] packs = new Pack[0];
    private volatile Map<String, String> broken = Map.of();
    private FileTime scannedMtime;
    private boolean racy = true;
    private volatile long lastCheckNanos;

    PackSet(Path dir) throws IOException {
        this.dir = dir;
        synchronized (this) {
            rescan();
        }
    }

    Pack[] packs() {
        return packs;
    }

    /** Index files that could not be loaded, by pack id, with the reason (for verify). */
    Map<String, String> broken() {
        return broken;
    }

    /** Looks in the packs known now; no file system access. */
    Location find(ObjectKind kind, B3Digest digest) {
        Pack[] current = packs;
        if (current.length == 0) {
            return null;
        }
        PackFormat.Key key = PackFormat.Key.of(digest);
        for (int i = current.length - 1; i >= 0; i--) {
            Location l = current[i].find(key, kind, digest);
            if (l != null) {
                return l;
            }
        }
        return null;
    }

    /**
     * Looks up an object for a caller that must see what other processes published: on a miss,
     * picks up new packs and looks again. Also notices removed packs about once a second.
     */
    Location findFresh(ObjectKind kind, B3Digest digest) throws IOException {
        if (System.nanoTime() - lastCheckNanos > PERIODIC_CHECK_NANOS) {
            refreshIfChanged();
        }
        Location l = find(kind, digest);
        // A listing made while the directory changed may lack entries renamed in or deleted
        // during it (readdir need not return them): one made as a gc published its new packs and
        // deleted the old ones could see neither, and the object would look absent. Such a
        // listing is racy, so the second round lists again.
        for (int round = 0; l == null && round < 2 && refreshIfChanged(); round++) {
            l = find(kind, digest);
        }
        return l;
    }

    /** Re-reads the directory if it may have changed since the last listing; true if it did. */
    synchronized boolean refreshIfChanged() throws IOException {
        lastCheckNanos = System.nanoTime();
        FileTime mtime = Files.getLastModifiedTime(dir);
        if (!racy && mtime.equals(scannedMtime)) {
            return false;
        }
        rescan();
        return true;
    }

    /** Adds a pack this process just published, so its objects are found before any rescan. */
    synchronized void add(Pack pack) {
        Pack[] current = packs;
        for (Pack p : current) {
            if (p.id().equals(pack.id())) {
                return;
            }
        }
        Pack[] next = Arrays.copyOf(current, current.length + 1);
        next[current.length] = pack;
        packs = next;
    }

    /** Lists {@code *.idx}: loads new packs, drops those whose index is gone. */
    synchronized void rescan() throws IOException {
        long started = System.currentTimeMillis();
        FileTime mtime = Files.getLastModifiedTime(dir);
        Map<String, Pack> known = new HashMap<>();
        for (Pack p : packs) {
            known.put(p.id(), p);
        }
        List<Path> indexes = new ArrayList<>();
        try (DirectoryStream<Path> stream = Files.newDirectoryStream(dir, "*.idx")) {
            stream.forEach(indexes::add);
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
        indexes.sort(null);
        List<Pack> next = new ArrayList<>(indexes.size());
        Map<String, String> problems = new LinkedHashMap<>();
        for (Path index : indexes) {
            String id = Pack.idOf(index);
            Pack p = known.get(id);
            if (p == null) {
                try {
                    p = Pack.open(index);
                } catch (NoSuchFileException gone) {
                    // Removed by gc between the listing and now (it deletes the index first), or,
                    // with the index still there, a pack file lost: damage, not to be ignored
                    // (gc would sweep the chunks of the chunk lists it holds).
                    if (!Files.exists(index)) {
                        continue;
                    }
                    problems.put(id, "its data file " + id + ".pack is missing");
                    if (broken.get(id) == null) {
                        LOG.log(System.Logger.Level.WARNING, "ignoring pack " + id + ": its data file is missing");
                    }
                    continue;
                } catch (IOException e) {
                    String previous = broken.get(id);
                    if (previous == null) {
                        LOG.log(System.Logger.Level.WARNING, "ignoring pack " + id + ": " + e.getMessage());
                    }
                    problems.put(id, e.getMessage());
                    continue;
                }
            }
            next.add(p);
        }
        packs = next.toArray(Pack[]::new);
        broken = Map.copyOf(problems);
        scannedMtime = mtime;
        racy = started - mtime.toMillis() < RACY_MILLIS;
    }
}

package castore.service.cache;

import castore.model.B3Digest;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Content-addressed files under one directory with a size limit and least-recently-used
 * eviction: {@code DIR/<kind>/<hex2>/<hex>}. Files appear by atomic rename, so readers never
 * see a partial file; the caller verifies what it reads (a file may be damaged on disk) and
 * {@link #delete}s what fails. Several processes may share a directory: a file another process
 * evicted is a miss; each process enforces the limit on what it knows.
 *
 * <p>Recency is an in-memory counter per entry, seeded at start from file modification times
 * (which hits update), so LRU order survives restarts approximately.
 */
public final class DiskCache {
    private static final String TEMP_SUFFIX = ".tmp";

    private record Entry(long size, long lastUse) {
    }

    private final Path root;
    private final long limit;
    private final Map<Path, Entry> entries = new ConcurrentHashMap<>();
    private final AtomicLong total = new AtomicLong();
    private final AtomicLong clock = new AtomicLong();
    private final Object evictionLock = new Object();

    public DiskCache(Path root, long limit) throws IOException {
        if (limit <= 0) {
            throw new IllegalArgumentException("cache size must be positive, got " + limit);
        }
        this.root = root;
        this.limit = limit;
        Files.createDirectories(root);
        if (!Files.isWritable(root)) {
            throw new IOException("cache directory " + root + " is not writable");
        }
        load();
        evictIfNeeded();
    }

    /** Indexes existing files oldest first, dropping temp files left by a crash. */
    private void load() throws IOException {
        record Found(Path path, long size, FileTime modified) {
        }
        List<Found> found = new ArrayList<>();
        try (var walk = Files.walk(root, 3)) {
            for (Path p : (Iterable<Path>) walk::iterator) {
                if (!Files.isRegularFile(p)) {
                    continue;
                }
                if (p.getFileName().toString().endsWith(TEMP_SUFFIX)) {
                    Files.deleteIfExists(p);
                    continue;
                }
                var attrs = Files.readAttributes(p, java.nio.file.attribute.BasicFileAttributes.class);
                found.add(new Found(p, attrs.size(), attrs.lastModifiedTime()));
            }
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
        found.sort(Comparator.comparing(Found::modified));
        for (Found f : found) {
            entries.put(f.path(), new Entry(f.size(), clock.incrementAndGet()));
            total.addAndGet(f.size());
        }
    }

    public Path root() {
        return root;
    }

    public long limit() {
        return limit;
    }

    /** Bytes currently held (as this process knows them). */
    public long size() {
        return total.get();
    }

    Path path(String kind, B3Digest key) {
        String hex = key.toHex();
        return root.resolve(kind).resolve(hex.substring(0, 2)).resolve(hex);
    }

    /** The file's bytes, unverified, or empty if absent. */
    public Optional<byte[]> read(String kind, B3Digest key) throws IOException {
        Path p = path(kind, key);
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(p);
        } catch (NoSuchFileException e) {
            forget(p);
            return Optional.empty();
        }
        Entry old = entries.get(p);
        if (old == null) {
            // Written by another process sharing the directory: account for it now.
            if (entries.putIfAbsent(p, new Entry(bytes.length, clock.incrementAndGet())) == null) {
                total.addAndGet(bytes.length);
            }
        } else {
            entries.put(p, new Entry(old.size(), clock.incrementAndGet()));
        }
        try {
            Files.setLastModifiedTime(p, FileTime.fromMillis(System.currentTimeMillis()));
        } catch (IOException racedWithEviction) {
            // harmless: the recency hint is lost
        }
        return Optional.of(bytes);
    }

    /** Marks an entry as used without reading it (it was served from memory). */
    public void touch(String kind, B3Digest key) {
        entries.computeIfPresent(path(kind, key), (p, e) -> new Entry(e.size(), clock.incrementAndGet()));
    }

    public boolean contains(String kind, B3Digest key) {
        Path p = path(kind, key);
        return entries.containsKey(p) || Files.exists(p);
    }

    /** Stores {@code bytes} (write to a temp file, then rename), then evicts down to the limit. */
    public void write(String kind, B3Digest key, byte[] bytes) throws IOException {
        Path p = path(kind, key);
        if (entries.containsKey(p)) {
            touch(kind, key);
            return;
        }
        Files.createDirectories(p.getParent());
        Path tmp = Files.createTempFile(p.getParent(), key.toHex().substring(0, 8), TEMP_SUFFIX);
        try {
            Files.write(tmp, bytes);
            try {
                Files.move(tmp, p, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, p, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
        if (entries.put(p, new Entry(bytes.length, clock.incrementAndGet())) == null) {
            total.addAndGet(bytes.length);
        }
        evictIfNeeded();
    }

    /** Removes an entry (e.g. one that failed verification). */
    public void delete(String kind, B3Digest key) throws IOException {
        Path p = path(kind, key);
        Files.deleteIfExists(p);
        forget(p);
    }

    private void forget(Path p) {
        Entry e = entries.remove(p);
        if (e != null) {
            total.addAndGet(-e.size());
        }
    }

    /** Deletes least recently used entries until 90% of the limit, so eviction runs in batches. */
    private void evictIfNeeded() throws IOException {
        if (total.get() <= limit) {
            return;
        }
        synchronized (evictionLock) {
            if (total.get() <= limit) {
                return;
            }
            long target = limit - limit / 10;
            List<Map.Entry<Path, Entry>> byAge = new ArrayList<>(entries.entrySet());
            byAge.sort(Comparator.comparingLong(e -> e.getValue().lastUse()));
            for (var e : byAge) {
                if (total.get() <= target) {
                    break;
                }
                Files.deleteIfExists(e.getKey());
                forget(e.getKey());
            }
        }
    }

    /** Kinds present, for tests and diagnostics. */
    List<String> kinds() throws IOException {
        List<String> out = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(root)) {
            ds.forEach(p -> out.add(p.getFileName().toString()));
        }
        return out;
    }
}

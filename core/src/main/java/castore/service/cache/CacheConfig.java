package castore.service.cache;

import castore.model.InvalidDataException;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Optional;

/**
 * How a remote store is cached. {@code directory} empty: memory only (still single-flight and
 * read-ahead). {@code diskLimit}: bytes kept on disk; {@code memoryLimit}: bytes of verified
 * chunks kept in memory; {@code prefetchParallelism}: background fetches at once;
 * {@code readAhead}: bytes fetched ahead of a sequential reader.
 */
public record CacheConfig(Optional<Path> directory, long diskLimit, long memoryLimit, int prefetchParallelism, long readAhead,
        boolean directReads) {
    public static final long DEFAULT_DISK_LIMIT = 10L << 30;
    public static final long DEFAULT_MEMORY_LIMIT = 256L << 20;
    /**
     * The memory tier may take at most this share of the heap ({@code 1/HEAP_SHARE}): with its
     * Directories and chunk lists (a third more) that is a third of it, and the rest is left to
     * read-ahead windows, batches in flight and the mount's own tables.
     */
    static final int HEAP_SHARE = 4;
    public static final int DEFAULT_PREFETCH_PARALLELISM = 8;
    public static final long DEFAULT_READ_AHEAD = 8L << 20;

    public CacheConfig {
        if (diskLimit <= 0 || memoryLimit <= 0 || prefetchParallelism <= 0 || readAhead < 0) {
            throw new InvalidDataException("cache limits must be positive");
        }
    }

    /** A configuration whose streaming readers read the disk tier through the page cache. */
    public CacheConfig(Optional<Path> directory, long diskLimit, long memoryLimit, int prefetchParallelism, long readAhead) {
        this(directory, diskLimit, memoryLimit, prefetchParallelism, readAhead, false);
    }

    /**
     * With {@code directReads}, streaming readers of large blobs read the disk tier with O_DIRECT
     * where they can, and fetched chunks are appended to it with O_DIRECT ({@link DirectAppender})
     * (for a mount, whose page cache keeps the data: see
     * {@link castore.service.StoreOptions#directReads()}).
     */
    public CacheConfig withDirectReads(boolean directReads) {
        return new CacheConfig(directory, diskLimit, memoryLimit, prefetchParallelism, readAhead, directReads);
    }

    public static CacheConfig memoryOnly() {
        return memoryOnly(DEFAULT_MEMORY_LIMIT);
    }

    public static CacheConfig memoryOnly(long memoryLimit) {
        return new CacheConfig(Optional.empty(), DEFAULT_DISK_LIMIT, memoryLimit, DEFAULT_PREFETCH_PARALLELISM, DEFAULT_READ_AHEAD);
    }

    public static CacheConfig onDisk(Path directory, long diskLimit) {
        return onDisk(directory, diskLimit, DEFAULT_MEMORY_LIMIT);
    }

    public static CacheConfig onDisk(Path directory, long diskLimit, long memoryLimit) {
        return new CacheConfig(Optional.of(directory), diskLimit, memoryLimit, DEFAULT_PREFETCH_PARALLELISM, DEFAULT_READ_AHEAD);
    }

    /**
     * The memory tier a heap of {@code maxHeap} bytes can hold: {@link #DEFAULT_MEMORY_LIMIT}, or
     * a quarter of the heap if that is less (a mount started with a small {@code -Xmx} ran out of
     * heap with the default tier, and its requests hung).
     */
    public static long defaultMemoryLimit(long maxHeap) {
        return Math.min(DEFAULT_MEMORY_LIMIT, largestMemoryLimit(maxHeap));
    }

    /** The largest memory tier a heap of {@code maxHeap} bytes can hold (a quarter of it). */
    public static long largestMemoryLimit(long maxHeap) {
        return Math.max(1, maxHeap / HEAP_SHARE);
    }

    /** Parses sizes like {@code 10G}, {@code 512M}, {@code 1GiB}, {@code 4096} (bytes, powers of 1024). */
    public static long parseSize(String text) {
        String s = text == null ? "" : text.trim().toUpperCase(Locale.ROOT);
        if (s.endsWith("IB")) {
            s = s.substring(0, s.length() - 2);
        } else if (s.endsWith("B")) {
            s = s.substring(0, s.length() - 1);
        }
        int shift = 0;
        if (!s.isEmpty()) {
            shift = switch (s.charAt(s.length() - 1)) {
                case 'K' -> 10;
                case 'M' -> 20;
                case 'G' -> 30;
                case 'T' -> 40;
                default -> 0;
            };
        }
        String number = shift == 0 ? s : s.substring(0, s.length() - 1);
        try {
            long value = Long.parseLong(number.trim());
            if (value <= 0 || value > Long.MAX_VALUE >> shift) {
                throw new NumberFormatException();
            }
            return value << shift;
        } catch (NumberFormatException e) {
            throw new InvalidDataException("invalid size '" + text + "': expected a positive number with an optional K, M, G or T suffix");
        }
    }
}

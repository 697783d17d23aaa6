package castore.service.cache;

import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.service.CorruptedDataException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * One kind of cached object: a bounded in-memory LRU of verified values in front of the
 * optional {@link DiskCache}. Values read from disk are decoded and verified by the
 * {@link Codec}; one that fails is deleted and reported as a miss, so the caller refetches it.
 * A chunk whose record carries a CRC32C ({@link DiskCache.Location#crc}: taken from the verified
 * bytes when they were written) is checked by it instead of hashed again; one whose CRC does not
 * match still gets the full check.
 */
final class TieredCache<T> {
    /** Encodes values for disk, and decodes them back only if they match their key. */
    interface Codec<T> {
        byte[] encode(T value);

        T decodeVerified(B3Digest key, byte[] bytes) throws CorruptedDataException;

        /**
         * Decodes bytes known to be what was written for {@code key} (their CRC32C matched the
         * one recorded from the verified value); by default verified all the same.
         */
        default T decodeIntact(B3Digest key, byte[] bytes) throws CorruptedDataException {
            return decodeVerified(key, bytes);
        }

        /** Whether {@code bytes[from, from + length)} decode to a value that matches {@code key}. */
        default boolean verifies(B3Digest key, byte[] bytes, int from, int length) {
            try {
                decodeVerified(key, Arrays.copyOfRange(bytes, from, from + length));
                return true;
            } catch (CorruptedDataException | RuntimeException corrupted) {
                return false;
            }
        }

        long weight(T value);
    }

    private final String kind;
    private final DiskCache disk;
    private final Codec<T> codec;
    private final long memoryLimit;
    private final LinkedHashMap<B3Digest, T> memory = new LinkedHashMap<>(256, 0.75f, true);
    private long memoryWeight;
    private volatile long corruptedDropped;
    private volatile long diskWriteFailures;

    TieredCache(String kind, DiskCache disk, Codec<T> codec, long memoryLimit) {
        this.kind = kind;
        this.disk = disk;
        this.codec = codec;
        this.memoryLimit = memoryLimit;
    }

    Optional<T> get(B3Digest key) throws IOException {
        return get(key, true);
    }

    /**
     * The value from memory, else from disk; one read from disk joins the memory tier only if
     * {@code remember} (a caller streaming through more than the tier holds passes false).
     */
    Optional<T> get(B3Digest key, boolean remember) throws IOException {
        T value;
        synchronized (memory) {
            value = memory.get(key);
        }
        if (value != null) {
            if (disk != null) {
                disk.touch(kind, key);
            }
            return Optional.of(value);
        }
        if (disk == null) {
            return Optional.empty();
        }
        DiskCache.Location place = disk.place(kind, key);
        Optional<byte[]> bytes = disk.read(kind, key);
        if (bytes.isEmpty()) {
            return Optional.empty();
        }
        try {
            value = place != null && place.crcMatches(MemorySegment.ofArray(bytes.get()))
                    ? codec.decodeIntact(key, bytes.get()) : codec.decodeVerified(key, bytes.get());
        } catch (CorruptedDataException | RuntimeException corrupted) {
            disk.deleteIfStill(kind, key, place);
            corruptedDropped++;
            return Optional.empty();
        }
        if (remember) {
            remember(key, value);
        }
        return Optional.of(value);
    }

    /**
     * Reads the disk copy of {@code key}, exactly {@code length} bytes encoded, into
     * {@code dst[0, length)} and verifies it there; the memory tier is neither asked nor filled
     * (for a caller that reuses {@code dst}). False if it is not on disk, or failed verification
     * (then deleted, as by {@link #get}); {@code dst} then holds anything.
     */
    boolean readFromDiskInto(B3Digest key, byte[] dst, int length) throws IOException {
        return readFromDiskInto(key, dst, 0, length);
    }

    /** {@link #readFromDiskInto(B3Digest, byte[], int)} into {@code dst[from, from + length)}. */
    boolean readFromDiskInto(B3Digest key, byte[] dst, int from, int length) throws IOException {
        DiskCache.Location place = disk == null ? null : disk.place(kind, key);
        if (place == null || !disk.readInto(kind, key, dst, from, length)) {
            return false;
        }
        if (!place.crcMatches(MemorySegment.ofArray(dst).asSlice(from, length)) && !codec.verifies(key, dst, from, length)) {
            disk.deleteIfStill(kind, key, place);
            corruptedDropped++;
            return false;
        }
        return true;
    }

    /**
     * {@link #readFromDiskInto} into native memory ({@link DiskCache#readNative}), with O_DIRECT
     * where it can; the slice holding the value's bytes, verified, or null if absent or
     * corrupted (then dropped). Only for a tier whose values are bytes named by their BLAKE3
     * digest (chunks).
     */
    MemorySegment readFromDiskNative(B3Digest key, int length, MemorySegment buffer) {
        DiskCache.Location place = disk == null ? null : disk.place(kind, key);
        MemorySegment bytes = place == null ? null : disk.readNative(kind, key, length, buffer);
        if (bytes == null) {
            return null;
        }
        if (!intactChunk(place, bytes, key)) {
            disk.deleteIfStill(kind, key, place);
            corruptedDropped++;
            return null;
        }
        return bytes;
    }

    /** {@link DiskCache#span} of this tier's kind; 0 without a disk tier. */
    int diskSpan(B3Digest[] keys, int[] lengths, int count, long bufferBytes) {
        return disk == null ? 0 : disk.span(kind, keys, lengths, count, bufferBytes);
    }

    /**
     * {@link #readFromDiskNative} of a {@link #diskSpan} with one read: each value's slice,
     * verified, into {@code payloads}; how many of the first ones (a corrupted one is dropped
     * and ends the span before it).
     */
    int readFromDiskNativeSpan(B3Digest[] keys, int[] lengths, int count, MemorySegment buffer, MemorySegment[] payloads) {
        if (disk == null) {
            return 0;
        }
        DiskCache.Location[] places = new DiskCache.Location[count];
        for (int k = 0; k < count; k++) {
            places[k] = disk.place(kind, keys[k]);
        }
        int n = disk.readNativeSpan(kind, keys, lengths, count, buffer, payloads);
        for (int k = 0; k < n; k++) {
            if (!intactChunk(places[k], payloads[k], keys[k])) {
                disk.deleteIfStill(kind, keys[k], places[k]);
                corruptedDropped++;
                return k;
            }
        }
        return n;
    }

    /**
     * Whether chunk bytes read from {@code place} are the chunk {@code key}: by the CRC32C its
     * record carries, else (none, or one that does not match) by hashing them.
     */
    private static boolean intactChunk(DiskCache.Location place, MemorySegment bytes, B3Digest key) {
        return (place != null && place.crcMatches(bytes)) || Blake3.digest(bytes).equals(key);
    }

    /** Whether the disk tier holds {@code key} (the memory tier may too). */
    boolean onDisk(B3Digest key) {
        return disk != null && disk.contains(kind, key);
    }

    /** Hints that the disk copy of {@code key} will be read soon. */
    void willNeed(B3Digest key) {
        if (disk != null) {
            disk.willNeed(kind, key);
        }
    }

    /** The value if it is in the memory tier (no disk access). */
    Optional<T> peekMemory(B3Digest key) {
        synchronized (memory) {
            return Optional.ofNullable(memory.get(key));
        }
    }

    /**
     * The weight ({@link Codec#weight}) of the value held for {@code key} in memory, else the
     * length of its disk copy, neither read nor verified; -1 if neither tier holds it.
     */
    long heldWeight(B3Digest key) {
        synchronized (memory) {
            T value = memory.get(key);
            if (value != null) {
                return codec.weight(value);
            }
        }
        DiskCache.Location at = disk == null ? null : disk.place(kind, key);
        return at == null ? -1 : at.length();
    }

    /** Records a use of a value found by {@link #peekMemory}. */
    void touch(B3Digest key) {
        if (disk != null) {
            disk.touch(kind, key);
        }
    }

    /** Drops a value from both tiers (it turned out to be wrong). */
    void remove(B3Digest key) {
        synchronized (memory) {
            T old = memory.remove(key);
            if (old != null) {
                memoryWeight -= codec.weight(old);
            }
        }
        if (disk != null) {
            disk.delete(kind, key);
        }
    }

    boolean contains(B3Digest key) {
        synchronized (memory) {
            if (memory.containsKey(key)) {
                return true;
            }
        }
        return disk != null && disk.contains(kind, key);
    }

    /**
     * Caches a value the caller has already verified. A failed disk write (disk full, directory
     * gone) is counted, not thrown: the cache must never make a read fail.
     */
    void put(B3Digest key, T value) {
        remember(key, value);
        putOnDisk(key, value, 0);
    }

    /**
     * Caches a verified value on disk only (none without a disk tier), in {@code lane}; failures
     * as in {@link #put}.
     */
    void putOnDisk(B3Digest key, T value, int lane) {
        if (disk != null) {
            byte[] encoded = codec.encode(value);
            putBytesOnDisk(key, encoded, encoded.length, lane);
        }
    }

    /**
     * {@link #putOnDisk} of a value whose encoding is {@code bytes[0, length)} (the codec's
     * {@code encode} must be the identity, as for chunks); the array is not kept.
     */
    void putBytesOnDisk(B3Digest key, byte[] bytes, int length, int lane) {
        if (disk != null) {
            try {
                disk.write(kind, key, bytes, length, lane);
            } catch (IOException | UncheckedIOException e) {
                diskWriteFailures++;
            }
        }
    }

    /** Caches a verified value in memory only (the disk can derive it from other entries). */
    void putInMemory(B3Digest key, T value) {
        remember(key, value);
    }

    long diskWriteFailures() {
        return diskWriteFailures;
    }

    private void remember(B3Digest key, T value) {
        long weight = codec.weight(value);
        if (weight > memoryLimit) {
            return;
        }
        synchronized (memory) {
            T old = memory.put(key, value);
            memoryWeight += weight - (old == null ? 0 : codec.weight(old));
            Iterator<Map.Entry<B3Digest, T>> it = memory.entrySet().iterator();
            while (memoryWeight > memoryLimit && it.hasNext()) {
                memoryWeight -= codec.weight(it.next().getValue());
                it.remove();
            }
        }
    }

    /** Entries dropped because their disk copy failed verification. */
    long corruptedDropped() {
        return corruptedDropped;
    }
}

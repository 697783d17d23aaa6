package castore.store.local;

import static castore.store.local.PackFormat.INT;
import static castore.store.local.PackFormat.LONG;

import castore.io.Libc;
import castore.model.B3Digest;
import castore.service.CorruptedDataException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.concurrent.locks.ReentrantLock;
import java.util.zip.CRC32C;

/**
 * A pack being written: entries are appended through an off-heap buffer with pwrite, and nothing
 * in it is visible to other processes until {@link #publish} writes its index. One thread appends
 * at a time (the {@link PackStore} pool hands it out); reads of its entries by other threads of
 * this process take the lock and flush first.
 */
final class PackWriter implements PackSource {
    static final int BUFFER_SIZE = 4 << 20;
    /** Payloads this large are written straight from the caller's array, not copied into the buffer first. */
    static final int DIRECT_WRITE = 64 << 10;
    /** Bits of an entry number in the sort keys; a pack is rolled before it has more entries. */
    private static final int ENTRY_BITS = 23;
    static final int MAX_ENTRIES = (1 << ENTRY_BITS) - 1;
    private static final SecureRandom RANDOM = new SecureRandom();

    private final String id;
    private final Path packPath;
    private final Posix.Fd fd;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment buffer = arena.allocate(BUFFER_SIZE, 4096);
    private final ReentrantLock lock = new ReentrantLock();
    private final boolean sync;
    private int buffered;
    private long flushed;
    /** Where writeback was last started (with sync): direct writes start it every BUFFER_SIZE bytes. */
    private long writebackFrom = 0;
    private int count;
    private byte[] digests = new byte[64 * B3Digest.LENGTH];
    private byte[] kinds = new byte[64];
    private int[] lengths = new int[64];
    private long[] offsets = new long[64];
    private long[] aux = new long[64];
    private volatile Pack published;
    private boolean closed;
    /**
     * Why an fdatasync of the pack failed, if one did. Linux may then have dropped the dirty
     * pages (marking them clean), so a later fdatasync succeeds although the data never reached
     * the disk: an index published then would name lost bytes. The pack is never published.
     */
    private IOException syncFailed;

    private PackWriter(String id, Path packPath, Posix.Fd fd, boolean sync) {
        this.sync = sync;
        this.id = id;
        this.packPath = packPath;
        this.fd = fd;
        buffer.set(LONG, 0, PackFormat.PACK_MAGIC);
        buffer.set(INT, 8, PackFormat.VERSION);
        buffer.set(INT, 12, 0);
        buffered = PackFormat.PACK_HEADER;
    }

    /**
     * A new pack file {@code packs/ID.pack} with a fresh random id. With {@code sync}, its data
     * is synced when published, and writeback starts as each buffer is written.
     */
    static PackWriter create(Path packsDir, boolean sync) throws IOException {
        byte[] random = new byte[8];
        RANDOM.nextBytes(random);
        // Time first so a listing sorts roughly by age; the random part keeps processes apart.
        String id = String.format("%011x", System.currentTimeMillis()) + "-" + HexFormat.of().formatHex(random);
        Path path = packsDir.resolve(id + ".pack");
        return new PackWriter(id, path, Posix.open(path, Libc.O_RDWR | Libc.O_CREAT | Libc.O_EXCL, 0444), sync);
    }

    String id() {
        return id;
    }

    int count() {
        return count;
    }

    /** Bytes written so far, buffered or not. */
    long size() {
        return flushed + buffered;
    }

    /** Appends one entry. The caller has this writer to itself (or holds no other claim). */
    Location append(ObjectKind kind, B3Digest digest, byte[] data, int offset, int length, long auxValue) throws IOException {
        lock.lock();
        try {
            checkOpen();
            int entry = PackFormat.ENTRY_HEADER + length;
            if (buffered + entry > BUFFER_SIZE) {
                flush();
            }
            long payloadOffset = size() + PackFormat.ENTRY_HEADER;
            if (length >= DIRECT_WRITE) {
                // Header through the buffer, then the payload straight from the array: one copy less.
                writeHeader(buffer, buffered, kind, digest, length);
                buffered += PackFormat.ENTRY_HEADER;
                flush();
                fd.writeFully(data, offset, length, flushed);
                flushed += length;
                startWritebackEveryBuffer();
            } else {
                writeHeader(buffer, buffered, kind, digest, length);
                MemorySegment.copy(data, offset, buffer, ValueLayout.JAVA_BYTE, buffered + PackFormat.ENTRY_HEADER, length);
                buffered += entry;
            }
            addEntry(kind, digest, length, payloadOffset, auxValue);
            return new Location(kind, digest, this, payloadOffset, length, auxValue);
        } finally {
            lock.unlock();
        }
    }

    private static void writeHeader(MemorySegment dst, long at, ObjectKind kind, B3Digest digest, int length) {
        dst.set(INT, at, kind.code);
        dst.set(INT, at + 4, length);
        for (int i = 0; i < B3Digest.LENGTH; i++) {
            dst.set(ValueLayout.JAVA_BYTE, at + 8 + i, digest.byteAt(i));
        }
    }

    private void addEntry(ObjectKind kind, B3Digest digest, int length, long offset, long auxValue) {
        if (count == kinds.length) {
            int n = count * 2;
            digests = Arrays.copyOf(digests, n * B3Digest.LENGTH);
            kinds = Arrays.copyOf(kinds, n);
            lengths = Arrays.copyOf(lengths, n);
            offsets = Arrays.copyOf(offsets, n);
            aux = Arrays.copyOf(aux, n);
        }
        digest.copyTo(digests, count * B3Digest.LENGTH);
        kinds[count] = (byte) kind.code;
        lengths[count] = length;
        offsets[count] = offset;
        aux[count] = auxValue;
        count++;
    }

    private void flush() throws IOException {
        if (buffered > 0) {
            fd.writeFully(buffer.asSlice(0, buffered), flushed);
            flushed += buffered;
            buffered = 0;
            startWritebackEveryBuffer();
        }
    }

    /** With sync, starts writeback of what was written since the last start once a buffer's worth has gathered. */
    private void startWritebackEveryBuffer() {
        if (sync && flushed - writebackFrom >= BUFFER_SIZE) {
            fd.startWriteback(writebackFrom, flushed - writebackFrom);
            writebackFrom = flushed;
        }
    }

    private void checkOpen() throws IOException {
        if (closed) {
            throw new IOException("pack " + packPath + " is already closed");
        }
    }

    @Override
    public byte[] read(Location location) throws IOException {
        lock.lock();
        try {
            if (!closed) {
                long end = location.offset() + location.length();
                if (end > flushed) {
                    flush();
                }
                try (Arena once = Arena.ofConfined()) {
                    MemorySegment entry = once.allocate(PackFormat.ENTRY_HEADER + (long) location.length());
                    fd.readFully(entry, location.offset() - PackFormat.ENTRY_HEADER);
                    if (entry.get(INT, 0) != location.kind().code || entry.get(INT, 4) != location.length()
                            || PackFormat.Key.of(location.digest()).compareTo(entry, 8) != 0) {
                        throw new CorruptedDataException(location.describe() + ": the pack entry header does not match");
                    }
                    return entry.asSlice(PackFormat.ENTRY_HEADER).toArray(ValueLayout.JAVA_BYTE);
                }
            }
        } finally {
            lock.unlock();
        }
        Pack p = published;
        if (p == null) {
            throw new IOException("pack " + packPath + " was discarded");
        }
        return p.read(new Location(location.kind(), location.digest(), p, location.offset(), location.length(), location.aux()));
    }

    /**
     * Makes the pack visible: flushes, syncs the data (if {@code sync}), writes the sorted index
     * to a temporary file, syncs it and renames it to {@code ID.idx}. The rename is the commit
     * point: a crash before it leaves an unindexed pack file that no reader ever looks at.
     */
    Pack publish() throws IOException {
        lock.lock();
        try {
            checkOpen();
            if (syncFailed != null) {
                throw new IOException("pack " + packPath + " is not published: syncing its data failed before ("
                        + syncFailed.getMessage() + "), so some of it may not be on disk; write it again in a new process", syncFailed);
            }
            flush();
            if (sync) {
                try {
                    fd.sync();
                } catch (IOException e) {
                    syncFailed = e;
                    throw e;
                }
            }
            Path indexPath = packPath.resolveSibling(id + ".idx");
            Path tmp = packPath.resolveSibling(id + ".idx.tmp");
            try (Arena once = Arena.ofConfined(); Posix.Fd out = Posix.open(tmp, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_EXCL, 0444)) {
                MemorySegment index = buildIndex(once);
                out.writeFully(index, 0);
                if (sync) {
                    out.sync();
                }
            } catch (IOException e) {
                Files.deleteIfExists(tmp);
                throw e;
            }
            StoreLayout.publish(tmp, indexPath, sync);
            Pack pack = Pack.open(indexPath);
            published = pack;
            closeQuietly();
            return pack;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Entry numbers in index order (digest, then kind). Sorts primitive keys, the first 40 bits
     * of the digest above the entry number, so even a cold JVM (a short CLI run) sorts a large
     * pack quickly; runs of equal prefixes, rare, are then ordered by the full digest and kind.
     */
    private int[] sortedEntries() {
        long[] keys = new long[count];
        for (int i = 0; i < count; i++) {
            keys[i] = prefix(i) << ENTRY_BITS | i;
        }
        Arrays.sort(keys);
        int[] order = new int[count];
        for (int i = 0; i < count; i++) {
            order[i] = (int) (keys[i] & ((1L << ENTRY_BITS) - 1));
        }
        for (int runStart = 0; runStart < count; ) {
            int runEnd = runStart + 1;
            while (runEnd < count && keys[runEnd] >>> ENTRY_BITS == keys[runStart] >>> ENTRY_BITS) {
                runEnd++;
            }
            for (int i = runStart + 1; i < runEnd; i++) { // insertion sort of a tiny run
                int e = order[i];
                int j = i - 1;
                for (; j >= runStart && compareEntries(order[j], e) > 0; j--) {
                    order[j + 1] = order[j];
                }
                order[j + 1] = e;
            }
            runStart = runEnd;
        }
        return order;
    }

    private long prefix(int entry) {
        int at = entry * B3Digest.LENGTH;
        long p = 0;
        for (int k = 0; k < 5; k++) {
            p = p << 8 | (digests[at + k] & 0xff);
        }
        return p;
    }

    private int compareEntries(int a, int b) {
        int c = Arrays.compareUnsigned(digests, a * B3Digest.LENGTH, (a + 1) * B3Digest.LENGTH,
                digests, b * B3Digest.LENGTH, (b + 1) * B3Digest.LENGTH);
        return c != 0 ? c : Integer.compare(kinds[a], kinds[b]);
    }

    private MemorySegment buildIndex(Arena arena) {
        int[] order = sortedEntries();
        ByteBuffer index = ByteBuffer.allocate(Math.toIntExact(PackFormat.indexSize(count))).order(ByteOrder.LITTLE_ENDIAN);
        index.putLong(PackFormat.INDEX_MAGIC).putInt(PackFormat.VERSION).putInt(count).putLong(size());
        int[] fanout = new int[256];
        for (int i = 0; i < count; i++) {
            fanout[digests[i * B3Digest.LENGTH] & 0xff]++;
        }
        int cumulative = 0;
        for (int b = 0; b < 256; b++) {
            cumulative += fanout[b];
            index.putInt(cumulative);
        }
        for (int i : order) {
            index.put(digests, i * B3Digest.LENGTH, B3Digest.LENGTH)
                    .putInt(kinds[i]).putInt(lengths[i]).putLong(offsets[i]).putLong(aux[i]);
        }
        CRC32C crc = new CRC32C();
        crc.update(index.array(), 0, index.position());
        index.putInt((int) crc.getValue()).putInt(PackFormat.INDEX_END);
        MemorySegment out = arena.allocate(index.capacity());
        MemorySegment.copy(index.array(), 0, out, ValueLayout.JAVA_BYTE, 0, index.capacity());
        return out;
    }

    /** Gives up the pack: closes and deletes the file. Its entries must no longer be referenced. */
    void discard() throws IOException {
        lock.lock();
        try {
            closeQuietly();
            Files.deleteIfExists(packPath);
        } finally {
            lock.unlock();
        }
    }

    private void closeQuietly() {
        if (!closed) {
            closed = true;
            fd.close();
            arena.close();
        }
    }

    @Override
    public String describe() {
        return packPath.getFileName() + " (being written)";
    }
}

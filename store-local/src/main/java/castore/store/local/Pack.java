package castore.store.local;

import static castore.store.local.PackFormat.INT;
import static castore.store.local.PackFormat.LONG;

import castore.io.DirectFile;
import castore.io.DirectStream;
import castore.io.Libc;
import castore.io.WindowHints;
import castore.model.B3Digest;
import castore.service.CorruptedDataException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.ref.Cleaner;
import java.lang.ref.Reference;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.zip.CRC32C;

/**
 * A published pack: its index file mapped and binary-searched in place, its data file read with
 * pread. Both files are immutable once the index exists; a pack deleted by gc stays readable
 * through the mapping and descriptor this process already holds (Linux keeps unlinked open files
 * alive). Data is read rather than mapped because a cold read through a mapping faults in
 * page-cache windows centred on each fault, one at a time, while pread of a whole chunk issues
 * one request and lets the kernel's readahead stream a blob's following chunks.
 */
final class Pack implements PackSource {
    private final String id;
    private final Path packPath;
    private final Path indexPath;
    private final MemorySegment index;
    private final int count;
    private final long packSize;
    private final int[] fanout = new int[257];
    /**
     * Digest bytes 1-4 of every index entry, in index order, on the heap (4 bytes per object):
     * the binary search runs on this array and reads the mapped index only to confirm a match.
     * Index reads through the mapping cost tens of nanoseconds each before the JIT has warmed
     * up, and a miss (most packs, for most lookups) then never touches the mapping at all.
     */
    private final int[] prefixes;
    private final Posix.Fd data;
    /** The data file opened again with O_DIRECT, for {@link DirectStream}s, on first use. */
    private final DirectFile direct;

    private static final Cleaner CLOSER = Cleaner.create();
    /** Metadata read-ahead ({@link #metadataAhead}). */
    private final WindowHints metadataHints = new WindowHints();
    private volatile long metadataHintNanos = WindowHints.STANDS_NANOS;

    private Pack(String id, Path packPath, Path indexPath, MemorySegment index, int count, long packSize, Posix.Fd data) {
        this.id = id;
        this.packPath = packPath;
        this.indexPath = indexPath;
        this.index = index;
        this.count = count;
        this.packSize = packSize;
        this.data = data;
        this.direct = new DirectFile(packPath);
        this.prefixes = new int[count];
    }

    /**
     * Lets go of the pack file (gc deleted it) without closing the descriptor the cleaner owns:
     * the file's blocks are freed now, not when this object is collected, and a read that still
     * comes is an error, never another file's bytes.
     */
    void release() throws IOException {
        direct.close();
        data.detach();
    }

    static String idOf(Path indexOrPack) {
        String name = indexOrPack.getFileName().toString();
        return name.substring(0, name.lastIndexOf('.'));
    }

    /**
     * Maps and checks an index file ({@code ID.idx}) and maps its pack {@code ID.pack}. Both are
     * mapped at once so a Pack exists only with both files in hand: gc deleting them afterwards
     * cannot take the data away (NoSuchFileException if they were already gone).
     */
    static Pack open(Path indexPath) throws IOException {
        String id = idOf(indexPath);
        Path packPath = indexPath.resolveSibling(id + ".pack");
        MemorySegment index;
        try (FileChannel ch = FileChannel.open(indexPath, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < PackFormat.indexSize(0)) {
                throw new CorruptedDataException("pack index " + indexPath + " is truncated (" + size + " bytes)");
            }
            index = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, Arena.ofAuto());
        }
        String where = "pack index " + indexPath;
        if (index.get(LONG, 0) != PackFormat.INDEX_MAGIC) {
            throw new CorruptedDataException(where + " does not start with the index magic");
        }
        if (index.get(INT, 8) != PackFormat.VERSION) {
            throw new CorruptedDataException(where + " has unknown version " + index.get(INT, 8));
        }
        int count = index.get(INT, 12);
        if (count < 0 || PackFormat.indexSize(count) != index.byteSize()) {
            throw new CorruptedDataException(where + " has " + index.byteSize() + " bytes, which does not fit its count " + count);
        }
        long crcOffset = index.byteSize() - PackFormat.INDEX_TRAILER;
        CRC32C crc = new CRC32C();
        crc.update(index.asSlice(0, crcOffset).asByteBuffer());
        if ((int) crc.getValue() != index.get(INT, crcOffset) || index.get(INT, crcOffset + 4) != PackFormat.INDEX_END) {
            throw new CorruptedDataException(where + " fails its checksum");
        }
        long packSize = index.get(LONG, 16);
        Posix.Fd data = Posix.open(packPath, Libc.O_RDONLY, 0);
        Pack pack;
        try {
            long actual = Files.size(packPath);
            if (actual < packSize) {
                throw new CorruptedDataException("pack " + packPath + " is truncated: " + actual
                        + " bytes, its index covers " + packSize);
            }
            pack = new Pack(id, packPath, indexPath, index, count, packSize, data);
        } catch (IOException | RuntimeException e) {
            data.close();
            throw e;
        }
        DirectFile direct = pack.direct;
        CLOSER.register(pack, () -> {
            data.close();
            direct.close();
        });
        // Lookups binary-search the whole index: have the kernel read it in one go, not by faults.
        Posix.willNeed(index);
        for (int b = 0; b < 256; b++) {
            pack.fanout[b + 1] = index.get(INT, PackFormat.INDEX_HEADER + 4L * b);
        }
        if (pack.fanout[256] != count) {
            throw new CorruptedDataException(where + " has an inconsistent fanout table");
        }
        for (int i = 0; i < count; i++) {
            pack.prefixes[i] = (int) (index.get(PackFormat.DIGEST_WORD, entryOffset(i)) >>> 24);
        }
        return pack;
    }

    String id() {
        return id;
    }

    Path packPath() {
        return packPath;
    }

    Path indexPath() {
        return indexPath;
    }

    int count() {
        return count;
    }

    long packSize() {
        return packSize;
    }

    /** The entry of that kind and digest, or null. */
    Location find(PackFormat.Key key, ObjectKind kind, B3Digest digest) {
        int lo = fanout[key.firstByte()];
        int hi = fanout[key.firstByte() + 1] - 1;
        int prefix = key.prefix();
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            // Byte 0 is equal within the fanout range, so the prefix orders entries as the digest does.
            int c = Integer.compareUnsigned(prefix, prefixes[mid]);
            if (c == 0) {
                c = key.compareTo(index, entryOffset(mid));
            }
            if (c == 0) {
                // Entries of one digest sit together, ordered by kind: step to the wanted one.
                int k = kindCode(mid);
                if (k == kind.code) {
                    return location(mid, kind, digest);
                }
                int step = k < kind.code ? 1 : -1;
                for (int i = mid + step; i >= 0 && i < count && key.compareTo(index, entryOffset(i)) == 0; i += step) {
                    if (kindCode(i) == kind.code) {
                        return location(i, kind, digest);
                    }
                }
                return null;
            }
            if (c > 0) {
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        return null;
    }

    private static long entryOffset(int i) {
        return PackFormat.INDEX_HEADER + PackFormat.FANOUT + (long) i * PackFormat.INDEX_ENTRY;
    }

    private int kindCode(int i) {
        return index.get(ValueLayout.JAVA_BYTE, entryOffset(i) + 32) & 0xff;
    }

    private Location location(int i, ObjectKind kind, B3Digest digest) {
        long e = entryOffset(i);
        return new Location(kind, digest, this, index.get(LONG, e + 40), index.get(INT, e + 36), index.get(LONG, e + 48));
    }

    /** The first 8 bytes of the i-th entry's digest (index order), for gc's search for duplicates. */
    long digestPrefix(int i) {
        return index.get(PackFormat.DIGEST_WORD, entryOffset(i));
    }

    /** The i-th entry in index order, for whole-pack walks (verify, gc); null if its kind is unknown. */
    Location entry(int i) {
        ObjectKind kind = ObjectKind.of(kindCode(i));
        if (kind == null) {
            return null;
        }
        byte[] digest = new byte[B3Digest.LENGTH];
        MemorySegment.copy(index, ValueLayout.JAVA_BYTE, entryOffset(i), digest, 0, digest.length);
        return location(i, kind, B3Digest.wrap(digest));
    }

    @Override
    public byte[] read(Location location) throws IOException {
        long start = location.offset() - PackFormat.ENTRY_HEADER;
        if (start < PackFormat.PACK_HEADER || location.offset() + location.length() > packSize) {
            throw new CorruptedDataException(location.describe() + " lies outside the pack (index corrupted?)");
        }
        // Header, then payload straight into the array returned: two reads are cheaper than copying a chunk.
        byte[] headerBytes = new byte[PackFormat.ENTRY_HEADER];
        try {
            data.readFully(headerBytes, 0, headerBytes.length, start);
            if ((int) PackFormat.INT_OF_ARRAY.get(headerBytes, 0) != location.kind().code
                    || (int) PackFormat.INT_OF_ARRAY.get(headerBytes, 4) != location.length()
                    || !PackFormat.Key.of(headerBytes, 8).equals(PackFormat.Key.of(location.digest()))) {
                throw new CorruptedDataException(location.describe() + ": the pack entry header does not match the index");
            }
            byte[] out = new byte[location.length()];
            data.readFully(out, 0, out.length, location.offset());
            return out;
        } finally {
            Reference.reachabilityFence(this);
        }
    }

    @Override
    public byte[] readPayload(Location location) throws IOException {
        byte[] out = new byte[location.length()];
        readPayloadInto(location, out);
        return out;
    }

    @Override
    public void readPayloadInto(Location location, byte[] dst) throws IOException {
        checkBounds(location);
        try {
            data.readFully(dst, 0, location.length(), location.offset());
        } finally {
            // The cleaner closes the descriptor once this Pack is unreachable, which it could
            // become mid-read (a gc replaced it, the caller holds only an int fd's worth of it):
            // the number could then be reused by another file while pread runs.
            Reference.reachabilityFence(this);
        }
    }

    /** Fails if {@code location}'s entry does not lie within the data the index covers. */
    void checkBounds(Location location) throws CorruptedDataException {
        if (location.offset() - PackFormat.ENTRY_HEADER < PackFormat.PACK_HEADER
                || location.offset() + location.length() > packSize) {
            throw new CorruptedDataException(location.describe() + " lies outside the pack (index corrupted?)");
        }
    }

    /**
     * Reads the payload at {@code location} with O_DIRECT into {@code buffer} (aligned to
     * {@link DirectStream#ALIGN}, large enough for the payload rounded out to it at both ends),
     * bypassing the page cache; the slice holding it, unverified, or null if this pack cannot be
     * read so (the caller reads it through the page cache).
     */
    MemorySegment readDirect(Location location, MemorySegment buffer) throws IOException {
        checkBounds(location);
        try {
            return DirectStream.readAligned(direct::read, location.offset(), location.length(), buffer);
        } catch (IOException e) {
            throw new IOException(location.describe() + ": " + e.getMessage(), e);
        } finally {
            Reference.reachabilityFence(this);
        }
    }

    /**
     * Reads the payloads from {@code first} to the end of {@code last} (entries of this pack, in
     * order) with one O_DIRECT read into {@code buffer}, as {@link #readDirect}: the slice from
     * {@code first}'s payload to {@code last}'s end, unverified, or null if this pack cannot be
     * read so.
     */
    MemorySegment readDirectSpan(Location first, Location last, MemorySegment buffer) throws IOException {
        checkBounds(first);
        checkBounds(last);
        long length = last.offset() + last.length() - first.offset();
        if (length < first.length() || length > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(first.describe() + " and " + last.describe() + " are not a span");
        }
        try {
            return DirectStream.readAligned(direct::read, first.offset(), (int) length, buffer);
        } catch (IOException e) {
            throw new IOException(first.describe() + " on: " + e.getMessage(), e);
        } finally {
            Reference.reachabilityFence(this);
        }
    }

    /** Whether O_DIRECT reads of this pack are known to be refused (they go through the page cache). */
    boolean directRefused() {
        return direct.refused();
    }

    /** Reads the payload at {@code location} through the page cache into {@code dst} (native or heap memory). */
    @Override
    public void readPayloadInto(Location location, MemorySegment dst) throws IOException {
        checkBounds(location);
        try {
            data.readFully(dst.asSlice(0, location.length()), location.offset());
        } finally {
            Reference.reachabilityFence(this);
        }
    }

    /** Asks the kernel for the metadata around {@code location} and after it ({@link WindowHints}). */
    @Override
    public void metadataAhead(Location location) {
        metadataHints.ahead(location.offset(), packSize, metadataHintNanos, data::willNeed);
    }

    /** Sets how long a window's hint stands (for tests). */
    void hintMetadataAgainAfter(long nanos) {
        metadataHintNanos = nanos;
    }

    /** Metadata read-ahead hints given so far (for tests). */
    int metadataHintsGiven() {
        return (int) metadataHints.given();
    }

    @Override
    public void willNeed(Location location) {
        data.willNeed(location.offset() - PackFormat.ENTRY_HEADER, PackFormat.ENTRY_HEADER + (long) location.length());
    }

    @Override
    public String describe() {
        return packPath.getFileName().toString();
    }

    @Override
    public String toString() {
        return "Pack[" + id + ", " + count + " entries]";
    }
}

package castore.service.cache;

import castore.hash.RecordedCrc;
import castore.io.DirectFile;
import castore.io.DirectStream;
import castore.io.WindowHints;
import castore.model.B3Digest;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.regex.Pattern;

/**
 * Content-addressed entries under one directory with a size limit, kept in append-only segment
 * files ({@code DIR/segments/<name>.seg}) rather than one file per entry: after the page cache is
 * dropped, reading thousands of small files costs a disk seek and an inode each, while entries
 * written together sit together in a segment (a warm mount over a remote store read its small
 * files 4x slower with a file per entry). A record is a header (magic, kind, key, length; for a
 * chunk also the CRC32C of its bytes) and the bytes; the in-memory index (kind, key) -> (segment,
 * offset, length, CRC) is rebuilt at start by walking the record headers of every segment, oldest
 * first, later records of a key winning.
 *
 * <p>Nothing read here is trusted: the caller checks every value it reads and {@link #delete}s
 * what fails. A chunk's record carries the CRC32C of the bytes it was given, which were verified
 * against their digest before they were written, so the caller may check a chunk read back against
 * that ({@link Location#crc}) in place of hashing it again: what it must catch is damage on disk
 * (docs/cache.md). A record torn by a crash ends the walk of its segment.
 *
 * <p><b>Eviction</b> deletes whole segments, oldest first, down to 90% of the limit. To keep it
 * least-recently-used in effect, an entry used (read, or hit in the memory tier) while its
 * segment is among the next to be evicted (the oldest {@code size - limit/2} bytes, so never
 * while the cache is at most half full) is copied to the newest segment: what is in use
 * survives, also across restarts.
 *
 * <p><b>Sharing</b>: several processes may use one directory. Each appends only to segments it
 * created (unique names; chunks and metadata in separate segments), sees the segments that existed when it started, and evicts from those;
 * a segment another process deleted is a miss (an open one stays readable).
 */
public final class DiskCache implements AutoCloseable {
    private static final String SEGMENTS = "segments";
    private static final String SUFFIX = ".seg";
    private static final int MAGIC = 0x63617331; // "cas1"
    /** A record whose header ends with the CRC32C of its bytes (chunks since CRCs; older ones are "cas1"). */
    private static final int MAGIC_CRC = 0x63617332; // "cas2"
    /** magic, kind, key, length. */
    static final int HEADER = Integer.BYTES + 1 + B3Digest.LENGTH + Integer.BYTES;
    /** magic, kind, key, length, CRC32C of the bytes. */
    static final int CRC_HEADER = HEADER + Integer.BYTES;
    /**
     * Chunk segments appended to at once, one per lane: a caller gives the chunks of one stream
     * the same lane (see {@link #write(String, B3Digest, byte[], int)}), so that they lie one
     * after the other in a segment and a later reader of that stream reads them in spans, as from
     * the local store. With one segment for all, four parallel readers' chunks were interleaved,
     * and a warm reader of each quarter then read them one by one (twice the disk reads).
     */
    static final int CHUNK_LANES = 4;
    /**
     * Blocks of {@link DirectAppender#BLOCK} in memory for appends at most: two per lane, so one
     * lane's block is written while the lane fills another (~8 ms of a cold read at 1 GB/s).
     */
    private static final int APPEND_BLOCKS = 2 * CHUNK_LANES;
    private static final List<String> KINDS = List.of(CachingBlobService.CHUNKS, CachingBlobService.CHUNK_LISTS,
            CachingDirectoryService.DIRECTORIES, CachingBlobService.BOUND_LISTS);
    /**
     * Kinds whose deletion ({@link #delete}) is recorded, as a record of no bytes (none of their
     * values encodes to nothing): a chunk list dropped as wrong must not come back at the next
     * start, where the walk of its segment would find it again.
     */
    private static final Set<String> TOMBSTONED = Set.of(CachingBlobService.CHUNK_LISTS);

    /**
     * One segment file; {@code sequence} orders segments by age within this process. Read (and
     * appended to, while this process writes it) through a {@link NativeFile} straight between
     * the file and the entry arrays, or through a FileChannel where native calls are not available.
     */
    private static final class Segment {
        final Path path;
        final long sequence;
        private final NativeFile file;
        private final FileChannel channel;
        volatile long size;
        volatile boolean deleted;
        /** The file opened again with O_DIRECT, on first use. */
        private final DirectFile direct;
        /** Where this process appends with O_DIRECT; null if it does not (metadata, no O_DIRECT, a segment of an earlier run). */
        private final DirectAppender appender;
        /** Read-ahead for the metadata kinds' records ({@link DiskCache#metadataAhead}). */
        final WindowHints metadataHints = new WindowHints();

        private Segment(Path path, long sequence, NativeFile file, FileChannel channel, long size, DirectAppender.Blocks blocks,
                long reserve) {
            this.path = path;
            this.sequence = sequence;
            this.file = file;
            this.channel = channel;
            this.size = size;
            this.direct = new DirectFile(path);
            this.appender = blocks != null && file != null ? DirectAppender.open(path, file, blocks, reserve) : null;
        }

        /** An existing segment, for reading; NoSuchFileException if another process evicted it. */
        static Segment open(Path path, long sequence) throws IOException {
            NativeFile file = NativeFile.openForReading(path);
            if (file == null) {
                FileChannel channel = FileChannel.open(path, StandardOpenOption.READ);
                return new Segment(path, sequence, null, channel, channel.size(), null, 0);
            }
            try {
                return new Segment(path, sequence, file, null, Files.size(path), null, 0);
            } catch (IOException e) {
                file.close();
                throw e;
            }
        }

        /**
         * A new, empty segment to append to; with {@code blocks}, appended with O_DIRECT where the
         * file system allows it, its first {@code reserve} bytes reserved on disk meanwhile.
         */
        static Segment create(Path path, long sequence, DirectAppender.Blocks blocks, long reserve) throws IOException {
            NativeFile file = NativeFile.create(path);
            FileChannel channel = file != null ? null
                    : FileChannel.open(path, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ, StandardOpenOption.WRITE);
            return new Segment(path, sequence, file, channel, 0, blocks, reserve);
        }

        /** Reads {@code dst[0, length)} from {@code offset}; false if the file ends first. */
        boolean readFully(byte[] dst, int length, long offset) throws IOException {
            return readFully(dst, 0, length, offset);
        }

        /** Reads {@code dst[at, at + length)} from {@code offset}; false if the file ends first. */
        boolean readFully(byte[] dst, int at, int length, long offset) throws IOException {
            if (appender != null) {
                DirectAppender.Pending pending = appender.read(MemorySegment.ofArray(dst).asSlice(at, length), offset);
                if (pending != null) {
                    return pending.available() == length && (pending.fromFile() == 0 || readFileFully(dst, at, (int) pending.fromFile(), offset));
                }
            }
            return readFileFully(dst, at, length, offset);
        }

        private boolean readFileFully(byte[] dst, int at, int length, long offset) throws IOException {
            if (file != null) {
                return file.readFully(dst, at, length, offset);
            }
            ByteBuffer buffer = ByteBuffer.wrap(dst, at, length);
            while (buffer.hasRemaining()) {
                if (channel.read(buffer, offset + buffer.position() - at) < 0) {
                    return false;
                }
            }
            return true;
        }

        /**
         * Reads {@code [offset, offset + dst.byteSize())} into native memory: with O_DIRECT where
         * the file system allows it (the caller aligns offset, length and memory; {@code entries}
         * are counted as read so), else through the page cache; the bytes read (fewer at the end
         * of the file).
         */
        long readNative(MemorySegment dst, long offset, LongAdder directReads, int entries) throws IOException {
            if (appender != null) {
                DirectAppender.Pending pending = appender.read(dst, offset);
                if (pending != null) {
                    // The file part ends where the oldest block in memory starts: aligned, as O_DIRECT wants.
                    long fromFile = pending.fromFile();
                    if (fromFile > 0 && readFileNative(dst.asSlice(0, fromFile), offset, directReads, entries) < fromFile) {
                        return 0;
                    }
                    return pending.available();
                }
            }
            return readFileNative(dst, offset, directReads, entries);
        }

        private long readFileNative(MemorySegment dst, long offset, LongAdder directReads, int entries) throws IOException {
            long n = direct.read(dst, offset);
            if (n >= 0) {
                directReads.add(entries);
                return n;
            }
            if (file != null) {
                return file.readNative(dst, offset);
            }
            ByteBuffer buffer = dst.asByteBuffer();
            while (buffer.hasRemaining()) {
                if (channel.read(buffer, offset + buffer.position()) < 0) {
                    break;
                }
            }
            return buffer.position();
        }

        /** A read-ahead hint; nothing through a FileChannel. */
        void willNeed(long offset, long length) {
            if (file != null) {
                file.willNeed(offset, length);
            }
        }

        /** Appends a record, header then bytes, at {@code offset} (this process's size of the segment). */
        void appendRecord(byte[] header, byte[] bytes, int length, long offset) throws IOException {
            if (appender != null) {
                appender.appendRecord(header, bytes, length, offset);
                return;
            }
            // Header, then bytes: a crash between them leaves a record the walk at start ignores.
            writeFully(header, header.length, offset);
            writeFully(bytes, length, offset + header.length);
        }

        private void writeFully(byte[] src, int length, long offset) throws IOException {
            if (file != null) {
                file.writeFully(src, 0, length, offset);
                return;
            }
            ByteBuffer buffer = ByteBuffer.wrap(src, 0, length);
            while (buffer.hasRemaining()) {
                channel.write(buffer, offset + buffer.position());
            }
        }

        /**
         * Whether nothing of this segment can be read after an append at {@code failedAt} failed:
         * that record was its first, or (with direct appends) the bytes were lost from its start.
         */
        boolean holdsNothing(long failedAt) {
            return appender != null ? lostWhole() : failedAt == 0;
        }

        /** Whether a direct appender lost every byte of this segment (its writes failed from the start). */
        boolean lostWhole() {
            return appender != null && appender.lostFrom() == 0;
        }

        /** No more appends: what is still in memory goes to the file in the background. */
        void finishAppends() {
            if (appender != null) {
                appender.finish();
            }
        }

        /** Waits for {@link #finishAppends} to be done. */
        void awaitAppends() {
            if (appender != null) {
                appender.awaitWritten();
            }
        }

        /** Closes the files; appends not written yet are dropped (call {@link #finishAppends} and {@link #awaitAppends} first to keep them). */
        void close() {
            if (appender != null) {
                appender.close();
            }
            direct.close();
            if (file != null) {
                file.close(); // waits for reads in flight: the descriptor number is not reused under them
                return;
            }
            try {
                channel.close();
            } catch (IOException ignored) {
                // nothing was pending: appends are written through
            }
        }
    }

    /**
     * Where an entry's bytes are; a copy stored again under the same key gets a new one.
     * {@code crc}: the CRC32C of the bytes the record was written with as {@link RecordedCrc}
     * gives it (a chunk's), or 0 if its record has none.
     */
    record Location(Segment segment, long offset, int length, long crc) {
        /** Whether {@code bytes} have the CRC32C this record was written with; false if it has none. */
        boolean crcMatches(MemorySegment bytes) {
            return crc != 0 && RecordedCrc.of(bytes) == crc;
        }
    }

    private final Path root;
    private final Path segmentsDir;
    private final long limit;
    private final long segmentBytes;
    private final List<Map<B3Digest, Location>> index = new ArrayList<>();
    /** Live segments, oldest first; guarded by this. */
    private final List<Segment> segments = new ArrayList<>();
    private final AtomicLong total = new AtomicLong();
    /** Set by {@link #close}: no record is appended after it. Guarded by this. */
    private boolean closed;
    /** Entries read with O_DIRECT ({@link #readNative}). */
    private final LongAdder directReads = new LongAdder();
    private final LongAdder metadataHints = new LongAdder();
    private volatile long metadataHintNanos = WindowHints.STANDS_NANOS;
    private long nextSequence;
    /** Segments with a smaller sequence are in the older half: their entries are copied forward when used. */
    private volatile long promoteBelow = Long.MIN_VALUE;
    /**
     * The segments being appended to: one per chunk lane, and the last one for everything else
     * (Directories, chunk lists, marks), so that metadata stays dense: a walk of a tree reads a few
     * pages, not pages scattered between the chunks fetched at the same time. Guarded by this.
     */
    private final Segment[] active = new Segment[CHUNK_LANES + 1];
    private static final int METADATA = CHUNK_LANES;
    /** The blocks chunk segments are appended through with O_DIRECT; null to append through the page cache. */
    private final DirectAppender.Blocks appendBlocks;

    /** A cache appending through the page cache. */
    public DiskCache(Path root, long limit) throws IOException {
        this(root, limit, false);
    }

    /**
     * With {@code directAppends}, chunks are appended with O_DIRECT where the file system allows
     * it ({@link DirectAppender}): for a mount, whose own page cache holds what it reads.
     */
    public DiskCache(Path root, long limit, boolean directAppends) throws IOException {
        this(root, limit, directAppends ? new DirectAppender.Blocks(APPEND_BLOCKS) : null);
    }

    /** With the blocks (and writer) direct appends go through, or null for none: tests pass their own. */
    DiskCache(Path root, long limit, DirectAppender.Blocks appendBlocks) throws IOException {
        if (limit <= 0) {
            throw new IllegalArgumentException("cache size must be positive, got " + limit);
        }
        this.root = root;
        this.limit = limit;
        this.segmentBytes = Math.clamp(limit / 16, 4096, 64L << 20);
        this.segmentsDir = root.resolve(SEGMENTS);
        this.appendBlocks = appendBlocks;
        for (int i = 0; i < KINDS.size(); i++) {
            index.add(new ConcurrentHashMap<>());
        }
        Files.createDirectories(segmentsDir);
        if (!Files.isWritable(segmentsDir)) {
            throw new IOException("cache directory " + root + " is not writable");
        }
        dropFilePerEntryLayout();
        load();
        synchronized (this) {
            evictIfNeeded();
        }
    }

    /** An entry of the old layout, {@code <hh>/<hex>}, or one of its writes cut short, {@code <hex8><random>.tmp}. */
    private static final Pattern OLD_ENTRY = Pattern.compile("[0-9a-f]{64}|[0-9a-f]{8}[0-9]+\\.tmp");
    private static final Pattern OLD_FAN_OUT = Pattern.compile("[0-9a-f]{2}");

    /**
     * Deletes what an earlier version kept as one file per entry ({@code DIR/<kind>/<hh>/<hex>}):
     * it is only a cache. Only files named as that layout named them, then the directories they
     * leave empty: DIR may not be a cache at all (a typo, a home directory), and its
     * {@code chunks} or {@code directories} then hold someone's files.
     */
    private void dropFilePerEntryLayout() throws IOException {
        for (String kind : KINDS) {
            Path old = root.resolve(kind);
            if (!Files.isDirectory(old, LinkOption.NOFOLLOW_LINKS)) {
                continue;
            }
            try (DirectoryStream<Path> fanOut = Files.newDirectoryStream(old)) {
                for (Path hh : fanOut) {
                    if (!OLD_FAN_OUT.matcher(hh.getFileName().toString()).matches()
                            || !Files.isDirectory(hh, LinkOption.NOFOLLOW_LINKS)) {
                        continue;
                    }
                    try (DirectoryStream<Path> entries = Files.newDirectoryStream(hh)) {
                        for (Path entry : entries) {
                            if (OLD_ENTRY.matcher(entry.getFileName().toString()).matches()
                                    && Files.isRegularFile(entry, LinkOption.NOFOLLOW_LINKS)) {
                                Files.deleteIfExists(entry);
                            }
                        }
                    }
                    deleteIfEmpty(hh);
                }
            }
            deleteIfEmpty(old);
        }
    }

    private static void deleteIfEmpty(Path dir) throws IOException {
        try {
            Files.deleteIfExists(dir);
        } catch (DirectoryNotEmptyException kept) {
            // holds something the old layout did not write
        }
    }

    /**
     * Segment names as {@link #newSegment} makes them, and as it made them before session 30
     * (no count). Nothing else in {@code DIR/segments} is ours: DIR may not be a cache, and a
     * {@code *.seg} there counted as a segment, and was deleted as broken or evicted as old
     * ({@code DiskCacheTest.filesInSegmentsWhoseNamesTheCacheNeverMakesAreLeftAlone}).
     */
    private static final Pattern SEGMENT_NAME = Pattern.compile("[0-9a-f]{12}(-[0-9a-f]{12})?-[0-9a-f]{8}\\.seg");

    /** Opens every segment, oldest first, and indexes its records. */
    private void load() throws IOException {
        List<Path> paths = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(segmentsDir,
                p -> SEGMENT_NAME.matcher(p.getFileName().toString()).matches())) {
            ds.forEach(paths::add);
        }
        Collections.sort(paths); // names start with the creation time
        for (Path p : paths) {
            Segment segment;
            try {
                segment = Segment.open(p, nextSequence++);
            } catch (NoSuchFileException raced) {
                continue; // evicted by another process
            }
            segments.add(segment);
            total.addAndGet(segment.size);
            indexRecords(segment);
        }
        updatePromotionBound();
    }

    /** Indexes the records of a segment up to the first one that is torn or not a record. */
    private void indexRecords(Segment segment) throws IOException {
        byte[] bytes = new byte[CRC_HEADER];
        ByteBuffer header = ByteBuffer.wrap(bytes);
        byte[] key = new byte[B3Digest.LENGTH];
        long offset = 0;
        while (offset + HEADER <= segment.size) {
            // One read of the longer header where the file has it (an old record's bytes fill the rest).
            if (!segment.readFully(bytes, (int) Math.min(CRC_HEADER, segment.size - offset), offset)) {
                return;
            }
            header.clear();
            int magic = header.getInt();
            int kind = header.get();
            header.get(key);
            int length = header.getInt();
            int headerLength = magic == MAGIC_CRC ? CRC_HEADER : HEADER;
            long crc = magic == MAGIC_CRC ? RecordedCrc.stored(header.getInt()) : 0;
            long end = offset + headerLength + (long) length;
            if ((magic != MAGIC && magic != MAGIC_CRC) || kind < 0 || kind >= KINDS.size() || length < 0 || end > segment.size) {
                return;
            }
            if (length == 0 && TOMBSTONED.contains(KINDS.get(kind))) {
                index.get(kind).remove(B3Digest.of(key)); // deleted as wrong (see delete)
            } else {
                index.get(kind).put(B3Digest.of(key), new Location(segment, offset + headerLength, length, crc));
            }
            offset = end;
        }
    }

    public Path root() {
        return root;
    }

    public long limit() {
        return limit;
    }

    /** Bytes currently held in segments this process knows, including superseded records. */
    public long size() {
        return total.get();
    }

    private Map<B3Digest, Location> index(String kind) {
        int i = KINDS.indexOf(kind);
        if (i < 0) {
            throw new IllegalArgumentException("unknown cache kind " + kind);
        }
        return index.get(i);
    }

    /**
     * The entry's bytes, unverified, or empty if absent. Read straight into the array returned
     * (see {@link NativeFile}); a segment evicted meanwhile, closed or cut short is a miss.
     */
    public Optional<byte[]> read(String kind, B3Digest key) throws IOException {
        Location at = index(kind).get(key);
        if (at == null) {
            return Optional.empty();
        }
        byte[] bytes = new byte[at.length()];
        return readAt(kind, key, at, bytes, 0) ? Optional.of(bytes) : Optional.empty();
    }

    /**
     * Reads the entry, unverified, into {@code dst[0, length)} when it is exactly {@code length}
     * bytes long: for a caller that reuses its buffers. False if it is absent or of another
     * length (which a caller that knows the length would find corrupted), or as {@link #read}.
     */
    public boolean readInto(String kind, B3Digest key, byte[] dst, int length) throws IOException {
        return readInto(kind, key, dst, 0, length);
    }

    /** {@link #readInto(String, B3Digest, byte[], int)} into {@code dst[from, from + length)}. */
    public boolean readInto(String kind, B3Digest key, byte[] dst, int from, int length) throws IOException {
        Location at = index(kind).get(key);
        return at != null && at.length() == length && from >= 0 && length <= dst.length - from && readAt(kind, key, at, dst, from);
    }

    /** Reads {@code dst[from, from + at.length)}; a segment gone or cut short forgets the entry and is a miss. */
    private boolean readAt(String kind, B3Digest key, Location at, byte[] dst, int from) {
        metadataAhead(kind, at);
        boolean complete;
        try {
            complete = !at.segment().deleted && at.segment().readFully(dst, from, at.length(), at.offset());
        } catch (IOException closedOrGone) {
            complete = false;
        }
        if (!complete) {
            index(kind).remove(key, at);
            return false;
        }
        if (at.segment().sequence < promoteBelow) {
            promote(kind, key, at, from == 0 ? dst : Arrays.copyOfRange(dst, from, from + at.length()));
        }
        return true;
    }

    /**
     * Metadata read-ahead before a read of {@code kind} at {@code at}, as the local store's packs
     * have ({@link WindowHints}): a walk over a warm cache reads a tree's Directories about in the
     * order they came, and the page cache's own read-ahead read them a few pages at a time (a warm
     * lstat over a daemon: 217-226 device reads of the cache, 52-60 with this, the local store
     * 42; docs/performance.md, Remote mount, "Session 40"). Chunks have read-ahead of their own.
     */
    private void metadataAhead(String kind, Location at) {
        Segment segment = at.segment();
        if (!kind.equals(CachingBlobService.CHUNKS) && !segment.deleted) {
            metadataHints.add(segment.metadataHints.ahead(at.offset(), segment.size, metadataHintNanos, segment::willNeed));
        }
    }

    /** Metadata windows asked for so far (for tests). */
    long metadataHints() {
        return metadataHints.sum();
    }

    /** Sets how long a metadata window's hint stands (for tests). */
    void hintMetadataAgainAfter(long nanos) {
        metadataHintNanos = nanos;
    }

    /**
     * Reads the entry, unverified, into native memory when it is exactly {@code length} bytes
     * long: with O_DIRECT where the file system allows it (past the page cache), for a
     * {@link DirectStream}. {@code buffer} is aligned to {@link DirectStream#ALIGN} and holds
     * {@code length} bytes rounded out to it at both ends. The slice holding the entry, or null if
     * it is absent or of another length; a segment gone or cut short forgets the entry.
     */
    public MemorySegment readNative(String kind, B3Digest key, int length, MemorySegment buffer) {
        Location at = index(kind).get(key);
        if (at == null || at.length() != length) {
            return null;
        }
        MemorySegment payload;
        try {
            payload = at.segment().deleted ? null
                    : DirectStream.readAligned((dst, offset) -> at.segment().readNative(dst, offset, directReads, 1), at.offset(), length, buffer);
        } catch (IOException closedOrGone) {
            payload = null;
        }
        if (payload == null) {
            index(kind).remove(key, at);
            return null;
        }
        if (at.segment().sequence < promoteBelow) {
            promote(kind, key, at, payload.toArray(ValueLayout.JAVA_BYTE));
        }
        return payload;
    }

    /**
     * How many of the entries {@code keys[0..count)} (with those lengths) lie together in one
     * segment, in any order, with nothing else between them but record headers, so that one read of
     * at most {@code bufferBytes} takes them all; 0 if the first is not here. Any order, because
     * chunks fetched at the same time for one stream are appended in the order their fetches end.
     */
    public int span(String kind, B3Digest[] keys, int[] lengths, int count, long bufferBytes) {
        return together(index(kind), keys, lengths, count, bufferBytes, new Location[count]);
    }

    /**
     * {@link #span}, with the entries' places put in {@code at}: the largest n such that entries
     * 0..n-1 fill the range from the first byte of any of them to the last, but for at most
     * {@link DirectStream#ALIGN} per entry (its record header), and that range rounded out to
     * ALIGN fits {@code bufferBytes}.
     */
    private static int together(Map<B3Digest, Location> entries, B3Digest[] keys, int[] lengths, int count, long bufferBytes,
            Location[] at) {
        at[0] = entries.get(keys[0]);
        if (at[0] == null || at[0].length() != lengths[0]) {
            return 0;
        }
        long from = at[0].offset();
        long to = from + at[0].length();
        long bytes = at[0].length();
        int best = 1;
        for (int n = 1; n < count; n++) {
            Location next = entries.get(keys[n]);
            if (next == null || next.segment() != at[0].segment() || next.length() != lengths[n]) {
                break;
            }
            from = Math.min(from, next.offset());
            to = Math.max(to, next.offset() + next.length());
            if (DirectStream.alignedLength(from, to) > bufferBytes) {
                break;
            }
            at[n] = next;
            bytes += next.length();
            if (to - from - bytes <= (long) n * DirectStream.ALIGN) {
                best = n + 1; // 0..n fill their range: nothing of another entry in it
            }
        }
        return best;
    }

    /**
     * {@link #readNative} of a {@link #span} with one read into {@code buffer}: each entry's slice
     * (unverified) into {@code payloads}; how many of the first ones still lie together (entries
     * move when promoted or fetched again), 0 if not even the first can be read so.
     */
    public int readNativeSpan(String kind, B3Digest[] keys, int[] lengths, int count, MemorySegment buffer, MemorySegment[] payloads) {
        Location[] at = new Location[count];
        int n = together(index(kind), keys, lengths, count, buffer.byteSize(), at);
        if (n == 0) {
            return 0;
        }
        Segment segment = at[0].segment();
        long from = Long.MAX_VALUE;
        long to = 0;
        for (int k = 0; k < n; k++) {
            from = Math.min(from, at[k].offset());
            to = Math.max(to, at[k].offset() + at[k].length());
        }
        MemorySegment whole;
        try {
            int entries = n;
            whole = segment.deleted ? null
                    : DirectStream.readAligned((dst, offset) -> segment.readNative(dst, offset, directReads, entries), from, (int) (to - from), buffer);
        } catch (IOException closedOrGone) {
            whole = null;
        }
        if (whole == null) {
            return 0;
        }
        for (int k = 0; k < n; k++) {
            payloads[k] = whole.asSlice(at[k].offset() - from, at[k].length());
            if (segment.sequence < promoteBelow) {
                promote(kind, keys[k], at[k], payloads[k].toArray(ValueLayout.JAVA_BYTE));
            }
        }
        return n;
    }

    /** Entries read with O_DIRECT so far. */
    public long directReads() {
        return directReads.sum();
    }

    /** Asks the kernel to start reading an entry's bytes (a reader will want them soon); only a hint. */
    public void willNeed(String kind, B3Digest key) {
        Location at = index(kind).get(key);
        if (at != null && !at.segment().deleted) {
            at.segment().willNeed(at.offset(), at.length());
        }
    }

    /** Marks an entry as used without reading it (it was served from memory): copied forward if old. */
    public void touch(String kind, B3Digest key) {
        Location at = index(kind).get(key);
        if (at != null && at.segment().sequence < promoteBelow) {
            try {
                read(kind, key);
            } catch (IOException ignored) {
                // a lost recency hint
            }
        }
    }

    public boolean contains(String kind, B3Digest key) {
        return index(kind).containsKey(key);
    }

    /**
     * Stores {@code bytes} under {@code key} (appended to this process's newest segment), then
     * evicts down to the limit. The bytes must be the verified value of the key: a chunk's record
     * carries their CRC32C, which later reads may check in place of the digest.
     */
    public void write(String kind, B3Digest key, byte[] bytes) throws IOException {
        write(kind, key, bytes, 0);
    }

    /**
     * {@link #write(String, B3Digest, byte[])} of a chunk into lane {@code lane} (taken modulo
     * {@link #CHUNK_LANES}; other kinds have one segment of their own whatever the lane).
     */
    public void write(String kind, B3Digest key, byte[] bytes, int lane) throws IOException {
        write(kind, key, bytes, bytes.length, lane);
    }

    /** {@link #write(String, B3Digest, byte[], int)} of the value in {@code bytes[0, length)}; the array is not kept. */
    public void write(String kind, B3Digest key, byte[] bytes, int length, int lane) throws IOException {
        if (contains(kind, key)) {
            touch(kind, key);
            return;
        }
        long crc = kind.equals(CachingBlobService.CHUNKS) ? RecordedCrc.of(bytes, 0, length) : 0;
        append(kind, key, bytes, length, null, crc, lane, false);
    }

    /**
     * Copies a used entry of an old segment ({@code bytes[0, from.length)}) to the newest one, so
     * eviction of the old one keeps it. The bytes are not verified yet: the copy keeps the CRC
     * (or none) of its original, so damage read here is still caught in the copy.
     */
    private void promote(String kind, B3Digest key, Location from, byte[] bytes) {
        try {
            append(kind, key, bytes, from.length(), from, from.crc(), 0, false);
        } catch (IOException ignored) {
            // the entry stays where it is, until its segment is evicted
        }
    }

    /**
     * Appends a record of {@code bytes[0, length)} with {@code crc} ({@link Location#crc}) to the
     * segment of its kind (and {@code lane}, for chunks); with {@code replacing}, only if the key
     * still points there. A {@code tombstone} (no bytes) is appended only while the key has no
     * entry (one stored meanwhile stays) and is not indexed.
     */
    private synchronized void append(String kind, B3Digest key, byte[] bytes, int length, Location replacing, long crc,
            int lane, boolean tombstone) throws IOException {
        if (closed) {
            // Background work that outlived the store (a fetch that ignored its interrupt) must
            // not start a segment nobody will close.
            throw new IOException("cache " + root + " is closed");
        }
        Map<B3Digest, Location> entries = index(kind);
        Location current = entries.get(key);
        if (replacing != null ? current != replacing : current != null) {
            return;
        }
        int stream = kind.equals(CachingBlobService.CHUNKS) ? Math.floorMod(lane, CHUNK_LANES) : METADATA;
        if (active[stream] == null) {
            active[stream] = newSegment(stream != METADATA ? appendBlocks : null);
        }
        byte[] header = new byte[crc != 0 ? CRC_HEADER : HEADER];
        ByteBuffer fields = ByteBuffer.wrap(header).putInt(crc != 0 ? MAGIC_CRC : MAGIC).put((byte) KINDS.indexOf(kind))
                .putInt(HEADER - Integer.BYTES, length);
        if (crc != 0) {
            fields.putInt(HEADER, (int) crc);
        }
        key.copyTo(header, Integer.BYTES + 1);
        Segment segment = active[stream];
        long offset = segment.size;
        long recordLength = header.length + (long) length;
        try {
            segment.appendRecord(header, bytes, length, offset);
        } catch (IOException | RuntimeException e) {
            // Broken from this record on: what it holds before stays readable. Writing on at the
            // same offset would leave the failed record's tail (bytes a remote chose) after a
            // shorter record, where a restart's walk would parse it as records.
            seal(stream);
            if (segment.holdsNothing(offset)) {
                // Broken at its start (a full disk fails every append): kept, each failed write
                // would leave an empty file that counts no bytes, so no eviction ever removes it.
                try {
                    drop(segment);
                } catch (IOException notDeleted) {
                    e.addSuppressed(notDeleted);
                }
                updatePromotionBound();
            }
            throw e;
        }
        segment.size = offset + recordLength;
        total.addAndGet(recordLength);
        if (!tombstone) {
            entries.put(key, new Location(segment, offset + header.length, length, crc));
        }
        if (segment.size >= segmentBytes) {
            seal(stream);
        }
        evictIfNeeded();
    }

    /** No more records into the active segment of {@code stream}: the next starts a new one. Holds this. */
    private void seal(int stream) {
        Segment sealed = active[stream];
        active[stream] = null;
        sealed.finishAppends(); // what is still in memory goes to the file in the background
        updatePromotionBound();
    }

    private Segment newSegment(DirectAppender.Blocks blocks) throws IOException {
        dropSegmentsLostWhole();
        // Names sort in creation order (load() relies on it): the time, then this process's count,
        // since many segments can start within one millisecond; the random part keeps two
        // processes' names apart.
        String name = "%012x-%012x-%08x%s".formatted(System.currentTimeMillis(), nextSequence,
                ThreadLocalRandom.current().nextInt(), SUFFIX);
        Path p = segmentsDir.resolve(name);
        Segment segment = Segment.create(p, nextSequence++, blocks, segmentBytes);
        segments.add(segment);
        updatePromotionBound();
        return segment;
    }

    /**
     * Forgets an entry (e.g. one that failed verification, or a chunk list that turned out wrong);
     * its bytes go with their segment. For a chunk list also in later processes: a record of no
     * bytes (a tombstone) is appended, which the walk at start takes as the entry's deletion.
     * Before, a list dropped as wrong came back at the next start and failed the next read again
     * instead of being asked for anew. (A copy that failed verification needs none: a later
     * process finds it damaged too.)
     */
    public void delete(String kind, B3Digest key) {
        if (index(kind).remove(key) != null && TOMBSTONED.contains(kind)) {
            try {
                append(kind, key, new byte[0], 0, null, 0, 0, true);
            } catch (IOException | java.io.UncheckedIOException e) {
                // as a failed write: the entry is back at the next start, and dropped again there
            }
        }
    }

    /** Where the entry is now (null if absent): taken before a read, for {@link #deleteIfStill}. */
    Location place(String kind, B3Digest key) {
        return index(kind).get(key);
    }

    /**
     * Forgets the entry only if it is still the copy at {@code place}: a caller whose read failed
     * verification must not drop a good copy another thread stored under the key meanwhile
     * (fetched again after finding the same bad one). If the read met a newer copy instead, that
     * one stays until a read of it fails too.
     */
    void deleteIfStill(String kind, B3Digest key, Location place) {
        if (place != null) {
            index(kind).remove(key, place);
        }
    }

    /** Deletes the oldest segments until 90% of the limit, so eviction runs in batches. Holds this. */
    private void evictIfNeeded() throws IOException {
        if (total.get() <= limit) {
            return;
        }
        long target = limit - limit / 10;
        while (total.get() > target && !segments.isEmpty()) {
            drop(segments.getFirst());
        }
        updatePromotionBound();
    }

    /** Forgets a segment and deletes its file. Holds this. */
    private void drop(Segment segment) throws IOException {
        for (int i = 0; i < active.length; i++) {
            if (active[i] == segment) {
                active[i] = null; // everything older is gone: start afresh
            }
        }
        segments.remove(segment);
        segment.deleted = true;
        for (Map<B3Digest, Location> entries : index) {
            entries.values().removeIf(l -> l.segment() == segment);
        }
        try {
            Files.deleteIfExists(segment.path);
        } finally {
            // Even if the file stays: it is out of the index and the accounting, so its
            // descriptor must go, and the next write must not evict more to make up for it.
            segment.close();
            total.addAndGet(-segment.size);
        }
    }

    /**
     * Old segments are the oldest ones holding the first {@code total - limit / 2} bytes: those
     * the next writes would evict. Entries used there are copied forward; while the cache is at
     * most half full nothing is. Holds this (or runs before the cache is shared).
     */
    private void updatePromotionBound() {
        long old = total.get() - limit / 2;
        long bound = Long.MIN_VALUE;
        for (Segment s : segments) {
            old -= s.size;
            if (old < 0 || isActive(s)) {
                break;
            }
            bound = s.sequence + 1;
        }
        promoteBelow = bound;
    }

    /**
     * Writes out every record appended so far (the next one starts a new segment) and waits for
     * it: for tests that look at the files.
     */
    synchronized void flush() {
        for (int lane = 0; lane < CHUNK_LANES; lane++) {
            if (active[lane] != null && active[lane].appender != null) {
                seal(lane);
            }
        }
        awaitSealed();
    }

    /** Whether records are appended to {@code segment} now. Holds this. */
    private boolean isActive(Segment segment) {
        for (Segment s : active) {
            if (s == segment) {
                return true;
            }
        }
        return false;
    }

    /** Waits until every sealed segment's appends are in its file and its writing descriptor is closed. */
    synchronized void awaitSealed() {
        for (Segment s : segments) {
            if (!isActive(s)) {
                s.awaitAppends();
            }
        }
        dropSegmentsLostWhole();
    }

    /**
     * Deletes the sealed segments whose direct appends all failed in the background (a full
     * disk): a segment can fill up in memory and be sealed before its first block write fails,
     * so no append fails on it and {@link #append} never drops it. Kept, each would stay as a
     * file that counts no bytes, which no eviction removes. Holds this.
     */
    private void dropSegmentsLostWhole() {
        for (Segment s : List.copyOf(segments)) {
            if (!isActive(s) && s.lostWhole()) {
                try {
                    drop(s);
                } catch (IOException notDeleted) {
                    // Out of the index and the accounting already: a restart's walk finds it empty.
                }
            }
        }
        updatePromotionBound();
    }

    /** Bytes appended and not yet in their segment's file (direct appends in memory). */
    synchronized long appendsInMemory() {
        long bytes = 0;
        for (Segment s : segments) {
            if (s.appender != null) {
                bytes += s.appender.inMemory();
            }
        }
        return bytes;
    }

    /** Where an entry's bytes are, for tests that damage them: segment file and offset. */
    Optional<Map.Entry<Path, Long>> locate(String kind, B3Digest key) {
        Location at = index(kind).get(key);
        return at == null ? Optional.empty() : Optional.of(Map.entry(at.segment().path, at.offset()));
    }

    /** Writes out what is appended, then closes the segments. */
    @Override
    public synchronized void close() {
        closed = true;
        for (Segment s : segments) {
            s.finishAppends();
        }
        for (Segment s : segments) {
            s.awaitAppends();
        }
        java.util.Arrays.fill(active, null);
        dropSegmentsLostWhole();
        for (Segment s : segments) {
            s.close();
        }
        segments.clear();
        if (appendBlocks != null) {
            appendBlocks.close();
        }
    }
}

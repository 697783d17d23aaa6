package castore.store.local;

import castore.io.Libc;
import castore.model.InvalidDataException;
import castore.model.Name;
import castore.model.Node;
import castore.service.CorruptedDataException;
import castore.service.RootService;
import com.google.protobuf.InvalidProtocolBufferException;
import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.Arrays;
import java.util.Iterator;
import java.util.Map;
import java.util.NavigableMap;
import java.util.NoSuchElementException;
import java.util.Objects;
import java.util.Optional;
import java.util.Spliterator;
import java.util.Spliterators;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.stream.Stream;
import java.util.stream.StreamSupport;
import java.util.zip.CRC32C;
import java.util.zip.CheckedOutputStream;

/**
 * Named roots in two files under {@code roots/}: {@code base}, sorted by name with an offset table
 * (binary search, streamed listing), and {@code journal}, an append-only log of puts and removes
 * since the base was written. A writer appends one checksummed record under an exclusive flock of
 * {@code roots/lock}; when the journal grows past a threshold it is merged into a new base.
 * Both files carry a generation so a reader never combines a base with a journal it does not
 * follow from (see docs/local-store.md). Readers take no lock: they re-read a file when its
 * identity, size or mtime changed, so another process's put is seen at the next call.
 */
final class LocalRootService implements RootService {
    static final int COMPACT_RECORDS = 4096;
    static final long COMPACT_BYTES = 1 << 20;
    private static final long BASE_MAGIC = 0x53544f4f52534143L; // "CASROOTS"
    private static final long JOURNAL_MAGIC = 0x4c4e524a52534143L; // "CASRJRNL"
    private static final int BASE_END = 0x444e4552; // "REND"
    private static final int BASE_HEADER = 24;
    private static final int BASE_TRAILER = 24;
    private static final int JOURNAL_HEADER = 16;
    private static final byte PUT = 1;
    private static final byte REMOVE = 2;
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final LocalStore store;
    private final Path basePath;
    private final Path journalPath;
    private final Path lockPath;
    private final boolean sync;
    private final ReentrantLock writeLock = new ReentrantLock();
    private volatile Base base;
    private volatile Journal journal;
    private final int compactRecords;

    LocalRootService(LocalStore store, Path dir, boolean sync, int compactRecords) {
        this.store = store;
        this.basePath = dir.resolve("base");
        this.journalPath = dir.resolve("journal");
        this.lockPath = dir.resolve("lock");
        this.sync = sync;
        this.compactRecords = compactRecords;
    }

    /** What identifies one version of a file: replaced (new inode), appended (size) or touched (mtime). */
    private record FileVersion(Object key, long size, long mtimeNanos) {
        static FileVersion of(Path p) throws IOException {
            try {
                var a = Files.readAttributes(p, BasicFileAttributes.class);
                return new FileVersion(a.fileKey(), a.size(), a.lastModifiedTime().to(TimeUnit.NANOSECONDS));
            } catch (NoSuchFileException e) {
                return null;
            }
        }
    }

    /** The sorted file, mapped (null segment: no base yet, generation 0). */
    private record Base(FileVersion version, MemorySegment data, long generation, long count, long tableOffset) {
        static final Base NONE = new Base(null, null, 0, 0, 0);

        Name nameAt(long i) {
            long at = data.get(LONG, tableOffset + 8 * i);
            int n = data.get(SHORT, at) & 0xffff;
            return Name.of(data.asSlice(at + 2, n).toArray(ValueLayout.JAVA_BYTE));
        }

        Node nodeAt(long i, String where) throws CorruptedDataException {
            long at = data.get(LONG, tableOffset + 8 * i);
            int n = data.get(SHORT, at) & 0xffff;
            int len = data.get(INT, at + 2 + n);
            byte[] proto = data.asSlice(at + 6 + n, len).toArray(ValueLayout.JAVA_BYTE);
            return decodeNode(proto, where).node();
        }
    }

    private static int compareBytes(MemorySegment s, long at, int n, byte[] name) {
        int common = Math.min(n, name.length);
        for (int k = 0; k < common; k++) {
            int c = Integer.compare(s.get(ValueLayout.JAVA_BYTE, at + k) & 0xff, name[k] & 0xff);
            if (c != 0) {
                return c;
            }
        }
        return Integer.compare(n, name.length);
    }

    /** The journal, parsed: latest value per name (a null value is a removal). */
    private record Journal(FileVersion version, long generation, NavigableMap<Name, Node> changes, long validLength, int records) {
        static final Journal NONE = new Journal(null, 0, new TreeMap<>(), 0, 0);
    }

    private record State(Base base, Journal journal) {
        Optional<Node> get(Name name, String where) throws CorruptedDataException {
            if (journal.changes().containsKey(name)) {
                return Optional.ofNullable(journal.changes().get(name));
            }
            long lo = 0;
            long hi = base.count() - 1;
            byte[] key = name.bytesUnsafe();
            while (lo <= hi) {
                long mid = (lo + hi) >>> 1;
                int c = compareBytes(base.data(), nameOffset(base, mid), nameLength(base, mid), key);
                if (c == 0) {
                    return Optional.of(base.nodeAt(mid, where));
                }
                if (c < 0) {
                    lo = mid + 1;
                } else {
                    hi = mid - 1;
                }
            }
            return Optional.empty();
        }
    }

    private static long nameOffset(Base b, long i) {
        return b.data().get(LONG, b.tableOffset() + 8 * i) + 2;
    }

    private static int nameLength(Base b, long i) {
        return b.data().get(SHORT, b.data().get(LONG, b.tableOffset() + 8 * i)) & 0xffff;
    }

    // ---- reading ----

    /** A consistent view of both files as they are now. */
    private State current() throws IOException {
        for (int attempt = 0; ; attempt++) {
            Journal j = loadJournal(attempt > 0);
            Base b = loadBase(attempt > 0);
            // A journal follows the base it was started with; the previous journal is also fine
            // (its records are already merged into the base, so replaying them changes nothing).
            if (j.generation() == b.generation() || j.generation() + 1 == b.generation()) {
                return new State(b, j);
            }
            if (attempt == 20) {
                throw new CorruptedDataException("roots in " + basePath.getParent() + ": journal generation " + j.generation()
                        + " does not follow base generation " + b.generation());
            }
            Thread.onSpinWait();
        }
    }

    private Base loadBase(boolean force) throws IOException {
        FileVersion v = FileVersion.of(basePath);
        Base cached = base;
        if (!force && cached != null && Objects.equals(cached.version(), v)) {
            return cached;
        }
        if (v == null) {
            base = Base.NONE;
            return Base.NONE;
        }
        MemorySegment data;
        try (FileChannel ch = FileChannel.open(basePath, StandardOpenOption.READ)) {
            data = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), Arena.ofAuto());
        } catch (NoSuchFileException e) {
            return loadBase(true); // replaced between stat and open
        }
        String where = "roots base " + basePath;
        long size = data.byteSize();
        if (size < BASE_HEADER + BASE_TRAILER || data.get(LONG, 0) != BASE_MAGIC || data.get(INT, size - 4) != BASE_END) {
            throw new CorruptedDataException(where + " is truncated or not a roots file");
        }
        CRC32C crc = new CRC32C();
        crc.update(data.asSlice(0, size - 8).asByteBuffer());
        if ((int) crc.getValue() != data.get(INT, size - 8)) {
            throw new CorruptedDataException(where + " fails its checksum");
        }
        long count = data.get(LONG, size - 24);
        long table = data.get(LONG, size - 16);
        if (count < 0 || table < BASE_HEADER || table + 8 * count != size - BASE_TRAILER) {
            throw new CorruptedDataException(where + " has an inconsistent offset table");
        }
        Base b = new Base(v, data, data.get(LONG, 16), count, table);
        base = b;
        return b;
    }

    private Journal loadJournal(boolean force) throws IOException {
        FileVersion v = FileVersion.of(journalPath);
        Journal cached = journal;
        if (!force && cached != null && Objects.equals(cached.version(), v)) {
            return cached;
        }
        if (v == null) {
            journal = Journal.NONE;
            return Journal.NONE;
        }
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(journalPath);
        } catch (NoSuchFileException e) {
            return loadJournal(true);
        }
        String where = "roots journal " + journalPath;
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        if (bytes.length < JOURNAL_HEADER || b.getLong(0) != JOURNAL_MAGIC) {
            throw new CorruptedDataException(where + " is truncated or not a roots journal");
        }
        long generation = b.getLong(8);
        TreeMap<Name, Node> changes = new TreeMap<>();
        int at = JOURNAL_HEADER;
        int records = 0;
        CRC32C crc = new CRC32C();
        // A record cut short by a crash (or still being written) ends the journal; a bad record
        // with intact data after it is damage, and is reported rather than overwritten.
        while (at < bytes.length) {
            int len = at + 8 <= bytes.length ? b.getInt(at) : -1;
            boolean complete = len >= 3 && at + 8L + len <= bytes.length;
            if (complete) {
                crc.reset();
                crc.update(bytes, at + 8, len);
            }
            if (!complete || (int) crc.getValue() != b.getInt(at + 4)) {
                boolean torn = complete ? allZero(bytes, at + 8 + len) // the last record, or zeros after it
                        : len < 0 || at + 8L + len > bytes.length || allZero(bytes, at);
                // A length damaged to run past the end looks like a record cut short; an intact
                // record after it tells the two apart (a torn append is the journal's last bytes).
                if (!torn || intactRecordAfter(bytes, at, crc)) {
                    throw new CorruptedDataException(where + " is damaged at offset " + at);
                }
                break;
            }
            applyRecord(changes, bytes, at + 8, len, where);
            at += 8 + len;
            records++;
        }
        Journal j = new Journal(new FileVersion(v.key(), bytes.length, v.mtimeNanos()), generation, changes, at, records);
        if (bytes.length == v.size()) {
            journal = j; // cache only what matches the stat we keyed it by
        }
        return j;
    }

    /** Whether a record with a valid CRC starts anywhere after offset {@code at}. */
    private static boolean intactRecordAfter(byte[] bytes, int at, CRC32C crc) {
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (int p = at + 1; p + 8 + 3 <= bytes.length; p++) {
            int len = b.getInt(p);
            if (len >= 3 && p + 8L + len <= bytes.length) {
                crc.reset();
                crc.update(bytes, p + 8, len);
                if ((int) crc.getValue() == b.getInt(p + 4)) {
                    return true;
                }
            }
        }
        return false;
    }

    private static boolean allZero(byte[] bytes, int from) {
        for (int i = from; i < bytes.length; i++) {
            if (bytes[i] != 0) {
                return false;
            }
        }
        return true;
    }

    private static void applyRecord(TreeMap<Name, Node> changes, byte[] bytes, int at, int len, String where) throws CorruptedDataException {
        byte op = bytes[at];
        int nameLength = (bytes[at + 1] & 0xff) | (bytes[at + 2] & 0xff) << 8;
        if (3 + nameLength > len) {
            throw new CorruptedDataException(where + ": a record's name overruns it");
        }
        Name name;
        try {
            name = Name.of(Arrays.copyOfRange(bytes, at + 3, at + 3 + nameLength));
        } catch (InvalidDataException e) {
            throw new CorruptedDataException(where + ": " + e.getMessage());
        }
        switch (op) {
            case PUT -> {
                Node.NamedNode named = decodeNode(Arrays.copyOfRange(bytes, at + 3 + nameLength, at + len), where);
                changes.put(name, named.node());
            }
            case REMOVE -> changes.put(name, null);
            default -> throw new CorruptedDataException(where + ": unknown record type " + op);
        }
    }

    private static Node.NamedNode decodeNode(byte[] proto, String where) throws CorruptedDataException {
        try {
            return Node.fromProto(castore.proto.Node.parseFrom(proto));
        } catch (InvalidProtocolBufferException | InvalidDataException e) {
            throw new CorruptedDataException(where + ": undecodable root node: " + e.getMessage());
        }
    }

    @Override
    public Optional<Node> get(Name name) throws IOException {
        return current().get(name, "roots " + basePath.getParent());
    }

    @Override
    public Stream<Node.NamedNode> list() throws IOException {
        State s = current();
        Iterator<Node.NamedNode> it = new MergedIterator(s, "roots base " + basePath);
        return StreamSupport.stream(Spliterators.spliteratorUnknownSize(it, Spliterator.ORDERED | Spliterator.SORTED
                | Spliterator.NONNULL | Spliterator.DISTINCT), false);
    }

    /** Base records and journal changes merged in name order; the journal wins on equal names. */
    private static final class MergedIterator implements Iterator<Node.NamedNode> {
        private final Base base;
        private final Iterator<Map.Entry<Name, Node>> changes;
        private final String where;
        private long baseIndex;
        private Name baseName;
        private Map.Entry<Name, Node> change;
        private Node.NamedNode next;

        MergedIterator(State s, String where) {
            this.base = s.base();
            this.changes = s.journal().changes().entrySet().iterator();
            this.where = where;
            advanceBase();
            change = changes.hasNext() ? changes.next() : null;
        }

        private void advanceBase() {
            baseName = baseIndex < base.count() ? base.nameAt(baseIndex) : null;
        }

        @Override
        public boolean hasNext() {
            while (next == null && (baseName != null || change != null)) {
                int c = baseName == null ? 1 : change == null ? -1 : baseName.compareTo(change.getKey());
                if (c < 0) {
                    try {
                        next = new Node.NamedNode(baseName, base.nodeAt(baseIndex, where));
                    } catch (CorruptedDataException e) {
                        throw new UncheckedIOException(e);
                    }
                    baseIndex++;
                    advanceBase();
                } else {
                    if (c == 0) {
                        baseIndex++;
                        advanceBase();
                    }
                    if (change.getValue() != null) {
                        next = new Node.NamedNode(change.getKey(), change.getValue());
                    }
                    change = changes.hasNext() ? changes.next() : null;
                }
            }
            return next != null;
        }

        @Override
        public Node.NamedNode next() {
            if (!hasNext()) {
                throw new NoSuchElementException();
            }
            Node.NamedNode n = next;
            next = null;
            return n;
        }
    }

    // ---- writing ----

    @Override
    public void put(Name name, Node node) throws IOException {
        Objects.requireNonNull(node, "node");
        store.beginWrite();
        // Everything the root refers to must be visible (and durable) before the root is.
        store.commit();
        byte[] proto = node.toNodeProto(name).toByteArray();
        write(name, PUT, proto);
    }

    @Override
    public boolean remove(Name name) throws IOException {
        store.beginWrite();
        return write(name, REMOVE, new byte[0]);
    }

    private boolean write(Name name, byte op, byte[] proto) throws IOException {
        writeLock.lock();
        try (Posix.Fd lock = Posix.open(lockPath, Libc.O_RDWR | Libc.O_CREAT, 0644)) {
            lock.flock(Posix.LOCK_EX);
            State s = current();
            if (op == REMOVE && s.get(name, "roots").isEmpty()) {
                return false;
            }
            Journal j = s.journal();
            if (j.version() == null || j.generation() != s.base().generation()) {
                // No journal yet, or a compaction was interrupted after its new base: start the
                // journal that follows the base.
                writeEmptyJournal(s.base().generation());
                j = loadJournal(true);
            }
            byte[] n = name.bytesUnsafe();
            int len = 3 + n.length + proto.length;
            ByteBuffer record = ByteBuffer.allocate(8 + len).order(ByteOrder.LITTLE_ENDIAN);
            record.putInt(len).putInt(0).put(op).putShort((short) n.length).put(n).put(proto);
            CRC32C crc = new CRC32C();
            crc.update(record.array(), 8, len);
            record.putInt(4, (int) crc.getValue()).flip();
            try (FileChannel ch = FileChannel.open(journalPath, StandardOpenOption.WRITE)) {
                if (ch.size() > j.validLength()) {
                    ch.truncate(j.validLength()); // drop a record torn by a crash
                }
                long at = j.validLength();
                while (record.hasRemaining()) {
                    at += ch.write(record, at);
                }
                if (sync) {
                    ch.force(false);
                }
            } catch (IOException e) {
                throw StoreLayout.named(journalPath, e);
            }
            if (j.records() + 1 >= compactRecords || j.validLength() + record.capacity() >= COMPACT_BYTES) {
                try {
                    compact();
                } catch (IOException e) {
                    // The record is stored, so the put is done: failing it (a full disk) told an
                    // import its root was not set when it was. A compaction only keeps the journal
                    // short; the next put tries again.
                }
            }
            return true;
        } finally {
            writeLock.unlock();
        }
    }

    private void writeEmptyJournal(long generation) throws IOException {
        ByteBuffer header = ByteBuffer.allocate(JOURNAL_HEADER).order(ByteOrder.LITTLE_ENDIAN);
        header.putLong(JOURNAL_MAGIC).putLong(generation);
        StoreLayout.writeAtomically(journalPath, header.array(), sync);
    }

    /**
     * Merges base and journal into base generation g+1, then starts journal g+1. A crash between
     * the two renames leaves base g+1 with journal g, which readers accept (replaying merged
     * records is harmless) and the next writer rolls forward.
     */
    private void compact() throws IOException {
        State s = current();
        long generation = s.base().generation() + 1;
        Path tmp = basePath.resolveSibling("base.tmp");
        try {
            writeBase(s, generation, tmp);
        } catch (IOException | RuntimeException e) {
            try {
                Files.deleteIfExists(tmp); // what it took of a full disk
            } catch (IOException notDeleted) {
                e.addSuppressed(notDeleted);
            }
            throw e;
        }
        StoreLayout.publish(tmp, basePath, sync);
        writeEmptyJournal(generation);
    }

    /** Writes base generation {@code generation} of {@code s}'s roots to {@code tmp}. */
    private void writeBase(State s, long generation, Path tmp) throws IOException {
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING,
                StandardOpenOption.WRITE)) {
            CRC32C crc = new CRC32C();
            var out = new CheckedOutputStream(new BufferedOutputStream(Channels.newOutputStream(ch), 1 << 16), crc);
            ByteArrayOutputStream table = new ByteArrayOutputStream();
            long at = write(out, le(BASE_HEADER).putLong(BASE_MAGIC).putInt(1).putInt(0).putLong(generation));
            long count = 0;
            for (Iterator<Node.NamedNode> it = new MergedIterator(s, "roots base " + basePath); it.hasNext(); count++) {
                Node.NamedNode r = it.next();
                byte[] n = r.name().bytesUnsafe();
                byte[] proto = r.node().toNodeProto(r.name()).toByteArray();
                table.writeBytes(le(8).putLong(at).array());
                at += write(out, le(6 + n.length + proto.length).putShort((short) n.length).put(n).putInt(proto.length).put(proto));
            }
            long tableOffset = at;
            out.write(table.toByteArray());
            write(out, le(16).putLong(count).putLong(tableOffset));
            out.flush();
            Channels.newOutputStream(ch).write(le(8).putInt((int) crc.getValue()).putInt(BASE_END).array());
            if (sync) {
                ch.force(true);
            }
        }
    }

    private static ByteBuffer le(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static long write(OutputStream out, ByteBuffer filled) throws IOException {
        out.write(filled.array(), 0, filled.position());
        return filled.position();
    }
}

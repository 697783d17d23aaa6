package castore.store.local;

import castore.hash.Blake3;
import castore.io.Libc;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.InvalidDataException;
import castore.service.NotFoundException;
import castore.service.Store;
import castore.service.StoreBusyException;
import castore.service.StoreMaintenance;
import castore.service.UncommittedWrites;
import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import java.util.stream.IntStream;

/**
 * The embedded local store: append-only packs of chunks, chunk lists and directories, each
 * published by an index file renamed into place, and a roots catalog. See docs/local-store.md.
 *
 * <p>A process that writes holds a shared flock on {@code lock} from its first write until
 * {@link #close()}; garbage collection takes it exclusively ({@link #exclusive()}), so it never
 * runs while an import that might reference old objects is alive.
 */
public final class LocalStore implements StoreMaintenance, UncommittedWrites, castore.service.DataDirectory, AutoCloseable {
    /** How a store is opened. */
    public record Options(boolean readOnly, boolean sync, long packSize, int writers, int rootCompactRecords, boolean directReads,
            boolean digestReads) {
        public static final long DEFAULT_PACK_SIZE = 1L << 30;

        /**
         * Two to four pack writers: appends are short (a copy, now and then a pwrite), so more
         * would not write faster, and each one adds a pack per commit.
         */
        public static Options defaults() {
            int writers = Math.clamp(Runtime.getRuntime().availableProcessors(), 2, 4);
            return new Options(false, true, DEFAULT_PACK_SIZE, writers, LocalRootService.COMPACT_RECORDS, false, false);
        }

        public Options withReadOnly(boolean readOnly) {
            return new Options(readOnly, sync, packSize, writers, rootCompactRecords, directReads, digestReads);
        }

        public Options withSync(boolean sync) {
            return new Options(readOnly, sync, packSize, writers, rootCompactRecords, directReads, digestReads);
        }

        public Options withPackSize(long packSize) {
            return new Options(readOnly, sync, packSize, writers, rootCompactRecords, directReads, digestReads);
        }

        /**
         * Whether sequential readers of large blobs read ahead with O_DIRECT
         * ({@link castore.io.DirectStream}) where the file system allows it, rather than through
         * the page cache: for a mount, whose page cache keeps the data (off by default).
         */
        public Options withDirectReads(boolean directReads) {
            return new Options(readOnly, sync, packSize, writers, rootCompactRecords, directReads, digestReads);
        }

        /**
         * Whether every chunk read is checked against its BLAKE3 digest, also where its index
         * entry records a CRC32C (which is checked instead by default: {@link ChunkCrc}).
         */
        public Options withDigestReads(boolean digestReads) {
            return new Options(readOnly, sync, packSize, writers, rootCompactRecords, directReads, digestReads);
        }

        public Options withRootCompactRecords(int records) {
            return new Options(readOnly, sync, packSize, writers, records, directReads, digestReads);
        }
    }

    private final StoreLayout layout;
    private final Options options;
    private final PackStore packs;
    private final LocalBlobService blobs;
    private final LocalDirectoryService directories;
    private final LocalRootService roots;
    private final AtomicLong openWriters = new AtomicLong();
    private volatile boolean session;
    private Posix.Fd sessionLock;
    private Posix.Fd exclusiveLock;
    private boolean closed;

    private LocalStore(StoreLayout layout, Options options) throws IOException {
        this.layout = layout;
        this.options = options;
        this.packs = new PackStore(layout, options.sync(), options.packSize(), options.writers(), options.directReads(),
                options.digestReads());
        this.blobs = new LocalBlobService(this, packs);
        this.directories = new LocalDirectoryService(this, packs);
        this.roots = new LocalRootService(this, layout.roots(), options.sync(), options.rootCompactRecords());
    }

    /** Opens (initialising an empty or absent directory) the store at {@code dir}. */
    public static LocalStore open(Path dir, Options options) throws IOException {
        return new LocalStore(StoreLayout.openOrInit(dir), options);
    }

    /**
     * Opens the store at {@code dir} only if one is there: never creates or initialises one
     * (commands that read). An absent directory is a {@link NotFoundException}, a directory
     * without the store marker an {@link InvalidDataException}.
     */
    public static LocalStore openExisting(Path dir, Options options) throws IOException {
        Path root = dir.toAbsolutePath().normalize();
        if (!Files.isRegularFile(root.resolve(StoreLayout.MARKER))) {
            if (!Files.exists(root)) {
                throw new NotFoundException("no castore store at " + root + ": the directory does not exist "
                        + "(castore import creates it)");
            }
            String why = !Files.isDirectory(root) ? "it is not a directory"
                    : isEmpty(root) ? "it is empty; castore import initialises it"
                    : "it is not empty and has no " + StoreLayout.MARKER + " marker";
            throw new InvalidDataException(root + " is not a castore store (" + why + ")");
        }
        return open(root, options);
    }

    private static boolean isEmpty(Path dir) throws IOException {
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
            return !entries.iterator().hasNext();
        }
    }

    /** The three services over this store, with this store as the resource that closes them. */
    public Store asStore() {
        return new Store(blobs, directories, roots, List.of(this));
    }

    /** The packs (for tests in this package). */
    PackStore packStore() {
        return packs;
    }

    public Path root() {
        return layout.root();
    }

    @Override
    public java.util.Optional<Path> dataDirectory() {
        return java.util.Optional.of(root());
    }

    // ---- writer sessions ----

    /** Called before every write: joins the writers (shared lock) unless gc holds the store. */
    void beginWrite() throws IOException {
        if (session) {
            return;
        }
        synchronized (this) {
            checkOpen();
            if (options.readOnly()) {
                throw new IOException("store " + root() + " is open read-only");
            }
            if (session) {
                return;
            }
            if (exclusiveLock != null) {
                throw new StoreBusyException("store " + root() + " is being garbage-collected by this process");
            }
            Posix.Fd fd = Posix.open(layout.writerLock(), Libc.O_RDWR | Libc.O_CREAT, 0644);
            if (!fd.flock(Posix.LOCK_SH | Posix.LOCK_NB)) {
                fd.close();
                throw new StoreBusyException("store " + root() + " is being garbage-collected; try again when gc has finished");
            }
            // A gc may have run since this process last looked (it needs no lock of ours while
            // we only read): packs it deleted would still answer "already stored", and a write
            // would skip objects that are gone. Writes see the packs as they are from here on,
            // since no gc runs while we hold the shared lock.
            try {
                packs.packs().rescan();
            } catch (IOException | RuntimeException e) {
                fd.close();
                throw e;
            }
            sessionLock = fd;
            session = true;
        }
    }

    void writerOpened() {
        openWriters.incrementAndGet();
    }

    void writerClosed() {
        openWriters.decrementAndGet();
    }

    /**
     * Publishes everything this process wrote so far (durably, unless opened without sync), so
     * other processes see it. Putting a root commits first; a long-running writer that puts no
     * roots (the daemon) commits through an {@link castore.service.IdleCommitter}.
     */
    @Override
    public void commit() throws IOException {
        packs.commit();
    }

    @Override
    public OptionalLong uncommittedSince() {
        long since = packs.uncommittedSince();
        return since == PackStore.NONE ? OptionalLong.empty() : OptionalLong.of(since);
    }

    @Override
    public long lastWrite() {
        return packs.lastAppend();
    }

    private void checkOpen() throws IOException {
        if (closed) {
            throw new IOException("store " + root() + " is closed");
        }
    }

    // ---- maintenance ----

    @Override
    public synchronized Closeable exclusive() throws IOException {
        checkOpen();
        if (exclusiveLock != null) {
            throw new StoreBusyException("store " + root() + " is already held for garbage collection");
        }
        if (openWriters.get() > 0) {
            throw new StoreBusyException("an import is running on " + root() + " in this process");
        }
        commit();
        endSession();
        Posix.Fd fd = Posix.open(layout.writerLock(), Libc.O_RDWR | Libc.O_CREAT, 0644);
        if (!fd.flock(Posix.LOCK_EX | Posix.LOCK_NB)) {
            fd.close();
            throw new StoreBusyException("an import is running on " + root() + " (another process is writing to it)");
        }
        exclusiveLock = fd;
        return () -> {
            synchronized (LocalStore.this) {
                if (exclusiveLock == fd) {
                    exclusiveLock = null;
                    fd.close();
                }
            }
        };
    }

    private void endSession() {
        if (sessionLock != null) {
            session = false;
            sessionLock.close();
            sessionLock = null;
        }
    }

    @Override
    public Verification verifyStored(Consumer<String> problem) throws IOException {
        if (session) {
            commit();
        }
        packs.packs().rescan();
        Consumer<String> report = line -> {
            synchronized (problem) {
                problem.accept(line);
            }
        };
        for (Map.Entry<String, String> b : packs.packs().broken().entrySet()) {
            report.accept("pack " + b.getKey() + ": " + b.getValue());
        }
        try (var all = roots.list()) {
            all.forEach(r -> { });
        } catch (IOException | UncheckedIOException e) {
            report.accept(e instanceof UncheckedIOException u ? u.getCause().getMessage() : e.getMessage());
        }
        Set<Location> verifiedChunks = ConcurrentHashMap.newKeySet();
        AtomicLong checked = new AtomicLong();
        Pack[] all = packs.packs().packs();
        // Blobs first: re-hashing a blob verifies its chunks on the way; the chunk pass skips those.
        for (ObjectKind pass : new ObjectKind[] {ObjectKind.BLOB, ObjectKind.DIRECTORY, ObjectKind.CHUNK}) {
            for (Pack p : all) {
                try {
                    IntStream.range(0, p.count()).parallel().forEach(i -> {
                        Location l = p.entry(i);
                        if (l == null) {
                            if (pass == ObjectKind.CHUNK) {
                                checked.incrementAndGet();
                                report.accept("pack " + p.describe() + ": index entry " + i + " has an unknown kind");
                            }
                            return;
                        }
                        if (l.kind() != pass) {
                            return;
                        }
                        checked.incrementAndGet();
                        if (pass == ObjectKind.CHUNK && verifiedChunks.contains(l)) {
                            return;
                        }
                        try {
                            switch (pass) {
                                case BLOB -> verifyBlob(l, verifiedChunks, report);
                                case DIRECTORY -> verifyDirectory(l, report);
                                case CHUNK -> packs.readDigestVerified(l);
                            }
                        } catch (IOException e) {
                            report.accept(e.getMessage());
                        } catch (RuntimeException e) {
                            report.accept(l.describe() + ": " + e);
                        }
                    });
                } catch (UncheckedIOException e) {
                    throw e.getCause();
                }
            }
        }
        // Asking this store about a blob again costs no round trip: nothing to keep for the caller.
        return new Verification(checked.get(), SoundBlobs.NONE);
    }

    private void verifyBlob(Location l, Set<Location> verifiedChunks, Consumer<String> report) throws IOException {
        ChunkList list = ChunkList.decode(l.source().read(l), l);
        if (list.blobSize() != l.aux()) {
            report.accept(l.describe() + ": its chunks add up to " + list.blobSize() + " bytes, the index says " + l.aux());
            return;
        }
        Blake3.Hasher hasher = Blake3.newHasher();
        for (int i = 0; i < list.count(); i++) {
            B3Digest d = list.digests()[i];
            Location c = packs.findKnown(ObjectKind.CHUNK, d);
            if (c == null) {
                report.accept("blob " + l.digest() + ": chunk " + d + " (" + (i + 1) + " of " + list.count() + ") is missing");
                return;
            }
            if (c.length() != list.sizes()[i]) {
                report.accept("blob " + l.digest() + ": chunk " + d + " has " + c.length() + " bytes, the list says " + list.sizes()[i]);
                return;
            }
            byte[] data = c.source().read(c);
            if (!Blake3.digest(data).equals(d) || ChunkCrc.disagrees(c, data)) {
                return; // reported by the chunk pass, which checks this chunk again
            }
            verifiedChunks.add(c);
            hasher.update(data);
        }
        if (!hasher.digest().equals(l.digest())) {
            report.accept(l.describe() + " is corrupted: its chunks hash to " + hasher.digest());
        }
    }

    private void verifyDirectory(Location l, Consumer<String> report) throws IOException {
        Directory d = LocalDirectoryService.decode(l, packs.readDigestVerified(l));
        if (d.size() != l.aux()) {
            report.accept(l.describe() + ": its size is " + d.size() + ", the index says " + l.aux());
        }
        for (var e : d.entries().entrySet()) {
            if (e.getValue() instanceof DirectoryNode child) {
                Location c = packs.findKnown(ObjectKind.DIRECTORY, child.digest());
                if (c == null) {
                    report.accept("directory " + l.digest() + ": child '" + e.getKey() + "' " + child.digest() + " is missing");
                } else if (c.aux() != child.size()) {
                    report.accept("directory " + l.digest() + ": child '" + e.getKey() + "' claims size " + child.size()
                            + " but " + child.digest() + " has size " + c.aux());
                }
            }
        }
    }

    @Override
    public synchronized SweepResult sweep(Set<B3Digest> liveBlobs, Set<B3Digest> liveDirectories) throws IOException {
        if (exclusiveLock == null) {
            throw new IllegalStateException("sweep needs exclusive() to be held");
        }
        return new Sweeper(layout, packs, options.packSize()).sweep(liveBlobs, liveDirectories);
    }

    // ---- closing ----

    @Override
    public synchronized void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        try {
            packs.close();
        } catch (IOException e) {
            packs.abandon();
            throw e;
        } finally {
            endSession();
            if (exclusiveLock != null) {
                exclusiveLock.close();
                exclusiveLock = null;
            }
        }
    }

    /** Files under packs/ that no index refers to (crash leftovers); only gc removes them. */
    static List<Path> orphans(Path packsDir) throws IOException {
        Set<String> indexed = new HashSet<>();
        List<Path> candidates = new ArrayList<>();
        try (DirectoryStream<Path> s = Files.newDirectoryStream(packsDir)) {
            for (Path p : s) {
                String name = p.getFileName().toString();
                if (name.endsWith(".idx")) {
                    indexed.add(Pack.idOf(p));
                } else {
                    candidates.add(p);
                }
            }
        }
        List<Path> out = new ArrayList<>();
        for (Path p : candidates) {
            String name = p.getFileName().toString();
            if (!name.endsWith(".pack") || !indexed.contains(Pack.idOf(p))) {
                out.add(p);
            }
        }
        return out;
    }
}

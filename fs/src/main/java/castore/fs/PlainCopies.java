package castore.fs;

import castore.hash.Blake3;
import castore.io.Libc;
import castore.io.LowPriority;
import castore.model.B3Digest;
import castore.service.BlobReader;
import castore.service.BlobService;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Whole blobs kept as plain files in a directory of their own, made in the background, so a FUSE
 * mount can let the kernel read them directly (passthrough).
 *
 * <p>Layout: {@code DIR/castore-plain-copies} marks the directory as ours (a directory with other
 * files and no marker is refused, so a typo never deletes user files); complete copies are
 * {@code DIR/<2 hex>/<64 hex digits of the digest>}, mode 0444; copies being written are in
 * {@code DIR/tmp/} and renamed into place only once whole and forced to disk, so a file in a
 * fan-out directory is always a complete copy. One process uses a directory at a time (a lock on
 * the marker). Recency is kept in memory; a copy's mtime is its creation time, refreshed by
 * {@link #open} at most once a minute, so a restart orders copies roughly by last use.
 *
 * <p>Thread-safe: {@link #open} and {@link #request} may be called from many threads; copies are
 * made one at a time by a daemon thread at the lowest CPU priority.
 */
public final class PlainCopies implements AutoCloseable {
    static final String MARKER = "castore-plain-copies";
    static final String TMP = "tmp";
    private static final int PIECE = 1 << 20;
    private static final int QUEUE_LIMIT = 1024;
    private static final long STAMP_INTERVAL_MILLIS = 60_000;
    private static final Set<PosixFilePermission> READ_ONLY = PosixFilePermissions.fromString("r--r--r--");
    private static final System.Logger LOG = System.getLogger("castore.fs");
    /**
     * Directories open in this JVM. The marker's lock keeps other processes out, but a second
     * channel on the marker in this process would not be refused by the kernel, and closing it
     * would drop the first one's lock (POSIX record locks belong to the process).
     */
    private static final Set<Path> OPEN_HERE = ConcurrentHashMap.newKeySet();

    /** A complete copy: its length, and when its mtime was last set (ms since the epoch). */
    private static final class Copy {
        final long size;
        volatile long stamped;

        Copy(long size, long stamped) {
            this.size = size;
            this.stamped = stamped;
        }
    }

    private record Request(B3Digest digest, long size) {
    }

    private final Path dir;
    private final Path tmp;
    private final BlobService blobs;
    private final long minBytes;
    private final long maxBytes;
    private final ProblemLog problems;
    private final Path realDir;
    private final FileChannel markerChannel;

    /** Complete copies, least recently used first; guarded by itself, as is {@link #bytes}. */
    private final LinkedHashMap<B3Digest, Copy> copies = new LinkedHashMap<>(64, 0.75f, true);
    private long bytes;

    /** Requests not yet taken by the maker; guarded by itself, as is {@link #pending}. */
    private final ArrayDeque<Request> queue = new ArrayDeque<>();
    /** Digests queued or being made. */
    private final Set<B3Digest> pending = new HashSet<>();
    private volatile boolean closed;
    private volatile boolean stopped;
    private final Thread maker;

    private PlainCopies(Path dir, BlobService blobs, long minBytes, long maxBytes, Consumer<String> problemSink,
                        Path realDir, FileChannel markerChannel) {
        this.dir = dir;
        this.realDir = realDir;
        this.tmp = dir.resolve(TMP);
        this.blobs = blobs;
        this.minBytes = minBytes;
        this.maxBytes = maxBytes;
        this.problems = new ProblemLog(problemSink);
        this.markerChannel = markerChannel;
        this.maker = Thread.ofPlatform().daemon().name("castore-plain-copies").unstarted(this::makeCopies);
    }

    /**
     * Opens (creating if absent) a copies directory. minBytes: smaller blobs are never copied.
     * maxBytes: the directory's budget; least recently used copies are deleted to stay under it.
     */
    public static PlainCopies open(Path dir, BlobService blobs, long minBytes, long maxBytes) throws IOException {
        return open(dir, blobs, minBytes, maxBytes, line -> LOG.log(System.Logger.Level.WARNING, line));
    }

    /** As {@link #open(Path, BlobService, long, long)}, with the one-line problem reports going to {@code problemSink}. */
    public static PlainCopies open(Path dir, BlobService blobs, long minBytes, long maxBytes, Consumer<String> problemSink)
            throws IOException {
        if (minBytes < 0 || maxBytes < 0) {
            throw new IllegalArgumentException("negative plain-copies bounds: min " + minBytes + ", max " + maxBytes);
        }
        Files.createDirectories(dir);
        Path marker = dir.resolve(MARKER);
        if (!Files.isRegularFile(marker, LinkOption.NOFOLLOW_LINKS)) {
            try (Stream<Path> entries = Files.list(dir)) {
                if (entries.findAny().isPresent()) {
                    throw new IOException(dir + " is not a castore plain-copies directory");
                }
            }
            Files.writeString(marker, "Plain copies of castore blobs, made and deleted by castore: any file here may go at any time.\n");
        }
        Path realDir = dir.toRealPath();
        if (!OPEN_HERE.add(realDir)) {
            throw new IOException(dir + " is in use by another castore process");
        }
        PlainCopies opened = null;
        FileChannel markerChannel = null;
        try {
            markerChannel = FileChannel.open(marker, StandardOpenOption.READ, StandardOpenOption.WRITE);
            if (markerChannel.tryLock() == null) { // held as long as the channel is open
                throw new IOException(dir + " is in use by another castore process");
            }
            opened = new PlainCopies(dir, blobs, minBytes, maxBytes, problemSink, realDir, markerChannel);
            opened.clearTmp();
            opened.scan();
            opened.deleteFiles(opened.evictFor(0));
            opened.maker.start();
            return opened;
        } finally {
            if (opened == null || !opened.maker.isAlive()) {
                if (markerChannel != null) {
                    markerChannel.close(); // releases the lock too
                }
                OPEN_HERE.remove(realDir);
            }
        }
    }

    /** Deletes what a crash left in tmp/ (and makes tmp/ if absent). */
    private void clearTmp() throws IOException {
        if (!Files.isDirectory(tmp, LinkOption.NOFOLLOW_LINKS)) {
            Files.deleteIfExists(tmp);
            Files.createDirectory(tmp);
            return;
        }
        List<Path> leftovers;
        try (Stream<Path> walk = Files.walk(tmp)) {
            leftovers = walk.filter(p -> !p.equals(tmp)).sorted(Comparator.reverseOrder()).toList();
        }
        for (Path p : leftovers) {
            Files.deleteIfExists(p);
        }
    }

    private record Found(B3Digest digest, long size, long mtime) {
    }

    /** Finds the complete copies: files named like a digest in the fan-out directory of their first two digits. */
    private void scan() throws IOException {
        List<Found> found = listCopies(dir);
        found.sort(Comparator.comparingLong(Found::mtime));
        synchronized (copies) {
            for (Found f : found) {
                copies.put(f.digest(), new Copy(f.size(), f.mtime()));
                bytes += f.size();
            }
        }
    }

    /** The complete copies in {@code dir}, in directory order; anything else (tmp/, strangers) is left out. */
    private static List<Found> listCopies(Path dir) throws IOException {
        List<Found> found = new ArrayList<>();
        try (DirectoryStream<Path> fans = Files.newDirectoryStream(dir)) {
            for (Path fan : fans) {
                String prefix = fan.getFileName().toString();
                if (prefix.length() != 2 || !isLowerHex(prefix) || !Files.isDirectory(fan, LinkOption.NOFOLLOW_LINKS)) {
                    continue;
                }
                try (DirectoryStream<Path> files = Files.newDirectoryStream(fan)) {
                    for (Path file : files) {
                        String name = file.getFileName().toString();
                        if (name.length() != 2 * B3Digest.LENGTH || !name.startsWith(prefix) || !isLowerHex(name)) {
                            continue;
                        }
                        BasicFileAttributes attributes;
                        try {
                            attributes = Files.readAttributes(file, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
                        } catch (NoSuchFileException gone) {
                            continue; // deleted since it was listed (verify runs beside a mount that evicts)
                        }
                        if (attributes.isRegularFile()) {
                            found.add(new Found(B3Digest.parse(name), attributes.size(), attributes.lastModifiedTime().toMillis()));
                        }
                    }
                }
            }
        }
        return found;
    }

    /** Whether {@code dir} is a directory a {@link #open} has initialised (it holds the marker). */
    public static boolean isCopiesDirectory(Path dir) {
        return Files.isDirectory(dir) && Files.isRegularFile(dir.resolve(MARKER), LinkOption.NOFOLLOW_LINKS);
    }

    /** What {@link #verify} found: copies re-hashed, their bytes, and the bad ones it deleted. */
    public record Verification(long copies, long bytes, long deleted) {
    }

    /**
     * Re-hashes every complete copy in {@code dir} against the digest it is named after and deletes
     * each one that does not match or cannot be read, with one line to {@code problems}. A mount
     * may be using the directory meanwhile: no lock is taken, a deleted copy is forgotten at its
     * next open (ENOENT) and made again from the store when next asked for, and a copy replaced
     * while it was being hashed (another file at the path by then) is left alone. {@code threads}
     * copies are hashed at once, and {@code problems} is called from those threads.
     */
    public static Verification verify(Path dir, int threads, Consumer<String> problems) throws IOException {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be positive");
        }
        if (!isCopiesDirectory(dir)) {
            throw new IOException(dir + " is not a castore plain-copies directory");
        }
        LongAdder count = new LongAdder();
        LongAdder bytes = new LongAdder();
        LongAdder deleted = new LongAdder();
        List<Found> copies = listCopies(dir);
        // Hashing is CPU work: platform threads, each with its own buffer.
        ExecutorService pool = Executors.newFixedThreadPool(Math.min(threads, Math.max(1, copies.size())), runnable -> {
            Thread thread = new Thread(runnable, "castore-verify-copies");
            thread.setDaemon(true);
            return thread;
        });
        ThreadLocal<byte[]> buffers = ThreadLocal.withInitial(() -> new byte[PIECE]);
        try {
            List<Future<?>> checks = new ArrayList<>(copies.size());
            for (Found f : copies) {
                checks.add(pool.submit(() -> check(dir, f, buffers.get(), count, bytes, deleted, problems)));
            }
            for (Future<?> check : checks) {
                try {
                    check.get();
                } catch (ExecutionException e) {
                    switch (e.getCause()) {
                        case IOException io -> throw io;
                        case RuntimeException r -> throw r;
                        case Error error -> throw error;
                        default -> { }
                    }
                    throw new IllegalStateException(e.getCause());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new java.io.InterruptedIOException("verify of plain copies interrupted");
                }
            }
        } finally {
            pool.shutdownNow();
        }
        return new Verification(count.sum(), bytes.sum(), deleted.sum());
    }

    /** Re-hashes one copy, deleting it (with a line to {@code problems}) if it is bad. */
    private static Void check(Path dir, Found f, byte[] buffer, LongAdder count, LongAdder bytes, LongAdder deleted,
                              Consumer<String> problems) throws IOException {
        String hex = f.digest().toHex();
        Path path = dir.resolve(hex.substring(0, 2)).resolve(hex);
        Object identity;
        String problem;
        try {
            identity = Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey();
        } catch (NoSuchFileException gone) {
            return null; // evicted by a mount meanwhile
        }
        try (FileChannel in = FileChannel.open(path, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
            Blake3.Hasher hasher = Blake3.newHasher();
            long length = 0;
            for (int n; (n = in.read(ByteBuffer.wrap(buffer))) > 0; ) {
                hasher.update(buffer, 0, n);
                length += n;
            }
            count.increment();
            bytes.add(length);
            B3Digest actual = hasher.digest();
            if (actual.equals(f.digest())) {
                return null;
            }
            problem = "plain copy " + path + " hashes to " + actual + ", not to its name";
        } catch (NoSuchFileException gone) {
            return null; // evicted by a mount meanwhile
        } catch (IOException e) {
            problem = "plain copy " + path + " cannot be read (" + e.getMessage() + ")";
        }
        try {
            var now = Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            if (identity.equals(now.fileKey())) {
                Files.deleteIfExists(path);
                deleted.increment();
                problems.accept(problem + ": deleted");
            }
        } catch (NoSuchFileException gone) {
            // gone already
        } catch (IOException e) {
            // Reported, and the rest still checked: one undeletable copy must not hide the others.
            problems.accept(problem + ": NOT deleted (" + e.getMessage() + ")");
        }
        return null;
    }

    private static boolean isLowerHex(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (!(c >= '0' && c <= '9' || c >= 'a' && c <= 'f')) {
                return false;
            }
        }
        return true;
    }

    /** Where the complete copy of {@code digest} is. */
    Path pathOf(B3Digest digest) {
        String hex = digest.toHex();
        return dir.resolve(hex.substring(0, 2)).resolve(hex);
    }

    /**
     * An O_RDONLY file descriptor of the complete copy of {@code digest} (the caller closes it),
     * or -1 if there is none. A copy whose length is not {@code size} is deleted and -1 returned.
     * Marks the copy most recently used. Cheap and never waits for a copy being made.
     */
    public int open(B3Digest digest, long size) throws IOException {
        Copy copy;
        synchronized (copies) {
            copy = copies.get(digest);
        }
        if (copy == null) {
            return -1;
        }
        Path path = pathOf(digest);
        int fd;
        try {
            fd = Libc.open(path, Libc.O_RDONLY, 0);
        } catch (NoSuchFileException gone) {
            // Deleted by someone else, or evicted since the lookup.
            synchronized (copies) {
                if (copies.remove(digest, copy)) {
                    bytes -= copy.size;
                }
            }
            return -1;
        }
        // The length on disk, through the descriptor (fstat): a copy cut short behind our back, or
        // found at start-up with a length its file's node does not have, is never served.
        long onDisk;
        try {
            onDisk = Files.size(Path.of("/proc/self/fd/" + fd));
        } catch (IOException | RuntimeException e) {
            Libc.close(fd);
            throw e;
        }
        if (onDisk != size) {
            Libc.close(fd);
            synchronized (copies) {
                // Unlinked under the lock, and only if still this copy, so a new copy renamed in meanwhile stays.
                if (copies.remove(digest, copy)) {
                    bytes -= copy.size;
                    Files.deleteIfExists(path);
                }
            }
            return -1;
        }
        long now = System.currentTimeMillis();
        if (now - copy.stamped >= STAMP_INTERVAL_MILLIS) {
            copy.stamped = now;
            try {
                Files.setLastModifiedTime(path, FileTime.fromMillis(now));
            } catch (IOException e) {
                // only a hint for the order after a restart
            }
        }
        return fd;
    }

    /**
     * Asks for a copy; returns at once. No-op when size &lt; minBytes or size &gt; maxBytes, when
     * the copy exists, or when it is already queued or being made.
     */
    public void request(B3Digest digest, long size) {
        if (size < minBytes || size > maxBytes || !acceptsRequests()) {
            return;
        }
        synchronized (copies) {
            if (copies.containsKey(digest)) { // containsKey leaves the access order alone
                return;
            }
        }
        synchronized (queue) {
            if (!acceptsRequests() || queue.size() >= QUEUE_LIMIT || !pending.add(digest)) {
                return;
            }
            queue.add(new Request(digest, size));
            queue.notifyAll();
        }
    }

    public long minBytes() {
        return minBytes;
    }

    /**
     * No more copies are of use (the kernel refuses passthrough files for this mount): drops the
     * queue and ignores later requests. The copy in progress is finished; copies made stay.
     */
    public void stopRequests() {
        synchronized (queue) {
            stopped = true;
            dropQueue();
        }
    }

    /** Forgets every queued request and wakes the maker; under the queue's lock. */
    private void dropQueue() {
        for (Request dropped : queue) {
            pending.remove(dropped.digest());
        }
        queue.clear();
        queue.notifyAll();
    }

    /** False once closed or {@link #stopRequests stopped}: requests are then ignored. */
    public boolean acceptsRequests() {
        return !closed && !stopped;
    }

    /** Waits until nothing is queued or being made; false on timeout. For tests and benchmarks. */
    public boolean awaitIdle(Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (queue) {
            while (!pending.isEmpty()) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                TimeUnit.NANOSECONDS.timedWait(queue, left);
            }
            return true;
        }
    }

    /** Bytes held by complete copies. */
    long bytes() {
        synchronized (copies) {
            return bytes;
        }
    }

    /** Complete copies. */
    int count() {
        synchronized (copies) {
            return copies.size();
        }
    }

    /** The maker thread: takes requests one at a time until closed. */
    private void makeCopies() {
        LowPriority.lowerCurrentThread();
        ByteBuffer piece = ByteBuffer.allocateDirect(PIECE);
        while (true) {
            Request next;
            synchronized (queue) {
                while (queue.isEmpty() && !closed) {
                    try {
                        queue.wait();
                    } catch (InterruptedException e) {
                        return; // nothing interrupts this thread (close sets closed and notifies); stop if something does
                    }
                }
                if (closed) {
                    return;
                }
                next = queue.poll();
            }
            try {
                LowPriority.beforeWork(); // a read through a cache starts fetches on virtual threads
                make(next, piece);
            } catch (Exception e) {
                problems.report(next.digest(), "no plain copy of blob " + next.digest() + ": " + e.getMessage());
            } finally {
                synchronized (queue) {
                    pending.remove(next.digest());
                    queue.notifyAll();
                }
            }
        }
    }

    /** Copies one blob into tmp/, then renames it into place; abandons it quietly on close. */
    private void make(Request request, ByteBuffer piece) throws IOException {
        B3Digest digest = request.digest();
        synchronized (copies) {
            if (copies.containsKey(digest)) {
                return; // asked for again while the copy was being made: request() checked before it was placed
            }
        }
        Optional<BlobReader> opened = blobs.open(digest);
        if (opened.isEmpty()) {
            throw new NoSuchFileException("blob not found");
        }
        Path temp = tmp.resolve(digest.toHex());
        boolean placed = false;
        try (BlobReader reader = opened.get()) {
            if (reader.size() != request.size()) {
                throw new IOException("the blob has " + reader.size() + " bytes, " + request.size() + " were asked for");
            }
            // Room first, so the directory stays within its budget while the copy is written.
            deleteFiles(evictFor(request.size()));
            Files.deleteIfExists(temp);
            try (FileChannel out = FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                long position = 0;
                while (position < request.size()) {
                    if (closed) {
                        return;
                    }
                    piece.clear();
                    int n = reader.read(position, piece);
                    if (n <= 0) {
                        throw new IOException("the blob ended after " + position + " of " + request.size() + " bytes");
                    }
                    piece.flip();
                    while (piece.hasRemaining()) {
                        out.write(piece);
                    }
                    position += n;
                }
                out.force(false); // a copy that survives a crash must be whole
            }
            Files.setPosixFilePermissions(temp, READ_ONLY);
            Path target = pathOf(digest);
            Files.createDirectories(target.getParent());
            synchronized (copies) {
                if (closed) {
                    return;
                }
                Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE);
                placed = true;
                copies.put(digest, new Copy(request.size(), System.currentTimeMillis()));
                bytes += request.size();
            }
        } finally {
            if (!placed) {
                Files.deleteIfExists(temp);
            }
        }
    }

    /** Takes least recently used copies out of the map until {@code incoming} more bytes fit the budget; returns them. */
    private List<B3Digest> evictFor(long incoming) {
        List<B3Digest> victims = new ArrayList<>();
        synchronized (copies) {
            var eldestFirst = copies.entrySet().iterator();
            while (bytes + incoming > maxBytes && eldestFirst.hasNext()) {
                var eldest = eldestFirst.next();
                eldestFirst.remove();
                bytes -= eldest.getValue().size;
                victims.add(eldest.getKey());
            }
        }
        return victims;
    }

    /** Deletes evicted copies; a reader holding one open keeps reading it. */
    private void deleteFiles(List<B3Digest> victims) {
        for (B3Digest victim : victims) {
            try {
                Files.deleteIfExists(pathOf(victim));
            } catch (IOException e) {
                problems.report(victim, "cannot delete the plain copy of blob " + victim + ": " + e.getMessage());
            }
        }
    }

    /** Stops the maker: a copy in progress is abandoned and its temporary file deleted; queued requests are dropped. */
    @Override
    public void close() {
        synchronized (queue) {
            closed = true;
            dropQueue();
        }
        boolean interrupted = false;
        while (maker.isAlive()) {
            try {
                maker.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (markerChannel.isOpen()) {
            try {
                markerChannel.close(); // releases the lock
            } catch (IOException e) {
                // the lock goes with the channel anyway
            }
            OPEN_HERE.remove(realDir);
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}

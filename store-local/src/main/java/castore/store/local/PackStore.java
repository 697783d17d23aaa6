package castore.store.local;

import castore.hash.Blake3;
import castore.hash.RecordedCrc;
import castore.io.DirectReads;
import castore.io.Libc;
import castore.model.B3Digest;
import castore.service.CorruptedDataException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;

/**
 * All objects of a store: the published packs ({@link PackSet}) plus what this process has
 * written and not yet published. Writes go to a small pool of {@link PackWriter}s, one per
 * concurrent appender, so threads never queue behind each other's pwrite. Objects written here
 * are found at once through the in-memory {@code pending} maps; {@link #commit()} publishes
 * every open pack, after which other processes see them too.
 *
 * <p>Metadata (directories and chunk lists) goes to packs of its own, apart from chunk data: a
 * cold walk of a tree then reads a few contiguous megabytes, as squashfs reads its directory
 * table, instead of a page-cache readahead window of chunk data around every directory.
 */
final class PackStore {
    /**
     * Chunk-load locks of this store's blob readers, striped by reader and chunk index (a reader
     * of a small file should not allocate locks): loads of one chunk wait for each other, loads of
     * others rarely do. Per store, not per JVM: a mount's low-priority warm-up store must never
     * hold a lock the mounted store's readers wait for.
     */
    private final Object[] loadLocks = new Object[64];
    private final StoreLayout layout;
    private final boolean sync;
    private final long rollSize;
    private final int maxWriters;
    private final PackSet packs;
    private final Semaphore writerPermits;
    /** Open writers not in use: for chunk data, and for metadata. */
    private final ConcurrentLinkedDeque<PackWriter> idleData = new ConcurrentLinkedDeque<>();
    private final ConcurrentLinkedDeque<PackWriter> idleMeta = new ConcurrentLinkedDeque<>();
    /**
     * Metadata writers that filled up, taking no more appends, for the next {@link #commit()} to
     * publish (after the data packs): their chunk lists may name chunks in data packs still open.
     */
    private final ConcurrentLinkedDeque<PackWriter> fullMeta = new ConcurrentLinkedDeque<>();
    /**
     * The data writer each thread appended to last, which it takes again when idle: a thread
     * writing a file keeps its chunks together in one pack. Taking whichever writer was idle
     * interleaved two files written at once chunk by chunk across two packs, so a read of one
     * pulled the other's chunks in with every read-ahead window.
     */
    private final ThreadLocal<PackWriter> lastData = new ThreadLocal<>();
    private volatile boolean closed;
    /** What {@link #uncommittedSince()} answers when every append is published. */
    static final long NONE = Long.MIN_VALUE;
    /** {@link System#nanoTime()} of the first append not yet published ({@link #NONE}: none), and of the last one. */
    private final AtomicLong uncommittedSince = new AtomicLong(NONE);
    private volatile long lastAppend;
    /** Objects in packs not yet published, by kind (indexed by ordinal). */
    private final List<ConcurrentHashMap<B3Digest, Location>> pending =
            List.of(new ConcurrentHashMap<>(), new ConcurrentHashMap<>(), new ConcurrentHashMap<>());

    /** Appends under way, by kind: two threads storing the same new object write it once. */
    private final List<ConcurrentHashMap<B3Digest, CompletableFuture<Location>>> inFlight =
            List.of(new ConcurrentHashMap<>(), new ConcurrentHashMap<>(), new ConcurrentHashMap<>());

    /** Read-ahead with O_DIRECT for sequential readers of large blobs; null when turned off. */
    private final DirectReads directReads;

    /** Whether reads check chunks by digest even where the index records a CRC32C ({@link ChunkCrc}). */
    private final boolean digestReads;

    PackStore(StoreLayout layout, boolean sync, long rollSize, int maxWriters, boolean directReads, boolean digestReads)
            throws IOException {
        Arrays.setAll(loadLocks, i -> new Object());
        this.digestReads = digestReads;
        this.directReads = directReads && Libc.O_DIRECT != 0 && Libc.available() ? new DirectReads("castore-direct-read") : null;
        this.layout = layout;
        this.sync = sync;
        this.rollSize = rollSize;
        this.maxWriters = maxWriters;
        this.writerPermits = new Semaphore(maxWriters, true);
        this.packs = new PackSet(layout.packs());
    }

    /** The store's O_DIRECT read-ahead, or null if it does not read so. */
    DirectReads directReads() {
        return directReads;
    }

    PackSet packs() {
        return packs;
    }

    boolean sync() {
        return sync;
    }

    /** Finds an object, seeing what other processes published up to now. */
    Location find(ObjectKind kind, B3Digest digest) throws IOException {
        Location l = pending.get(kind.ordinal()).get(digest);
        return l != null ? l : packs.findFresh(kind, digest);
    }

    /**
     * Finds an object without touching the file system: for deduplication, where missing an
     * object another process published a moment ago only costs a duplicate copy.
     */
    Location findKnown(ObjectKind kind, B3Digest digest) {
        Location l = pending.get(kind.ordinal()).get(digest);
        return l != null ? l : packs.find(kind, digest);
    }

    /**
     * The payload, checked: against the CRC32C its index entry records if it is a chunk that has
     * one (and digest reads are off), else against its digest (chunks and directories are named
     * by their BLAKE3).
     */
    byte[] readVerified(Location location) throws IOException {
        byte[] data = location.source().readPayload(location);
        if (!intact(location, MemorySegment.ofArray(data))) {
            throw corrupted(location);
        }
        return data;
    }

    /** {@link #readVerified} into {@code dst[0, length)}; on a failed check its content is undefined. */
    void readVerifiedInto(Location location, byte[] dst) throws IOException {
        location.source().readPayloadInto(location, dst);
        if (!intact(location, MemorySegment.ofArray(dst).asSlice(0, location.length()))) {
            throw corrupted(location);
        }
    }

    /**
     * {@link #readVerified} into {@code dst}, exactly the payload's length (heap or native memory);
     * on a failed check its content is undefined.
     */
    void readVerifiedInto(Location location, MemorySegment dst) throws IOException {
        location.source().readPayloadInto(location, dst);
        if (!intact(location, dst)) {
            throw corrupted(location);
        }
    }

    /**
     * The payload checked against its digest whatever the index records, and against the CRC32C
     * too if it records one: for {@code verify}, which must find an index entry that disagrees
     * with intact bytes as well as damaged bytes. The entry's header in the pack is checked too:
     * reads of chunks and Directories skip it, but gc copies entries only with intact headers.
     */
    byte[] readDigestVerified(Location location) throws IOException {
        byte[] data = location.source().read(location);
        if (!Blake3.digest(data).equals(location.digest())) {
            throw corrupted(location);
        }
        if (ChunkCrc.disagrees(location, data)) {
            throw new CorruptedDataException(location.describe() + " is damaged: its index entry records a CRC32C its intact content does not have");
        }
        return data;
    }

    /** Whether {@code payload} (read from {@code location}) is what the store wrote there: see {@link #readVerified}. */
    boolean intact(Location location, MemorySegment payload) {
        if (!digestReads && ChunkCrc.recorded(location)) {
            return RecordedCrc.of(payload) == location.aux();
        }
        return Blake3.digest(payload).equals(location.digest());
    }

    static CorruptedDataException corrupted(Location location) {
        return new CorruptedDataException(location.describe() + " is corrupted: its content does not match "
                + (ChunkCrc.recorded(location) ? "its digest or its recorded CRC32C" : "its digest"));
    }

    /**
     * Appends an object unless this process already has it or another thread is appending it
     * (then waits for that append, so the object is visible on return). Returns true if this
     * call stored it. For a CHUNK, {@code aux} is ignored: the entry records the chunk's CRC32C
     * ({@link ChunkCrc}).
     */
    boolean appendIfAbsent(ObjectKind kind, B3Digest digest, byte[] data, int offset, int length, long aux)
            throws IOException {
        while (true) {
            if (findKnown(kind, digest) != null) {
                return false;
            }
            var claims = inFlight.get(kind.ordinal());
            var mine = new CompletableFuture<Location>();
            var other = claims.putIfAbsent(digest, mine);
            if (other != null) {
                try {
                    other.join();
                } catch (CompletionException | CancellationException failed) {
                    // That append failed; try it ourselves.
                }
                continue;
            }
            try {
                if (findKnown(kind, digest) != null) { // stored between our check and our claim
                    mine.complete(null);
                    return false;
                }
                // A new chunk's aux records its CRC32C, computed only now that it is known to be new.
                long value = kind == ObjectKind.CHUNK ? RecordedCrc.of(data, offset, length) : aux;
                mine.complete(append(kind, digest, data, offset, length, value));
                return true;
            } catch (IOException | RuntimeException | Error e) {
                mine.completeExceptionally(e);
                throw e;
            } finally {
                claims.remove(digest, mine);
            }
        }
    }

    /** Appends an object and makes it visible to this process. */
    Location append(ObjectKind kind, B3Digest digest, byte[] data, int offset, int length, long aux) throws IOException {
        writerPermits.acquireUninterruptibly();
        var idle = kind == ObjectKind.CHUNK ? idleData : idleMeta;
        PackWriter writer = null;
        Location location;
        try {
            if (closed) {
                throw new IOException("store " + layout.root() + " is closed");
            }
            PackWriter preferred = kind == ObjectKind.CHUNK ? lastData.get() : null;
            writer = preferred != null && idle.remove(preferred) ? preferred : idle.pollFirst();
            if (writer == null) {
                writer = PackWriter.create(layout.packs(), sync);
            }
            if (kind == ObjectKind.CHUNK && writer != preferred) {
                lastData.set(writer);
            }
            location = writer.append(kind, digest, data, offset, length, aux);
            pending.get(kind.ordinal()).putIfAbsent(digest, location);
            long now = System.nanoTime();
            lastAppend = now;
            uncommittedSince.compareAndSet(NONE, now);
            if (kind != ObjectKind.CHUNK && (writer.size() >= rollSize || writer.count() >= PackWriter.MAX_ENTRIES)) {
                // Published alone, a full metadata pack could show chunk lists (and Directories)
                // whose chunks (and children) are in packs still open: other processes would see
                // blobs they cannot read, and a kill would leave them dangling. A commit below
                // publishes it after every data pack.
                fullMeta.add(writer);
                writer = null;
            } else if (writer.size() >= rollSize || writer.count() >= PackWriter.MAX_ENTRIES) {
                PackWriter full = writer;
                writer = null;
                try {
                    publish(full);
                } catch (IOException | RuntimeException e) {
                    // Still pending (its objects count as stored in this process): back among the
                    // idle writers, so that the next commit publishes it or fails. Dropped here, it
                    // was never published, and a root put later committed without it.
                    writer = full;
                    throw e;
                }
            }
        } finally {
            if (writer != null) {
                idle.addFirst(writer);
            }
            writerPermits.release();
        }
        if (!fullMeta.isEmpty()) {
            commit(); // the object is pending; a failure leaves the full pack for the next commit
        }
        return location;
    }

    /** {@link System#nanoTime()} of the first append not yet published, or {@link #NONE}. */
    long uncommittedSince() {
        return uncommittedSince.get();
    }

    /** {@link System#nanoTime()} of the last append. */
    long lastAppend() {
        return lastAppend;
    }

    /** Publishes every open pack (data synced first, if configured). Returns the number of objects published. */
    int commit() throws IOException {
        writerPermits.acquireUninterruptibly(maxWriters);
        try {
            int published = 0;
            IOException failure = null;
            // Chunk data first: metadata published alongside never points at chunks still unseen,
            // so none is published if a data pack failed (its chunk lists would name chunks that
            // a close then discards).
            // Full metadata packs before open ones: they are older, so they hold the children.
            for (var idle : List.of(idleData, fullMeta, idleMeta)) {
                if (failure != null) {
                    break;
                }
                List<PackWriter> writers = new ArrayList<>(idle);
                idle.clear();
                for (PackWriter w : writers) {
                    try {
                        int count = w.count();
                        publish(w);
                        published += count;
                    } catch (IOException e) {
                        idle.add(w); // still pending: a later commit retries
                        if (failure == null) {
                            failure = e;
                        }
                    }
                }
            }
            if (failure != null) {
                throw failure;
            }
            uncommittedSince.set(NONE); // no append runs during a commit: it holds every permit
            return published;
        } finally {
            writerPermits.release(maxWriters);
        }
    }

    /** Publishes what is pending and refuses further appends. */
    void close() throws IOException {
        writerPermits.acquireUninterruptibly(maxWriters);
        try {
            closed = true;
        } finally {
            writerPermits.release(maxWriters);
        }
        if (directReads != null) {
            directReads.shutdown();
        }
        commit();
    }

    private void publish(PackWriter writer) throws IOException {
        if (writer.count() == 0) {
            writer.discard();
            return;
        }
        Pack pack = writer.publish();
        packs.add(pack);
        // The pack is findable now; only then forget the pending locations that point at it.
        for (var map : pending) {
            map.values().removeIf(l -> l.source() == writer);
        }
    }

    /** Discards open packs without publishing them (their objects vanish): after a failed close. */
    void abandon() {
        for (var idle : List.of(idleData, idleMeta, fullMeta)) {
            PackWriter w;
            while ((w = idle.poll()) != null) {
                try {
                    w.discard();
                } catch (IOException ignored) {
                    // nothing was visible; an orphan file is removed by the next gc
                }
            }
        }
        for (var map : pending) {
            map.clear();
        }
    }

    /** The chunk-load lock for {@code stripe} (any int). */
    Object loadLock(int stripe) {
        return loadLocks[stripe & (loadLocks.length - 1)];
    }
}

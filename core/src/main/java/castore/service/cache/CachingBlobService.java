package castore.service.cache;

import castore.hash.Blake3;
import castore.io.DirectReads;
import castore.io.DirectStream;
import castore.io.DirectStreams;
import castore.io.Libc;
import castore.model.B3Digest;
import castore.service.BlobReader;
import castore.service.BlobService;
import castore.service.BlobWriter;
import castore.service.ChunkMeta;
import castore.service.ChunkSlots;
import castore.service.ChunkStream;
import castore.service.ChunkedBlobReader;
import castore.service.RecentChunks;
import castore.service.CorruptedDataException;
import castore.service.NotFoundException;
import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A {@link BlobService} that keeps the chunks and chunk lists it fetches from another one (a
 * remote store) in a {@link TieredCache}, so a second read of anything is local. Concurrent
 * misses for one chunk fetch it once. Sequential readers and {@link #prefetch} fetch following
 * chunks in the background with bounded parallelism. Writes go straight to the inner service.
 */
public final class CachingBlobService implements BlobService {
    static final String CHUNKS = "chunks";
    static final String CHUNK_LISTS = "blobs";
    /** Blobs whose chunk list has been checked against the blob digest (all chunks hashed in order once). */
    static final String BOUND_LISTS = "bound";
    /** How far from the previous read's end a read may start and still count as sequential. */
    private static final long SEQUENTIAL_SLACK = 1 << 20;
    /** Sequential readers of one blob told apart. */
    private static final int STREAMS = 4;
    /** Reused buffers of a streaming reader ({@link ChunkSlots}): a few chunks per stream. */
    private static final int SLOTS = 4 * STREAMS;
    /** How long close waits for whole-blob checks that are reading the disk tier. */
    private static final long BIND_AT_CLOSE_SECONDS = 5;
    /** How long close waits for background fetches, interrupted, to end. */
    private static final long FETCHES_AT_CLOSE_SECONDS = 5;
    /** Chunks a random reader keeps of those it read from disk (see {@link Reader}). */
    private static final int RECENT = 8;
    /** Most slots a stream's pump keeps its chunks in (see {@code Pump#slots}). */
    private static final int MAX_PUMP_SLOTS = 256;
    /**
     * Blobs up to this size are fetched whole by {@link #open(B3Digest, long)}: the largest chunk
     * FastCDC cuts (tvix's parameters), so most blobs this small are one chunk anyway.
     */
    static final long WHOLE_FETCH_MAX = SMALL_BLOB_MAX;
    /**
     * The largest chunk the cache holds (in one array, as every tier does). A larger one comes
     * only from a remote that keeps a blob whole and lists no chunks (a tvix server without
     * chunking: the gRPC client then lists the blob as one chunk of its full size); it is read
     * through the remote's own reader of the blob, uncached ({@code Reader.copyFromLargeChunk}).
     */
    static final long MAX_HELD_CHUNK = ChunkedBlobReader.MAX_ARRAY_CHUNK;

    private static final B3Digest EMPTY_BLOB = Blake3.digest(new byte[0]);

    private final BlobService inner;
    private final TieredCache<byte[]> chunks;
    private final TieredCache<List<ChunkMeta>> chunkLists;
    /** By blob, the {@link ChunkListCodec#listDigest} of the one chunk list checked against it. */
    private final TieredCache<B3Digest> boundLists;
    private final SingleFlight<B3Digest, byte[]> chunkLoads = new SingleFlight<>();
    private final SingleFlight<B3Digest, Optional<List<ChunkMeta>>> listLoads = new SingleFlight<>();
    private final ExecutorService background = Executors.newVirtualThreadPerTaskExecutor();
    /** Whole-blob checks continued from the disk tier ({@code Reader.bindFromDisk}): finished at close, within a bound. */
    private final ExecutorService bindPasses = Executors.newVirtualThreadPerTaskExecutor();
    private final Semaphore backgroundSlots;
    private final long readAhead;
    /** Blobs at least this large stream through a sequential reader (see {@link Reader}). */
    private final long streamFrom;
    private final AtomicLong fetches = new AtomicLong();
    private final AtomicLong fetchedBytes = new AtomicLong();
    private final boolean onDisk;
    private final DiskCache disk;
    private final AtomicLong streams = new AtomicLong();
    private final AtomicLong filesAhead = new AtomicLong();
    /** The next stream's disk-tier lane (taken modulo the lanes by the disk tier). */
    private final AtomicInteger lanes = new AtomicInteger();
    private final AtomicLong slotLoads = new AtomicLong();
    /** Reads served from the slots of a stream's pump. */
    private final AtomicLong pumpSlotCopies = new AtomicLong();
    private final AtomicLong cachedLoads = new AtomicLong();
    /** Chunks read from disk straight into a reader's buffer ({@code Reader.copyWholeFromDisk}). */
    private final AtomicLong wholeReads = new AtomicLong();
    /** Slots per streaming reader: {@link #SLOTS}, fewer in tests that make readers race for them. */
    private final int slotCount;
    /** O_DIRECT read-ahead from the disk tier for streaming readers; null without a disk tier or O_DIRECT. */
    private final DirectReads directReads;

    public CachingBlobService(BlobService inner, DiskCache disk, CacheConfig config) {
        this(inner, disk, config, SLOTS);
    }

    CachingBlobService(BlobService inner, DiskCache disk, CacheConfig config, int slotCount) {
        this.slotCount = slotCount;
        this.inner = inner;
        this.onDisk = disk != null;
        this.disk = disk;
        this.chunks = new TieredCache<>(CHUNKS, disk, new ChunkCodec(), config.memoryLimit());
        this.chunkLists = new TieredCache<>(CHUNK_LISTS, disk, new ChunkListCodec(), config.memoryLimit() / 16);
        this.boundLists = new TieredCache<>(BOUND_LISTS, disk, new MarkCodec(), config.memoryLimit() / 64);
        this.backgroundSlots = new Semaphore(config.prefetchParallelism());
        this.readAhead = config.readAhead();
        this.streamFrom = config.memoryLimit() / 4;
        this.directReads = onDisk && config.directReads() && Libc.O_DIRECT != 0 && Libc.available() ? new DirectReads("castore-cache-read") : null;
    }

    public BlobService inner() {
        return inner;
    }

    /** Whether fetched chunks are also kept on disk (not only in the bounded memory tier). */
    public boolean onDisk() {
        return onDisk;
    }

    /** Chunks fetched from the inner service so far (misses that went remote). */
    public long fetches() {
        return fetches.get();
    }

    public long fetchedBytes() {
        return fetchedBytes.get();
    }

    /** Direct-stream loads that took several chunks with one read (for tests). */
    long spanLoads() {
        return directReads == null ? 0 : directReads.spans.sum();
    }

    /** Chunks a streaming reader read from the disk tier with O_DIRECT ({@link castore.io.DirectStream}). */
    long directLoads() {
        return disk == null ? 0 : disk.directReads();
    }

    /** Buffer memory direct streams hold now. */
    long directBuffersHeld() {
        return directReads == null ? 0 : directReads.held();
    }

    /** Reads served from a stream's pump slots (for tests). */
    public long pumpSlotCopies() {
        return pumpSlotCopies.get();
    }

    /** Chunks read from the disk tier into a streaming reader's reused buffers (see {@link ChunkSlots}), or by a direct stream. */
    long slotLoads() {
        return slotLoads.get();
    }

    /** Chunks read from disk straight into a reader's buffer (for tests). */
    long wholeReads() {
        return wholeReads.get();
    }

    /** Chunks a reader loaded from the cache (the disk tier, or memory when another load raced it there): hits of neither its memory nor its own chunks. */
    long cachedLoads() {
        return cachedLoads.get();
    }

    /** Streams opened on the inner service (each feeding a sequential read from a blob's start). */
    public long streams() {
        return streams.get();
    }

    @Override
    public boolean has(B3Digest digest) throws IOException {
        return chunkLists.contains(digest) || chunks.contains(digest) || inner.has(digest);
    }

    /**
     * A blob of one chunk is that chunk (same digest, same bytes), so its chunk list is not
     * stored: a cached chunk under the blob's digest answers for it. Small files, the most
     * common blobs, then cost one cache entry, not two.
     */
    @Override
    public Optional<List<ChunkMeta>> chunks(B3Digest digest) throws IOException {
        Optional<List<ChunkMeta>> cached = chunkLists.get(digest);
        if (cached.isPresent()) {
            return cached;
        }
        Optional<byte[]> whole = chunks.get(digest);
        if (whole.isPresent()) {
            return Optional.of(List.of(new ChunkMeta(digest, whole.get().length)));
        }
        return listLoads.get(digest, () -> {
            Optional<List<ChunkMeta>> list = inner.chunks(digest);
            if (list.isPresent()) {
                List<ChunkMeta> copy = List.copyOf(list.get());
                if (copy.size() == 1 && copy.getFirst().digest().equals(digest)) {
                    chunkLists.putInMemory(digest, copy);
                } else {
                    chunkLists.put(digest, copy);
                }
            }
            return list;
        });
    }

    @Override
    public Optional<BlobReader> open(B3Digest digest) throws IOException {
        Optional<List<ChunkMeta>> list = chunks(digest);
        return list.isEmpty() ? Optional.empty() : Optional.of(new Reader(digest, list.get()));
    }

    /**
     * A small blob that is not cached is fetched whole, with one request ({@link
     * BlobService#readChunk} of the blob digest: one Read over gRPC, one GET over S3), and kept as
     * a chunk of its own, as a one-chunk blob is; {@link #open(B3Digest)} alone asks for the chunk
     * list first, a second round trip for every small file a mount opens cold. Whatever goes
     * wrong that way (not found so, a size or digest that does not match) is left to the usual
     * way, which finds it again and reports it.
     */
    @Override
    public Optional<BlobReader> open(B3Digest digest, long size) throws IOException {
        fetchWholeIfSmall(digest, size);
        // A blob held as a chunk of its own, of the size the caller's verified node gives: that
        // chunk is its list, known without reading it. {@link #chunks} reads and checks the whole
        // chunk to learn its size, and a warm tree read did that at every open (370 MB read into
        // arrays before the reads proper). The read checks it; a copy that fails is fetched again.
        if (size > 0 && chunks.heldWeight(digest) == size) {
            return Optional.of(new Reader(digest, List.of(new ChunkMeta(digest, size))));
        }
        return open(digest);
    }

    private void fetchWholeIfSmall(B3Digest digest, long size) throws IOException {
        if (fetchesWhole(digest, size)) {
            fetchWhole(new ChunkMeta(digest, size));
        }
    }

    /** Whether a blob of this size is small enough to fetch whole, and not cached yet. */
    private boolean fetchesWhole(B3Digest digest, long size) {
        return size > 0 && size <= WHOLE_FETCH_MAX && !chunks.contains(digest) && !chunkLists.contains(digest);
    }

    /** Keeps a blob fetched whole (checked by the store) as a chunk of its own. */
    private void keepWhole(B3Digest digest, byte[] data) {
        fetches.incrementAndGet();
        fetchedBytes.addAndGet(data.length);
        chunks.put(digest, data);
    }

    private void fetchWhole(ChunkMeta blob) throws IOException {
        try {
            chunkLoads.get(blob.digest(), () -> {
                Optional<byte[]> raced = chunks.get(blob.digest(), true);
                if (raced.isPresent()) {
                    return raced.get();
                }
                byte[] data = inner.readChunk(blob).orElseThrow(() -> new NotFoundException("blob " + blob.digest()));
                if (data.length != blob.size()) { // verified against the digest by the inner service (its contract)
                    throw new CorruptedDataException("blob " + blob.digest() + " has " + data.length + " bytes, not " + blob.size());
                }
                keepWhole(blob.digest(), data);
                return data;
            });
        } catch (NotFoundException | CorruptedDataException e) {
            // the usual way, next
        }
    }

    /** Whether {@code chunk} is in the memory tier (for tests). */
    boolean inMemory(B3Digest chunk) {
        return chunks.peekMemory(chunk).isPresent();
    }

    /** How many of {@code list}'s chunks, from the first, one read of the disk tier takes (for tests). */
    int diskSpan(List<ChunkMeta> list) {
        B3Digest[] keys = list.stream().map(ChunkMeta::digest).toArray(B3Digest[]::new);
        int[] lengths = list.stream().mapToInt(c -> Math.toIntExact(c.size())).toArray();
        return chunks.diskSpan(keys, lengths, keys.length, Long.MAX_VALUE);
    }

    /** Whether a chunk list of {@code blob} has been checked against the blob digest (for tests). */
    boolean knownBound(B3Digest blob) throws IOException {
        return boundLists.get(blob).isPresent();
    }

    /**
     * Whether {@code list} is known to make up {@code blob}: empty for the empty blob, a single
     * chunk that is the blob itself, or the very list whose chunks once hashed, in order, to the
     * blob digest. The mark names that list: one dropped from the cache (evicted, or damaged on
     * disk) while its mark stayed is asked for again, and what the remote gives then is checked
     * again unless it is the same list.
     */
    private boolean isBound(B3Digest blob, List<ChunkMeta> list) throws IOException {
        if (list.isEmpty()) {
            return blob.equals(EMPTY_BLOB);
        }
        if (list.size() == 1 && list.getFirst().digest().equals(blob)) {
            return true;
        }
        Optional<B3Digest> checked = boundLists.get(blob);
        return checked.isPresent() && checked.get().equals(ChunkListCodec.listDigest(list));
    }

    @Override
    public BlobWriter create() throws IOException {
        return inner.create();
    }

    /**
     * Fetches the small blobs (at most {@link #WHOLE_FETCH_MAX} each) not cached yet in as few
     * requests as the store can make and keeps each as a chunk of its own, which is what
     * {@link #open(B3Digest, long)} then serves: an export over a daemon asked for each of
     * 54,000 files on its own (docs/grpc.md, "Reads in batches").
     */
    @Override
    public void fetchAhead(List<ChunkMeta> blobs) throws IOException {
        List<ChunkMeta> missing = new ArrayList<>();
        for (ChunkMeta blob : blobs) {
            if (fetchesWhole(blob.digest(), blob.size())) {
                missing.add(blob);
            }
        }
        if (missing.isEmpty()) {
            return;
        }
        Map<B3Digest, byte[]> read = inner.readBlobs(missing); // checked against digest and size by the store
        for (ChunkMeta blob : missing) {
            byte[] data = read.get(blob.digest());
            if (data != null && data.length == blob.size()) {
                keepWhole(blob.digest(), data);
            }
        }
    }

    @Override
    public Map<B3Digest, byte[]> readBlobs(List<ChunkMeta> blobs) throws IOException {
        return inner.readBlobs(blobs);
    }

    /** The store's answer: what this cache holds says nothing of what the store still has. */
    @Override
    public List<B3Digest> missing(List<B3Digest> digests) throws IOException {
        return inner.missing(digests);
    }

    @Override
    public BlobWriter createDeferred() throws IOException {
        return inner.createDeferred();
    }

    @Override
    public long flushWrites() throws IOException {
        return inner.flushWrites();
    }

    /**
     * Starts fetching, in the background, the chunks of {@code blob} that cover
     * {@code [fromOffset, fromOffset + length)} and are not cached yet. Returns at once; errors
     * are left for the real read to report.
     */
    public void prefetch(B3Digest blob, long fromOffset, long length) {
        try {
            background.execute(() -> {
                try {
                    Optional<List<ChunkMeta>> list = chunks(blob);
                    if (list.isPresent()) {
                        Reader reader = new Reader(blob, list.get());
                        reader.prefetchRange(fromOffset, length);
                        reader.close();
                    }
                } catch (IOException ignored) {
                    // a read of this blob will report it
                }
            });
        } catch (RejectedExecutionException closed) {
            // nothing to fetch for
        }
    }

    /**
     * A small blob (one request: {@link #open(B3Digest, long)}) the cache lacks is fetched in the
     * background, as a prefetch's fetches are (at most {@link CacheConfig#prefetchParallelism()}
     * at once); a larger one is left to its first read, whose read-ahead starts with it. A read
     * that comes while the fetch runs waits for it (single flight).
     */
    @Override
    public void willRead(B3Digest blob, long size) {
        if (size <= 0 || size > WHOLE_FETCH_MAX || chunkLoads.isLoading(blob) || chunks.contains(blob) || chunkLists.contains(blob)) {
            return;
        }
        filesAhead.incrementAndGet();
        try {
            background.execute(() -> {
                try {
                    inBackgroundSlot(() -> fetchWholeIfSmall(blob, size));
                } catch (IOException | RuntimeException | InterruptedException ignored) {
                    // its read will report it
                }
            });
        } catch (RejectedExecutionException closed) {
            // nothing to fetch for
        }
    }

    /**
     * The small blobs the cache lacks are fetched in the background together, with one
     * {@link BlobService#readBlobs} (one ReadBlobs call over a castore daemon, parallel GETs over
     * S3) instead of a request each: a cold tree read over a daemon cost the mount and the daemon
     * about 0.2 ms of CPU apiece per call. Reads that come meanwhile wait for the batch; a blob it
     * does not bring (a server without ReadBlobs, such as tvix's, brings none) is hinted alone.
     */
    @Override
    public void willRead(List<ChunkMeta> blobs) {
        // Claimed here, on the caller's thread: the reader opens the next file at once, before a
        // background thread could claim it, and would fetch it on its own (half the files of a
        // cold tree read did).
        Map<ChunkMeta, CompletableFuture<byte[]>> claims = new LinkedHashMap<>();
        for (ChunkMeta blob : blobs) {
            if (fetchesWhole(blob.digest(), blob.size())) {
                CompletableFuture<byte[]> claim = chunkLoads.claim(blob.digest());
                if (claim != null) {
                    claims.put(blob, claim);
                }
            }
        }
        if (claims.isEmpty()) {
            return;
        }
        filesAhead.addAndGet(claims.size());
        try {
            background.execute(() -> {
                try {
                    inBackgroundSlot(() -> fetchWholeTogether(claims));
                } catch (IOException | RuntimeException | InterruptedException e) {
                    // their reads fetch and report
                } finally {
                    // Whatever went wrong, no read may wait for a claim nobody completes (a no-op for those completed).
                    claims.forEach((blob, claim) -> chunkLoads.release(blob.digest(), claim));
                }
            });
        } catch (RejectedExecutionException closed) {
            claims.forEach((blob, claim) -> chunkLoads.release(blob.digest(), claim));
        }
    }

    /** Fetches the claimed small blobs with one readBlobs and completes their claims. */
    private void fetchWholeTogether(Map<ChunkMeta, CompletableFuture<byte[]>> claims) throws IOException {
        Map<B3Digest, byte[]> read = inner.readBlobs(List.copyOf(claims.keySet())); // checked against digest and size by the store
        List<ChunkMeta> notBrought = new ArrayList<>();
        claims.forEach((blob, claim) -> {
            byte[] data = read.get(blob.digest());
            if (data != null && data.length == blob.size()) {
                keepWhole(blob.digest(), data);
                chunkLoads.complete(blob.digest(), claim, data);
            } else {
                chunkLoads.release(blob.digest(), claim); // a waiting read fetches it, and reports what fails
                notBrought.add(blob);
            }
        });
        notBrought.forEach(blob -> willRead(blob.digest(), blob.size()));
    }

    /** A fetch made ahead of its read; {@link #inBackgroundSlot} runs it. */
    private interface BackgroundFetch {
        void run() throws IOException;
    }

    /** Runs {@code fetch} holding one of the {@link CacheConfig#prefetchParallelism()} slots background fetches share. */
    private void inBackgroundSlot(BackgroundFetch fetch) throws IOException, InterruptedException {
        backgroundSlots.acquire();
        try {
            fetch.run();
        } finally {
            backgroundSlots.release();
        }
    }

    /** Small blobs {@link #willRead} fetched ahead (for tests). */
    long filesAhead() {
        return filesAhead.get();
    }

    /**
     * Fetches every chunk of {@code blob} now (on the calling thread), for prefetch; {@code size}
     * (the file node's) as for {@link #open(B3Digest, long)}: one request for a small blob. A blob
     * the store lacks is a {@link NotFoundException}, so that prefetches count it as a failure.
     */
    void fetchAll(B3Digest blob, long size) throws IOException {
        fetchWholeIfSmall(blob, size);
        Optional<List<ChunkMeta>> list = chunks(blob);
        if (list.isEmpty()) {
            if (size > 0) {
                throw new NotFoundException("blob " + blob);
            }
            return;
        }
        try (Reader reader = new Reader(blob, list.get())) {
            for (int i = 0; i < reader.chunks().size(); i++) {
                if (reader.chunks().get(i).size() <= MAX_HELD_CHUNK) { // a larger one is never cached
                    reader.chunk(i);
                }
            }
        }
    }

    @Override
    public void close() throws IOException {
        // Fetches under way are interrupted and waited for (bounded): one that ended after the
        // store closed would write to a disk tier that is gone. The disk tier refuses what is
        // later still.
        background.shutdownNow();
        try {
            background.awaitTermination(FETCHES_AT_CLOSE_SECONDS, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (directReads != null) {
            directReads.shutdown();
        }
        // A check that is under way is worth finishing: its result is kept on disk for every
        // later reader (a mount that reads a big file in parallel and unmounts at once leaves
        // one behind). Bounded, so a huge blob cannot hold up the exit.
        bindPasses.shutdown();
        try {
            if (!bindPasses.awaitTermination(BIND_AT_CLOSE_SECONDS, TimeUnit.SECONDS)) {
                bindPasses.shutdownNow();
            }
        } catch (InterruptedException e) {
            bindPasses.shutdownNow();
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Reads through the cache; fetches a missing chunk by its digest ({@link BlobService#readChunk})
     * or, where the inner service cannot, by reading its range from the inner blob.
     *
     * <p>A chunk list from the remote is not bound to the blob digest (a lying server could list
     * valid chunks of other data), so until a list is known bound the reader hashes the chunks
     * in order as they arrive, continuing with the following ones already in memory; when the
     * last one is in, the digest must be the blob's. A match is remembered (also on disk), so
     * later readers skip the extra pass; a mismatch drops the list and fails every read.
     *
     * <p>A sequential reader of a blob of at least a quarter of the memory tier <em>streams</em>:
     * the chunks it loads (fetched, or read from disk) go to the disk tier only, and are held
     * for it in a small window (the chunks being read and those read ahead) instead of the
     * memory tier. Such a scan would flush the memory tier for chunks used once, and keeping a
     * few hundred MiB of them alive made the JVM promote, mark and copy them: on a cold read of
     * 1 GiB that garbage collection cost more CPU than hashing the data.
     *
     * <p>A streaming reader of a bound chunk list reads the chunks that are only on disk (not in
     * memory, the window, or loading) into a few buffers it reuses ({@link ChunkSlots}) instead
     * of a new array each, and its read-ahead only tells the kernel to read those chunks' bytes
     * from the cache's segments: a warm 1 GiB read otherwise allocated 1 GiB of arrays, whose
     * zeroing, first-touch page faults and collection were a fifth of the mount's CPU. Readers
     * copy out of a slot under an optimistic read and retry if a load overwrote it meanwhile.
     * Slot-served chunks are not lent after the read ({@link #lendRecentChunk}): the streams that
     * use slots are sequential, and a filesystem hands nothing of theirs to the kernel's page cache.
     *
     * <p>A <em>random</em> read (one that continues no stream) keeps a chunk it reads from the disk
     * tier among the reader's last {@link #RECENT} chunks, as the local store's reader does, not in
     * the memory tier: a mount hands the rest of that chunk to the kernel's page cache anyway, and
     * the memory tier's 256 MiB of chunk arrays, replaced as random reads went by, made the JVM
     * copy them to its old generation and mark them there: a fifth of the mount's CPU on warm
     * random 4 KiB reads of 1 GiB, the whole gap to the local store. Those arrays are fresh and
     * never written again (they may be the chunk the filesystem pushes). Fetched chunks still
     * join both tiers.
     */
    private final class Reader extends ChunkedBlobReader {
        private final B3Digest digest;
        private final AtomicInteger users = new AtomicInteger(1);
        private BlobReader innerReader;
        /**
         * Sequential streams of this reader, told apart (parallel readers of one file share it):
         * where each one's latest read ends, how many reads in a row continued it, and the last
         * chunk read ahead for it. Guarded by {@code streamState}.
         */
        private final long[] streamEnds = {-1, -1, -1, -1};
        private final int[] streamRuns = new int[STREAMS];
        private final int[] streamPrefetched = {-1, -1, -1, -1};
        /** Each stream's lane in the disk tier ({@link #laneOf}), a new one for each new stream. */
        private final int[] streamLanes = new int[STREAMS];
        private final Object streamState = new Object();
        private int nextStream;
        // Guarded by itself; null once bound (or known bound).
        private final Object bindLock = new Object();
        private volatile Blake3.Hasher wholeBlob;
        private int hashedChunks;
        private volatile boolean wrongList;
        /** Whether a background pass continues the check with chunks from the disk tier (guarded by bindLock). */
        private boolean bindingFromDisk;
        private final boolean large;
        /**
         * Where the latest read keeps what it loads: a random one (that continued no stream) in
         * {@code recent}, a streaming one (that continued the one before on a large blob) in the
         * window, past the memory tier. One field, so that racing reads leave one of their verdicts.
         */
        private volatile Keep keep = Keep.MEMORY;
        /**
         * Whether the latest read was established as sequential (from the start, or the third in a
         * row): only such a read starts a direct stream, whose read-ahead a random reader would
         * waste (the second read in a row still reads into a slot, as the local store's reader does).
         */
        private volatile boolean established;
        /** The last chunks random reads loaded from the cache, in turn; arrays nobody writes. */
        private final RecentChunks recent = new RecentChunks(RECENT);
        /** Chunks a streaming reader holds outside the memory tier, by index: the current ones and those read ahead. */
        private final Map<Integer, byte[]> window = new ConcurrentHashMap<>();
        /** Disk writes of fetched chunks, held back so that each lane's lie in index order. */
        private final InOrderWrites writes = new InOrderWrites();
        /** The stream feeding a sequential read from the blob's start, if one was started. */
        private volatile Pump pump;
        private final Object pumpLock = new Object();
        /** Made at the first chunk read into one (a small or random-read blob never has them). */
        private final ChunkSlots slots = new ChunkSlots(slotCount);
        /** O_DIRECT read-ahead of streams over disk-tier chunks of a large blob; null if none can be had. */
        private final DirectStreams direct;
        /** Loads into slots of one chunk wait for each other, of other chunks rarely (striped by index). */
        private final Object[] slotLoadLocks = new Object[slotCount];

        Reader(B3Digest digest, List<ChunkMeta> chunkList) throws IOException {
            super(chunkList);
            this.digest = digest;
            if (chunkList.isEmpty() && !digest.equals(EMPTY_BLOB)) {
                chunkLists.remove(digest);
                throw new CorruptedDataException("blob " + digest + ": an empty chunk list for a blob that is not empty (wrong chunk list)");
            }
            this.wholeBlob = isBound(digest, chunkList) ? null : Blake3.newHasher();
            if (wholeBlob != null) {
                refuseTwoSizesOfOneChunk(chunkList);
            }
            this.large = size() >= streamFrom;
            Arrays.setAll(slotLoadLocks, i -> new Object());
            if (large && directReads != null && chunkList.size() > slotCount) {
                int maxChunk = Math.toIntExact(chunkList.stream().mapToLong(ChunkMeta::size).max().orElse(0));
                this.direct = new DirectStreams(directReads, STREAMS, chunkList.size(), maxChunk, new SpanLoader());
            } else {
                this.direct = null;
            }
        }

        /**
         * One digest names one content, so one length: a list not known bound that gives a chunk
         * two sizes is refused at open. Found at a read instead, which error came first was a race:
         * the single flight of a chunk's fetch is keyed by its digest, so a read of the place with
         * the right size could join the fetch for the place with the wrong one and get the remote's
         * refusal of that size, not this cache's verdict on the list. (A bound list passed the
         * size check of every place when it was bound.)
         */
        private void refuseTwoSizesOfOneChunk(List<ChunkMeta> chunkList) throws CorruptedDataException {
            if (chunkList.size() < 2) {
                return;
            }
            Map<B3Digest, Long> sizes = new HashMap<>(chunkList.size() * 2);
            for (ChunkMeta chunk : chunkList) {
                Long other = sizes.putIfAbsent(chunk.digest(), chunk.size());
                if (other != null && other != chunk.size()) {
                    chunkLists.remove(digest);
                    throw new CorruptedDataException("blob " + digest + ": its chunk list gives chunk " + chunk.digest() + " two sizes, "
                            + other + " and " + chunk.size() + " bytes (wrong chunk list)");
                }
            }
        }

        /**
         * With read-ahead on, this reader keeps each sequential stream's next chunks coming (and
         * streams a blob from its start): a filesystem's own read-ahead windows on top only
         * copied every byte once more through fresh arrays (a mount over a cached gRPC store,
         * 1 GiB: 298-316 against 384-427 MB/s cold, 397-430 against 643-779 MB/s warm).
         */
        @Override
        public boolean readsAhead() {
            return readAhead > 0;
        }

        @Override
        public int read(long position, ByteBuffer dst) throws IOException {
            // A read from the start, or the third in a row that starts near where the previous
            // one ends, is sequential: FUSE reads of one stream arrive on several threads,
            // slightly out of order, while random reads rarely land near each other twice. The
            // previous end is where that read will end, set when it starts: a filesystem's
            // read-ahead windows are reads of one stream that run at the same time.
            if (position < 0 || position >= size()) {
                return super.read(position, dst);
            }
            long end = position + Math.min(dst.remaining(), size() - position);
            int stream = -1;
            int run = 0;
            synchronized (streamState) {
                for (int s = 0; s < STREAMS; s++) {
                    if (streamEnds[s] >= 0 && Math.abs(position - streamEnds[s]) <= SEQUENTIAL_SLACK) {
                        stream = s;
                        run = streamRuns[s] + 1;
                        break;
                    }
                }
                if (stream < 0) {
                    stream = nextStream;
                    nextStream = (nextStream + 1) % STREAMS;
                    streamPrefetched[stream] = -1;
                    streamLanes[stream] = lanes.getAndIncrement();
                }
                streamRuns[stream] = run;
                streamEnds[stream] = end;
            }
            boolean sequential = position == 0 || run >= 2;
            // A read near the previous one streams already (it will be the second in a row).
            Keep keeping = !(sequential || run > 0) ? Keep.RECENT : large ? Keep.WINDOW : Keep.MEMORY;
            keep = keeping;
            established = sequential;
            if (!window.isEmpty()) {
                trimWindow();
            }
            Pump feeding = pump;
            if (position == 0 && (feeding == null || feeding.done)) {
                feeding = startPump();
            }
            if (feeding != null && feeding.follows(position)) {
                feeding.advance(end + readAhead);
            } else if (sequential && readAhead > 0 && end < size()) {
                scheduleReadAhead(stream, end, keeping); // this read's verdict: another may have changed the fields
            }
            int n;
            try {
                n = super.read(position, dst);
            } catch (CorruptedDataException e) {
                // A chunk came wrong from the remote (another size than listed, other bytes): the
                // list may be what is wrong (a lone chunk that is the blob is "bound" whatever size
                // it is given). Not kept, so the next open asks the remote again; before, the blob
                // stayed unreadable from this cache, also after a restart, until the list was
                // evicted. A list that was right costs a Stat, and its bound mark still vouches for it.
                // (A list found wrong by the check was dropped then; this reader's later reads fail so too.)
                if (!wrongList) {
                    chunkLists.remove(digest);
                }
                throw e;
            }
            if (end == size() && feeding != null && feeding.done && feeding.slots != null) {
                // The stream has ended and been read to its end: its chunks are on disk for stragglers,
                // and the slots' arrays need not live as long as the open file (a mount keeps 64).
                feeding.slots.clear();
            }
            return n;
        }

        /**
         * A {@link Pump} for a read from the start of a blob of several chunks whose first chunk
         * is not cached, if the inner service streams blobs; null otherwise.
         */
        private Pump startPump() throws IOException {
            // A blob whose chunks repeat (zeros, padding) is fetched chunk by chunk: a stream of it
            // would carry every repetition over the network again.
            if (readAhead <= 0 || chunks().size() < 2 || wrongList || distinctBytes() < size() - size() / 8) {
                return null;
            }
            synchronized (pumpLock) {
                Pump running = pump;
                if (running != null && !running.done) {
                    return running;
                }
                B3Digest first = chunks().getFirst().digest();
                if (window.containsKey(0) || chunks.contains(first) || chunkLoads.isLoading(first)) {
                    return null;
                }
                // Empty for services that cannot stream, and for blobs a service will not stream
                // (gRPC: a chunk too large to hold): asked again for each read from the start.
                Optional<ChunkStream> stream = inner.streamChunks(digest, chunks());
                if (stream.isEmpty()) {
                    return null;
                }
                streams.incrementAndGet();
                Pump started = new Pump(stream.get());
                users.incrementAndGet();
                try {
                    background.execute(started);
                } catch (RejectedExecutionException closed) {
                    // A pump that never runs would leave its claims on chunks unanswered, and
                    // every reader of them waiting.
                    release();
                    stream.get().close();
                    throw new IOException("the cache in front of " + inner + " is closed");
                }
                pump = started;
                return started;
            }
        }

        /**
         * Drops window chunks that no stream needs: those that end more than 5 MiB before where a
         * stream's latest read ends (reads of one stream arrive out of order: a filesystem has
         * several read-ahead windows in flight, and a chunk dropped before an earlier window's
         * read took it costs a disk read and a hash) or lie more than twice the read-ahead beyond
         * it. With one rule for the whole reader, parallel readers of one file dropped each
         * other's chunks.
         */
        private void trimWindow() {
            long[] ends;
            synchronized (streamState) {
                ends = streamEnds.clone();
            }
            window.keySet().removeIf(i -> {
                for (long end : ends) {
                    if (inWindow(i, end)) {
                        return false;
                    }
                }
                return true;
            });
        }

        /**
         * Whether chunk {@code index} lies in the window of a stream whose latest read ends at
         * {@code streamEnd} (-1: no stream): from 5 MiB behind that end to twice the read-ahead
         * past it (see {@link #trimWindow}).
         */
        private boolean inWindow(int index, long streamEnd) {
            long start = start(index);
            long chunkEnd = start + chunks().get(index).size();
            return streamEnd >= 0 && chunkEnd >= streamEnd - 5 * SEQUENTIAL_SLACK
                    && start <= streamEnd + 2L * Math.max(readAhead, 1 << 20);
        }

        /** Fetches, in the background, the chunks of the {@code readAhead} bytes from {@code from} not yet asked for by {@code stream}. */
        private void scheduleReadAhead(int stream, long from, Keep keep) {
            int last = indexOf(Math.min(size() - 1, from + readAhead - 1));
            int first;
            synchronized (streamState) {
                first = Math.max(indexOf(from), streamPrefetched[stream] + 1);
                if (first > last) {
                    return;
                }
                streamPrefetched[stream] = last;
            }
            for (int i = first; i <= last; i++) {
                submitFetch(i, keep == Keep.WINDOW ? Keep.WINDOW : Keep.MEMORY);
            }
        }

        void prefetchRange(long from, long length) {
            if (from >= size() || length <= 0) {
                return;
            }
            int last = indexOf(Math.min(size() - 1, from + length - 1));
            for (int i = indexOf(Math.max(0, from)); i <= last; i++) {
                submitFetch(i, Keep.MEMORY);
            }
        }

        private void submitFetch(int index, Keep keep) {
            B3Digest chunk = chunks().get(index).digest();
            if (chunks().get(index).size() > MAX_HELD_CHUNK || chunkLoads.isLoading(chunk) || window.containsKey(index) || holdsRepeat(index) || chunks.peekMemory(chunk).isPresent()) {
                return;
            }
            if (keep == Keep.WINDOW && readsIntoSlots() && chunks.onDisk(chunk)) {
                // The reader will read it into a slot: only the disk read is started ahead (a
                // direct stream reads ahead itself, past the page cache).
                // (Its read-ahead runs far past a direct stream's window, so any open stream counts.)
                if (direct == null || !direct.streaming()) {
                    chunks.willNeed(chunk);
                }
                return;
            }
            users.incrementAndGet();
            if (onDisk) {
                writes.expect(index, laneOf(index)); // now, in index order: the tasks start in any order
            }
            try {
                execute(index, keep);
            } catch (RejectedExecutionException closed) {
                if (onDisk) {
                    writes.dropped(index);
                }
                release(); // the read that wanted it loads it itself, and learns the cache is closed
            }
        }

        private void execute(int index, Keep keep) {
            background.execute(() -> {
                try {
                    inBackgroundSlot(() -> chunk(index, keep));
                } catch (IOException | InterruptedException ignored) {
                    // a foreground read of this chunk will report the error
                } finally {
                    if (onDisk && writes.dropped(index)) { // found elsewhere, or failed before its fetch
                        continueBindFromDisk();
                    }
                    release();
                }
            });
        }

        @Override
        protected byte[] chunk(int index) throws IOException {
            return chunk(index, keep);
        }

        /** Every place a chunk occurs is part of the whole-blob check, also when its bytes come from another place. */
        @Override
        protected void servingRepeat(int index, byte[] data) throws IOException {
            if (wholeBlob != null) {
                bindInOrder(index, data);
            }
            if (wrongList) {
                throw wrongListError();
            }
        }

        @Override
        protected int copyChunk(int index, int within, ByteBuffer dst) throws IOException {
            Pump feeding = pump;
            if (feeding != null && feeding.slots != null) {
                if (wrongList) {
                    throw wrongListError();
                }
                int n = feeding.copy(index, within, dst);
                if (n >= 0) {
                    if (wrongList) {
                        throw wrongListError(); // the check failed while this one copied
                    }
                    pumpSlotCopies.incrementAndGet();
                    return n;
                }
            }
            if (direct != null) {
                int n = direct.copy(index, within, dst);
                if (n >= 0) {
                    return n;
                }
            }
            if (readsIntoSlots()) {
                int n = copyFromSlot(index, within, dst);
                if (n >= 0) {
                    return n;
                }
                synchronized (slotLoadLocks[index % slotLoadLocks.length]) {
                    n = copyFromSlot(index, within, dst);
                    if (n < 0 && onlyOnDisk(index)) {
                        n = direct != null && (established || direct.follows(index)) ? direct.start(index, within, dst) : -1;
                        if (n < 0) {
                            n = loadIntoSlot(index, within, dst);
                        }
                    }
                    if (n >= 0) {
                        return n;
                    }
                }
            }
            int n = copyWholeFromDisk(index, within, dst);
            return n >= 0 ? n : super.copyChunk(index, within, dst);
        }

        /**
         * Copies from chunk {@code index}, too large for an array ({@link #MAX_HELD_CHUNK}),
         * straight from the inner service's reader of the blob, which verifies what it returns
         * (over gRPC, a blob without a chunk list is downloaded once into a temporary file and
         * hashed whole). Before, the chunk was fetched into one array: the fetch failed as
         * "corrupted" after downloading the blob, and the read with it.
         */
        @Override
        protected int copyFromLargeChunk(int index, long within, ByteBuffer dst) throws IOException {
            ChunkMeta meta = chunks().get(index);
            int n = (int) Math.min(dst.remaining(), meta.size() - within);
            ByteBuffer part = dst.slice(dst.position(), n);
            BlobReader source = innerReader();
            while (part.hasRemaining()) {
                if (source.read(start(index) + within + part.position(), part) < 0) {
                    throw new EOFException("blob " + digest + " ended inside chunk " + index + " (" + meta.digest() + ")");
                }
            }
            dst.position(dst.position() + n);
            return n;
        }

        /**
         * A read that takes all of chunk {@code index} (a small file read whole, the common case
         * in a tree) while the chunk is only on disk and the list is known bound: read straight
         * into the caller's buffer and checked there, with no array of its own and past the
         * memory tier (the kernel's page cache keeps what a mount serves: a tree read filled the
         * tier with arrays the JVM then carried to its old generation). -1 if it is not such a
         * read or the disk does not give the chunk intact; the usual path then fetches it.
         */
        private int copyWholeFromDisk(int index, int within, ByteBuffer dst) throws IOException {
            long size = chunks().get(index).size();
            if (within != 0 || dst.remaining() < size || !dst.hasArray() || !onDisk || wholeBlob != null || wrongList
                    || !onlyOnDisk(index)) {
                return -1;
            }
            int length = (int) size;
            if (!chunks.readFromDiskInto(chunks().get(index).digest(), dst.array(), dst.arrayOffset() + dst.position(), length)) {
                return -1;
            }
            wholeReads.incrementAndGet();
            dst.position(dst.position() + length);
            return length;
        }

        /**
         * Whether chunks only on disk are read into slots: while streaming, with a disk tier and a
         * chunk list known bound (an unbound one needs every chunk, in order, for its check).
         * The verdict is set before {@code wholeBlob} goes, so a null one with no verdict is bound.
         */
        private boolean readsIntoSlots() {
            return keep == Keep.WINDOW && onDisk && wholeBlob == null && !wrongList;
        }

        /** Whether chunk {@code index} is on disk and nowhere else (memory, window, or loading). */
        private boolean onlyOnDisk(int index) {
            B3Digest chunk = chunks().get(index).digest();
            return !window.containsKey(index) && chunks.peekMemory(chunk).isEmpty() && !chunkLoads.isLoading(chunk)
                    && chunks.onDisk(chunk);
        }

        private int copyFromSlot(int index, int within, ByteBuffer dst) {
            return slots.copy(index, (int) chunks().get(index).size(), within, dst);
        }

        /**
         * Loads chunk {@code index} for a direct stream from the disk tier (O_DIRECT where it can),
         * verified; null if it is not only on disk or the list is not known bound yet (its check
         * needs every chunk in order), so the read takes the usual path.
         */
        private MemorySegment loadDirect(int index, MemorySegment buffer) {
            if (wholeBlob != null || wrongList || holdsRepeat(index) || !onlyOnDisk(index)) {
                return null;
            }
            ChunkMeta meta = chunks().get(index);
            MemorySegment bytes = chunks.readFromDiskNative(meta.digest(), Math.toIntExact(meta.size()), buffer);
            if (bytes != null) {
                slotLoads.incrementAndGet();
            }
            return bytes;
        }

        /**
         * Loads for direct streams: a chunk, or a span of chunks the disk tier holds one after
         * another in a segment (a stream's fetches are stored so) with one read of up to
         * {@link DirectStream#SPAN_BUFFER}, as the local store does.
         */
        private final class SpanLoader implements DirectStream.Loader {
            @Override
            public MemorySegment load(int index, MemorySegment buffer) {
                return loadDirect(index, buffer);
            }

            @Override
            public long spanBuffer() {
                return DirectStream.SPAN_BUFFER;
            }

            @Override
            public int span(int index, int max, long bufferBytes) {
                int n = onlyOnDiskFrom(index, max);
                return n <= 1 ? 1 : Math.max(1, chunks.diskSpan(keys(index, n), lengths(index, n), n, bufferBytes));
            }

            @Override
            public int loadSpan(int index, int count, MemorySegment buffer, MemorySegment[] payloads) {
                int n = onlyOnDiskFrom(index, count);
                if (n <= 1) {
                    payloads[0] = loadDirect(index, buffer);
                    return payloads[0] == null ? 0 : 1;
                }
                int loaded = chunks.readFromDiskNativeSpan(keys(index, n), lengths(index, n), n, buffer, payloads);
                if (loaded == 0) {
                    payloads[0] = loadDirect(index, buffer); // the span changed: the first chunk alone
                    return payloads[0] == null ? 0 : 1;
                }
                slotLoads.addAndGet(loaded);
                if (loaded > 1) {
                    directReads.spans.increment();
                }
                return loaded;
            }

            /** How many chunks from {@code index} on (at most {@code max}) a direct stream may load now, as {@link #loadDirect} asks. */
            private int onlyOnDiskFrom(int index, int max) {
                if (wholeBlob != null || wrongList) {
                    return 0;
                }
                int n = 0;
                while (n < max && onlyOnDisk(index + n)) {
                    n++;
                }
                return n;
            }

            private B3Digest[] keys(int index, int n) {
                B3Digest[] keys = new B3Digest[n];
                for (int k = 0; k < n; k++) {
                    keys[k] = chunks().get(index + k).digest();
                }
                return keys;
            }

            private int[] lengths(int index, int n) {
                int[] lengths = new int[n];
                for (int k = 0; k < n; k++) {
                    lengths[k] = Math.toIntExact(chunks().get(index + k).size());
                }
                return lengths;
            }
        }

        /**
         * Reads chunk {@code index} from the disk tier into the oldest slot, verified there, and
         * copies from it; -1 if it is no longer on disk or fails verification (dropped), for the
         * usual path to fetch it. Under the chunk's slot load lock.
         */
        private int loadIntoSlot(int index, int within, ByteBuffer dst) throws IOException {
            ChunkMeta meta = chunks().get(index);
            int length = Math.toIntExact(meta.size());
            int n = slots.load(index, length, within, dst, buffer -> chunks.readFromDiskInto(meta.digest(), buffer, length));
            if (n >= 0) {
                slotLoads.incrementAndGet();
            }
            return n;
        }

        private byte[] chunk(int index, Keep keep) throws IOException {
            if (wrongList) {
                throw wrongListError();
            }
            byte[] data = load(index, keep);
            if (data.length != chunks().get(index).size()) {
                throw wrongSize(index, data.length);
            }
            if (wholeBlob != null) {
                bindInOrder(index, data);
            }
            if (wrongList) {
                throw wrongListError(); // another thread's check failed while this one loaded
            }
            return data;
        }

        /**
         * From memory (the window, the recent chunks), else from disk or the remote, once even
         * when readers and read-ahead ask together; {@code keep} says where a load goes.
         */
        private byte[] load(int index, Keep keep) throws IOException {
            ChunkMeta meta = chunks().get(index);
            Optional<byte[]> inMemory = chunks.peekMemory(meta.digest());
            if (inMemory.isPresent()) {
                chunks.touch(meta.digest());
                return inMemory.get();
            }
            byte[] held = window.get(index);
            if (held == null) {
                held = recent.get(index);
                if (held != null) {
                    chunks.touch(meta.digest()); // a use, for the disk tier's recency
                }
            }
            if (held != null) {
                return held;
            }
            byte[] loaded;
            do {
                loaded = loadOnce(index, meta, keep);
            } while (loaded == null); // a pump's chunk, kept in its slots and on disk: look again
            switch (keep) {
                case WINDOW -> window.put(index, loaded);
                case RECENT -> recent.add(index, loaded);
                case MEMORY -> {
                }
            }
            return loaded;
        }

        /** One load through {@link #chunkLoads}; null if it joined a pump's claim, which gives its waiters no array. */
        private byte[] loadOnce(int index, ChunkMeta meta, Keep keep) throws IOException {
            return chunkLoads.get(meta.digest(), () -> {
                Optional<byte[]> raced = chunks.get(meta.digest(), keep == Keep.MEMORY);
                if (raced.isPresent()) {
                    cachedLoads.incrementAndGet();
                    return raced.get();
                }
                // The stream it is fetched for, while its window holds it.
                int lane = onDisk ? writes.expectedLane(index, laneOf(index)) : 0;
                byte[] data;
                try {
                    data = fetch(index, meta);
                } catch (IOException | RuntimeException | Error e) {
                    if (onDisk && writes.dropped(index)) {
                        continueBindFromDisk();
                    }
                    throw e;
                }
                store(index, lane, meta, data, keep == Keep.WINDOW);
                return data;
            });
        }

        /**
         * Feeds chunk {@code index} to the whole-blob hash if it is the next one, then what follows
         * in memory. When the next one is on disk only (read by another stream of a parallel or
         * out-of-order reader, or cached by an earlier one), a background pass continues from there
         * ({@link #bindFromDisk}): without it such a reader never finished the check, so its list
         * stayed unbound and every later reader of the blob took the slow, allocating path.
         */
        private void bindInOrder(int index, byte[] data) throws IOException {
            bindInOrder(index, data, data.length);
        }

        /** {@link #bindInOrder(int, byte[])} of the chunk in {@code data[0, length)}. */
        private void bindInOrder(int index, byte[] data, int length) throws IOException {
            synchronized (bindLock) {
                if (wholeBlob == null) {
                    return;
                }
                if (index != hashedChunks) {
                    if (index > hashedChunks) {
                        bindFromDiskIfCached(); // a reader ahead of the check: it may be able to catch up from disk
                    }
                    return;
                }
                if (length != chunks().get(index).size()) {
                    throw wrongSize(index, length); // a repeat served from another place of another size
                }
                wholeBlob.update(data, 0, length);
                hashedChunks++;
                continueBind();
            }
        }

        /** With bindLock held: hashes the following chunks in memory, then those on disk in the background. */
        private void continueBind() throws CorruptedDataException {
            if (!hashFollowingInMemory()) {
                bindFromDiskIfCached();
            }
        }

        /**
         * With bindLock held: hashes the following chunks found in memory; once all are in, checks
         * the digest (true; a mismatch throws). False while a chunk is missing.
         */
        private boolean hashFollowingInMemory() throws CorruptedDataException {
            while (hashedChunks < chunks().size()) {
                byte[] next = window.get(hashedChunks);
                if (next == null) {
                    next = recent.get(hashedChunks);
                }
                if (next == null) {
                    next = chunks.peekMemory(chunks().get(hashedChunks).digest()).orElse(null);
                }
                if (next == null) {
                    return false;
                }
                if (next.length != chunks().get(hashedChunks).size()) {
                    throw wrongSize(hashedChunks, next.length);
                }
                wholeBlob.update(next);
                hashedChunks++;
            }
            boolean matches = wholeBlob.digest().equals(digest);
            if (!matches) {
                wrongList = true; // before wholeBlob goes: a reader that sees it gone then sees the verdict
            }
            wholeBlob = null;
            if (matches) {
                boundLists.put(digest, ChunkListCodec.listDigest(chunks()));
                return true;
            }
            chunkLists.remove(digest);
            throw wrongListError();
        }

        /** With bindLock held: starts {@link #bindFromDisk} if the next chunk to hash is in the disk tier and none runs. */
        private void bindFromDiskIfCached() {
            if (bindingFromDisk || wholeBlob == null || hashedChunks >= chunks().size()) {
                return;
            }
            // One on its way (the pump, a fetch) is hashed by whoever delivers it, from memory.
            B3Digest next = chunks().get(hashedChunks).digest();
            if (chunkLoads.isLoading(next) || !chunks.onDisk(next)) {
                return;
            }
            bindingFromDisk = true;
            users.incrementAndGet();
            try {
                bindPasses.execute(this::bindFromDisk);
            } catch (RejectedExecutionException closed) {
                bindingFromDisk = false;
                release();
            }
        }

        /**
         * Continues the whole-blob check with chunks read from the disk tier (each verified against
         * its own digest first, so that a corrupted disk copy is dropped and refetched rather than
         * taken for a wrong list; into one buffer), one chunk at a time under bindLock, until the check ends or the next chunk is
         * not on disk (a later load starts the pass again). It goes on after the reader closes: the
         * check, once done, is kept for every later reader.
         */
        private void bindFromDisk() {
            byte[] buffer = new byte[0];
            try {
                while (true) {
                    int index;
                    synchronized (bindLock) {
                        if (wholeBlob == null || hashedChunks >= chunks().size()) {
                            return;
                        }
                        index = hashedChunks;
                    }
                    ChunkMeta meta = chunks().get(index);
                    int length = Math.toIntExact(meta.size());
                    if (buffer.length < length) {
                        buffer = new byte[length];
                    }
                    if (!chunks.readFromDiskInto(meta.digest(), buffer, length)) {
                        return; // gone from disk meanwhile, or corrupted (dropped): loads continue the check
                    }
                    synchronized (bindLock) {
                        if (wholeBlob == null || hashedChunks != index) {
                            continue; // a reader hashed it meanwhile
                        }
                        wholeBlob.update(buffer, 0, length);
                        hashedChunks++;
                        hashFollowingInMemory();
                    }
                }
            } catch (IOException | RuntimeException e) {
                // A wrong list is the readers' verdict (wrongList); a disk error leaves the check to loads.
            } finally {
                synchronized (bindLock) {
                    bindingFromDisk = false;
                }
                release();
            }
        }

        /**
         * A chunk whose bytes (verified by its digest) are not as long as the list says: the list
         * is wrong, since a digest names one content. Hashing the bytes regardless could bind a
         * list that puts them at the wrong places (a chunk listed thrice with sizes C, C+5, C-5
         * still adds up), so the list is refused as a failed check is.
         */
        private CorruptedDataException wrongSize(int index, int actual) {
            wrongList = true;
            chunkLists.remove(digest);
            ChunkMeta meta = chunks().get(index);
            return new CorruptedDataException("blob " + digest + ": chunk " + meta.digest() + " has " + actual + " bytes, listed as "
                    + meta.size() + " at place " + index + " (wrong chunk list)");
        }

        private CorruptedDataException wrongListError() {
            return new CorruptedDataException("blob " + digest + ": its chunks are valid but do not make up the blob (wrong chunk list)");
        }

        private byte[] fetch(int index, ChunkMeta meta) throws IOException {
            Optional<byte[]> direct = inner.readChunk(meta);
            if (direct.isPresent()) {
                // Verified against the chunk digest by the inner service (its contract).
                if (direct.get().length != meta.size()) {
                    throw new CorruptedDataException("chunk " + meta.digest() + " has " + direct.get().length + " bytes, listed as " + meta.size());
                }
                fetches.incrementAndGet();
                fetchedBytes.addAndGet(meta.size());
                return direct.get();
            }
            byte[] data = new byte[Math.toIntExact(meta.size())];
            ByteBuffer dst = ByteBuffer.wrap(data);
            BlobReader source = innerReader();
            while (dst.hasRemaining()) {
                int n = source.read(start(index) + dst.position(), dst);
                if (n < 0) {
                    throw new EOFException("blob " + digest + " ended before chunk " + index + " (" + meta.digest() + ")");
                }
            }
            // The inner reader verified what it returned, but against its own chunking; this
            // range must also be exactly the chunk we index it by before the cache keeps it.
            if (!Blake3.digest(data).equals(meta.digest())) {
                throw new CorruptedDataException("blob " + digest + ": bytes at chunk " + index + " do not match chunk " + meta.digest());
            }
            fetches.incrementAndGet();
            fetchedBytes.addAndGet(data.length);
            return data;
        }

        private synchronized BlobReader innerReader() throws IOException {
            if (innerReader == null) {
                innerReader = inner.open(digest).orElseThrow(() -> new NotFoundException("blob " + digest + " not found"));
            }
            return innerReader;
        }

        private void release() {
            if (users.decrementAndGet() == 0) {
                BlobReader r;
                synchronized (this) {
                    r = innerReader;
                    innerReader = null;
                }
                if (r != null) {
                    try {
                        r.close();
                    } catch (IOException ignored) {
                        // nothing more to read from it
                    }
                }
            }
        }

        @Override
        public void close() {
            Pump feeding = pump;
            if (feeding != null) {
                feeding.close();
            }
            if (direct != null) {
                direct.close();
            }
            window.clear();
            recent.clear();
            release();
        }

        /**
         * Caches fetched chunk {@code index}: on disk only when streaming (past the memory tier),
         * else in both tiers; on disk in {@code lane}, after the chunks before it in that lane
         * whose fetches are still under way ({@link InOrderWrites}).
         */
        private void store(int index, int lane, ChunkMeta meta, byte[] data, boolean stream) {
            if (!stream) {
                chunks.putInMemory(meta.digest(), data);
            }
            if (onDisk && writes.fetched(index, lane, () -> chunks.putOnDisk(meta.digest(), data, lane))) {
                continueBindFromDisk();
            }
        }

        /**
         * Chunks held back for their lane's order were written: the whole-blob check may go on
         * from disk with them (a held chunk the window has let go of was in neither place, and no
         * later load may come to start the pass).
         */
        private void continueBindFromDisk() {
            if (wholeBlob != null) {
                synchronized (bindLock) {
                    bindFromDiskIfCached();
                }
            }
        }

        /**
         * The disk tier's lane for chunk {@code index}: that of the first stream whose window holds
         * it ({@link #inWindow}; a random read counts as a stream of its own), else 0 (a prefetch
         * no read is near). A stream's chunks then lie together on disk however fetches of
         * parallel streams interleave, and a warm reader of the stream reads them in spans.
         */
        private int laneOf(int index) {
            synchronized (streamState) {
                for (int s = 0; s < STREAMS; s++) {
                    if (inWindow(index, streamEnds[s])) {
                        return streamLanes[s];
                    }
                }
            }
            return 0;
        }

        /** Keeps a chunk the pump took as {@link #load} would: cached, and in the window when streaming. */
        private void keep(int index, ChunkMeta meta, byte[] data, boolean stream) {
            store(index, laneOf(index), meta, data, stream);
            if (stream) {
                window.put(index, data);
            }
        }

        /**
         * Feeds a sequential read from the start of the blob through one {@link ChunkStream}
         * (over gRPC, one Read of the blob digest) instead of one request per chunk: on its own
         * thread, it takes the chunks in order, up to {@code readAhead} bytes past the latest read
         * that follows the stream, and keeps them as {@link #load} would. Chunks it is about to
         * take are claimed in {@link #chunkLoads}, so readers of them (this one, others, read-ahead)
         * wait for the stream instead of fetching them again; chunks cached already are skipped
         * (passed over unverified). When the stream fails, the chunk being taken fails with its
         * error and later reads fetch chunk by chunk; the other claims are released, and whoever
         * waits for them fetches them, as when the reader closes first or the service turns out
         * not to stream this blob (NotFoundException before the first chunk).
         */
        private final class Pump implements Runnable {
            private final ChunkStream stream;
            /**
             * Chunks claimed and not taken yet, by index; an index absent up to {@link #claimedThrough}
             * is cached already (or loading elsewhere) and is skipped.
             */
            private final Map<Integer, CompletableFuture<byte[]>> claims = new ConcurrentHashMap<>();
            /** The last chunk looked at for claiming; guarded by this. */
            private int claimedThrough = -1;
            /** Where the latest read following the stream ends plus the read-ahead. */
            private volatile long bound;
            private boolean closed;
            /** The next chunk to take from the stream (the pump's thread). */
            private int next;
            /** Set under this once the pump stops: nothing is claimed after. */
            volatile boolean done;
            /**
             * For a large blob with a disk tier: the chunks the pump took last, in the arrays they
             * arrived in, which go back to the stream for later messages once the ring passes them
             * (a cold GiB otherwise allocates a GiB of arrays, each a first touch of fresh heap in
             * a new JVM). Readers copy out of them ({@link #copy}); a chunk the ring has passed is on
             * disk. Null: chunks are kept as {@link #load} keeps them.
             */
            final ChunkSlots slots;

            Pump(ChunkStream stream) {
                this.stream = stream;
                if (large && onDisk) {
                    // From where the window starts behind a stream's reads to where the pump may run ahead of them.
                    long span = 5 * SEQUENTIAL_SLACK + Math.max(readAhead, 1 << 20);
                    long average = Math.max(1, size() / chunks().size());
                    this.slots = new ChunkSlots((int) Math.min(MAX_PUMP_SLOTS, span / average + 4));
                } else {
                    this.slots = null;
                }
            }

            /**
             * Copies from chunk {@code index} if the pump has it in its slots, waiting for it if the
             * pump has claimed it and not taken it yet; -1 if it has not (the usual path then
             * finds it on disk or fetches it). A failure of the stream while taking it is thrown.
             */
            int copy(int index, int within, ByteBuffer dst) throws IOException {
                int size = (int) chunks().get(index).size();
                int n = slots.copy(index, size, within, dst);
                if (n >= 0) {
                    return n;
                }
                CompletableFuture<byte[]> claim = claims.get(index);
                if (claim != null && !SingleFlight.awaitClaim(claim)) {
                    return -1;
                }
                return slots.copy(index, size, within, dst);
            }

            /** Whether a read at {@code position} continues the read this stream feeds. */
            boolean follows(long position) {
                long limit = bound;
                return !done && position <= limit && position + readAhead + 4 * SEQUENTIAL_SLACK >= limit;
            }

            /**
             * Lets the pump take the chunks that start below {@code limit}, claiming them now (on
             * the reading thread), so that this read's own loads wait for the stream.
             */
            synchronized void advance(long limit) {
                if (done || closed || limit <= bound) {
                    return;
                }
                bound = limit;
                int count = chunks().size();
                while (claimedThrough + 1 < count && start(claimedThrough + 1) < limit) {
                    claimIfMissing(++claimedThrough);
                }
                notifyAll();
            }

            synchronized void close() {
                closed = true;
                notifyAll();
            }

            /** Waits until chunk {@code next} is claimed (or skipped); false once closed. */
            private synchronized boolean awaitClaimed() throws InterruptedException {
                while (!closed && next > claimedThrough) {
                    wait();
                }
                return !closed;
            }

            @Override
            public void run() {
                Throwable failure = null;
                try {
                    int count = chunks().size();
                    while (next < count && awaitClaimed()) {
                        take(next);
                        next++;
                    }
                } catch (NotFoundException e) {
                    // Not served as a stream after all: the claimed chunks are released to their readers.
                    failure = next == 0 ? null : e;
                } catch (Throwable t) {
                    failure = t;
                } finally {
                    synchronized (this) {
                        done = true;
                    }
                    stream.close();
                    settleClaims(failure);
                    release();
                }
            }

            private void claimIfMissing(int index) {
                B3Digest chunk = chunks().get(index).digest();
                if (window.containsKey(index) || chunks.contains(chunk)) {
                    return;
                }
                CompletableFuture<byte[]> claim = chunkLoads.claim(chunk);
                if (claim != null) {
                    claims.put(index, claim);
                }
            }

            /** Takes chunk {@code index} from the stream; its claim stays in {@link #claims} until settled, also when this throws. */
            private void take(int index) throws IOException {
                CompletableFuture<byte[]> claim = claims.get(index);
                if (claim == null) {
                    stream.skip(); // cached already, or another reader is loading it
                    return;
                }
                ChunkMeta meta = chunks().get(index);
                if (slots != null) {
                    takeIntoSlot(index, meta, claim);
                    return;
                }
                byte[] data = stream.next();
                fetches.incrementAndGet();
                fetchedBytes.addAndGet(data.length);
                keep(index, meta, data, large);
                // The whole-blob check first: a reader waiting for the last chunk gets its verdict.
                if (wholeBlob != null) {
                    bindInOrder(index, data);
                }
                claims.remove(index);
                chunkLoads.complete(meta.digest(), claim, data);
            }

            /**
             * {@link #take} into the slots: the chunk goes to disk first (the array is reused once
             * the ring passes it, and whoever misses it then reads it from there), into the
             * whole-blob check, then into the oldest slot; the claim's waiters get no array and
             * look again.
             */
            private void takeIntoSlot(int index, ChunkMeta meta, CompletableFuture<byte[]> claim) throws IOException {
                int size = (int) meta.size();
                byte[] data = stream.nextShared();
                fetches.incrementAndGet();
                fetchedBytes.addAndGet(size);
                int lane = laneOf(index);
                if (writes.fetchedReusing(index, lane, () -> chunks.putBytesOnDisk(meta.digest(), data, size, lane), () -> {
                    byte[] copy = Arrays.copyOf(data, size); // held back for its lane's order
                    return () -> chunks.putOnDisk(meta.digest(), copy, lane);
                })) {
                    continueBindFromDisk();
                }
                if (wholeBlob != null) {
                    bindInOrder(index, data, size);
                }
                byte[] passed = slots.put(index, data);
                if (passed != null) {
                    stream.recycle(passed);
                }
                claims.remove(index);
                chunkLoads.complete(meta.digest(), claim, null);
            }

            /**
             * Claims left when the pump stops: the chunk it was taking fails with its error; the
             * others are given up, and whoever waits for them fetches them (a stream that broke
             * says nothing about them).
             */
            private void settleClaims(Throwable failure) {
                CompletableFuture<byte[]> current = failure == null ? null : claims.remove(next);
                if (current != null) {
                    chunkLoads.fail(chunks().get(next).digest(), current, failure);
                }
                claims.forEach((index, claim) -> chunkLoads.release(chunks().get(index).digest(), claim));
                claims.clear();
            }
        }
    }

    /** Where a {@link Reader} keeps a chunk it loads, besides the disk tier. */
    private enum Keep {
        /** The memory tier (shared by all readers). */
        MEMORY,
        /** The streaming reader's window only (past the memory tier). */
        WINDOW,
        /** The reader's last few chunks of random reads: loaded from disk, they skip the memory tier. */
        RECENT
    }

    /** A "bound" mark on disk: the digest of the chunk list that was checked (an older, empty mark reads as damaged: checked again). */
    private static final class MarkCodec implements TieredCache.Codec<B3Digest> {
        @Override
        public byte[] encode(B3Digest listDigest) {
            return listDigest.toByteArray();
        }

        @Override
        public B3Digest decodeVerified(B3Digest key, byte[] bytes) throws CorruptedDataException {
            if (bytes.length != B3Digest.LENGTH) {
                throw new CorruptedDataException("cached mark " + key + " is corrupted");
            }
            return B3Digest.of(bytes);
        }

        @Override
        public long weight(B3Digest value) {
            return 64;
        }
    }

    /** Chunks on disk are their bytes; verified by re-hashing against the key, or by the CRC32C recorded with them. */
    private static final class ChunkCodec implements TieredCache.Codec<byte[]> {
        @Override
        public byte[] encode(byte[] value) {
            return value;
        }

        @Override
        public byte[] decodeIntact(B3Digest key, byte[] bytes) {
            return bytes; // a chunk is its bytes: nothing more to check
        }

        @Override
        public byte[] decodeVerified(B3Digest key, byte[] bytes) throws CorruptedDataException {
            if (!Blake3.digest(bytes).equals(key)) {
                throw new CorruptedDataException("cached chunk " + key + " is corrupted");
            }
            return bytes;
        }

        @Override
        public boolean verifies(B3Digest key, byte[] bytes, int from, int length) {
            return Blake3.digest(bytes, from, length).equals(key);
        }

        @Override
        public long weight(byte[] value) {
            return value.length;
        }
    }
}

package castore.s3;

import castore.chunk.FastCdc;
import castore.hash.Blake3;
import castore.hash.ZeroDigests;
import castore.model.B3Digest;
import castore.service.BlobReader;
import castore.service.BlobService;
import castore.service.BlobWriter;
import castore.service.ChunkMeta;
import castore.service.ChunkedBlobReader;
import castore.service.CorruptedDataException;
import castore.service.NotFoundException;
import castore.service.ParallelLookups;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;

/**
 * Blobs as objects: each chunk under {@code chunks/}, each blob's chunk list under
 * {@code blobs/}. A chunk digest opens as a one-chunk blob, as in tvix, so a chunk-by-chunk
 * client (the gRPC daemon serving this store) can read chunks directly.
 */
final class S3BlobService implements BlobService {
    /** Uploads in flight per writer: bounds memory to this many max-size chunks. */
    private static final int UPLOADS_PER_WRITER = 8;
    /**
     * Requests for small blobs in flight at once: deferred uploads (each holds one chunk, at most
     * 512 KiB) and the GETs of {@link #readBlobs}.
     */
    private static final int SMALL_BLOBS_IN_FLIGHT = 64;

    private final Semaphore deferredSlots = new Semaphore(SMALL_BLOBS_IN_FLIGHT);
    private final ConcurrentLinkedQueue<Deferred> deferred = new ConcurrentLinkedQueue<>();

    private final Bucket bucket;
    private final WriteLease lease;
    private final ExecutorService executor;
    private final FastCdc chunker;

    S3BlobService(Bucket bucket, WriteLease lease, ExecutorService executor, FastCdc chunker) {
        this.bucket = bucket;
        this.lease = lease;
        this.executor = executor;
        this.chunker = chunker;
    }

    /**
     * A blob is stored as its chunk list ({@code blobs/}) or, when it is one chunk, as that chunk
     * alone ({@code chunks/}, no list). Most blobs are small files of one chunk, so the chunk is
     * asked for first: one HEAD for those, two for a blob of several chunks and for an absent one.
     * Before session 38 the list came first, and every small file present cost two HEADs.
     */
    @Override
    public boolean has(B3Digest digest) throws IOException {
        return hasChunk(digest);
    }

    /** HEAD requests this store has made (tests count them). */
    long heads() {
        return bucket.heads();
    }

    /** From this many digests asked about at once, a listing is tried before HEADs. */
    static final int LIST_FROM = 64;
    /**
     * Keys a listing may go through per digest asked about before it gives way to HEADs: a
     * LIST page holds 1000 keys and costs about what one HEAD does, so a listing that stops here
     * has cost about 1% of the HEADs that follow (two per digest absent: blob and chunk).
     */
    static final int LISTED_KEYS_PER_DIGEST = 10;
    /** {@link #LISTED_KEYS_PER_DIGEST}, lowered by tests to take the HEADs' way. */
    private volatile int listedKeysPerDigest = LISTED_KEYS_PER_DIGEST;

    /**
     * S3 has no request that asks about many objects. A store holding few objects for the
     * number asked about (a copy into a new or small store) is listed, `chunks/` then `blobs/`:
     * a page of 1000 keys per request instead of a HEAD or two per digest; copying the bench tree
     * of 50,000 files into a new prefix cost 100,000 HEADs. A larger store is asked with HEADs, up
     * to {@value #SMALL_BLOBS_IN_FLIGHT} digests at once.
     */
    @Override
    public List<B3Digest> missing(List<B3Digest> digests) throws IOException {
        List<B3Digest> distinct = List.copyOf(new LinkedHashSet<>(digests));
        if (distinct.size() >= LIST_FROM) {
            long budget = (long) distinct.size() * listedKeysPerDigest;
            Optional<Set<B3Digest>> chunks = listed(Keys.CHUNKS, budget);
            Optional<Set<B3Digest>> blobs = chunks.isPresent() ? listed(Keys.BLOBS, budget) : Optional.empty();
            if (blobs.isPresent()) {
                return distinct.stream().filter(d -> !chunks.get().contains(d) && !blobs.get().contains(d)).toList();
            }
        }
        return BlobService.missingByHas(this, distinct, SMALL_BLOBS_IN_FLIGHT);
    }

    /** {@link #missing}: here a blob is present exactly when {@link #hasChunk} says so ({@link #has}). */
    @Override
    public List<B3Digest> missingChunks(List<B3Digest> digests) throws IOException {
        return missing(digests);
    }

    /** For tests: keys a listing may go through per digest asked about (0: no listing). */
    void listedKeysPerDigest(int keys) {
        listedKeysPerDigest = keys;
    }

    /** The digests of the {@code kind} objects stored, or empty if there are more than {@code budget} keys. */
    private Optional<Set<B3Digest>> listed(String kind, long budget) throws IOException {
        Set<B3Digest> found = new HashSet<>();
        long seen = 0;
        try (Stream<Bucket.Listed> keys = bucket.list(kind)) {
            for (var it = keys.iterator(); it.hasNext(); ) {
                if (++seen > budget) {
                    return Optional.empty();
                }
                Keys.digestOf(kind, it.next().key()).ifPresent(found::add);
            }
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
        return Optional.of(found);
    }

    /**
     * Whether a chunk (or a whole blob) with this digest is stored: chunks first, since that is
     * what a chunk-level uploader asks about.
     */
    @Override
    public boolean hasChunk(B3Digest digest) throws IOException {
        return bucket.exists(Keys.chunk(digest)) || bucket.exists(Keys.blob(digest));
    }

    /**
     * One GET of the chunk object, checked against the digest and size (the default would ask
     * for its size first). A digest stored only as a blob is read through its chunk list and
     * the whole then hashed against the digest: the list alone does not bind its chunks to it.
     */
    @Override
    public Optional<byte[]> readChunk(ChunkMeta chunk) throws IOException {
        Optional<Bucket.Fetched> object = bucket.get(Keys.chunk(chunk.digest()));
        if (object.isEmpty()) {
            return BlobService.readVerified(open(chunk.digest()), chunk);
        }
        return Optional.of(checked(object.get().bytes(), chunk, "chunk " + chunk.digest()));
    }

    /**
     * The blobs' GETs at once, up to {@value #SMALL_BLOBS_IN_FLIGHT} in flight on virtual threads
     * (an export's small files: S3 answers each in its own time, and one after another each
     * waited for the last).
     */
    @Override
    public Map<B3Digest, byte[]> readBlobs(List<ChunkMeta> blobs) throws IOException {
        List<Optional<byte[]>> got = ParallelLookups.map(blobs, SMALL_BLOBS_IN_FLIGHT, blob -> BlobService.readIfSound(this, blob),
                "reading from " + bucket.location().display());
        Map<B3Digest, byte[]> read = new HashMap<>();
        for (int i = 0; i < blobs.size(); i++) {
            ChunkMeta blob = blobs.get(i);
            got.get(i).ifPresent(data -> read.put(blob.digest(), data));
        }
        return read;
    }

    /** A verified reader for one chunk, or a whole blob, by digest. */
    public Optional<BlobReader> openChunk(B3Digest digest) throws IOException {
        Optional<Long> size = bucket.size(Keys.chunk(digest));
        if (size.isPresent()) {
            return Optional.of(new ChunkedReader(digest, List.of(new ChunkMeta(digest, size.get()))));
        }
        return open(digest);
    }

    @Override
    public Optional<BlobReader> open(B3Digest digest) throws IOException {
        return chunks(digest).map(list -> new ChunkedReader(digest, list));
    }

    @Override
    public Optional<List<ChunkMeta>> chunks(B3Digest digest) throws IOException {
        Optional<Bucket.Fetched> list = bucket.get(Keys.blob(digest));
        if (list.isPresent()) {
            return Optional.of(ChunkList.decode(list.get().bytes(), "blob " + digest));
        }
        return bucket.size(Keys.chunk(digest)).map(size -> List.of(new ChunkMeta(digest, size)));
    }

    /** Fetches one chunk and checks it against its digest and size. */
    byte[] readChunk(ChunkMeta chunk, B3Digest blob) throws IOException {
        String what = "chunk " + chunk.digest() + " of blob " + blob;
        byte[] data = bucket.get(Keys.chunk(chunk.digest())).orElseThrow(() -> new NotFoundException(what + " not found")).bytes();
        return checked(data, chunk, what);
    }

    /** {@code data} if it is exactly {@code chunk}, its size and its digest; {@code what} names it in the error. */
    private static byte[] checked(byte[] data, ChunkMeta chunk, String what) throws CorruptedDataException {
        if (data.length != chunk.size()) {
            throw new CorruptedDataException(what + " has " + data.length + " bytes, listed as " + chunk.size());
        }
        if (!Blake3.digest(data).equals(chunk.digest())) {
            throw new CorruptedDataException(what + " is corrupted (content does not match digest)");
        }
        return data;
    }

    @Override
    public BlobWriter create() throws IOException {
        return new Writer(lease.beforeWrite(), false);
    }

    /**
     * A writer whose finish, for a blob of one chunk, returns once that chunk's upload has
     * started: an import's small files then upload {@value #SMALL_BLOBS_IN_FLIGHT} at a time, not
     * one per import thread (each waited for a HEAD and a PUT, then a HEAD and a PUT of its chunk
     * list). {@link #flushWrites} waits for them.
     */
    @Override
    public BlobWriter createDeferred() throws IOException {
        return new Writer(lease.beforeWrite(), true);
    }

    @Override
    public long flushWrites() throws IOException {
        long bytes = 0;
        IOException first = null;
        for (Deferred d; (d = deferred.poll()) != null; ) {
            try {
                d.done().get();
                bytes += d.stored().get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted waiting for uploads to " + bucket.location().display());
            } catch (ExecutionException e) {
                if (first == null) {
                    first = e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
                }
            }
        }
        if (first != null) {
            throw first;
        }
        return bytes;
    }

    /** A deferred blob's upload: done when its chunk is stored; the bytes it added. */
    private record Deferred(Future<?> done, AtomicLong stored) {
    }

    /** Positional reads over the chunk list; the last chunk read is kept for sequential readers. */
    private final class ChunkedReader extends ChunkedBlobReader {
        private record Held(int index, byte[] data) {
        }

        private final B3Digest digest;
        private volatile Held held;

        ChunkedReader(B3Digest digest, List<ChunkMeta> chunks) {
            super(chunks);
            this.digest = digest;
        }

        @Override
        protected byte[] chunk(int index) throws IOException {
            Held h = held;
            if (h != null && h.index == index) {
                return h.data;
            }
            byte[] data = readChunk(chunks().get(index), digest);
            held = new Held(index, data);
            return data;
        }
    }

    /**
     * Chunks as data arrives and uploads each new chunk in the background; the chunk list goes
     * last. A blob of one chunk has no list: its chunk is the blob, as {@link #chunks} and
     * {@link #has} read it (tvix reads a chunk digest as a blob too), which saves a HEAD and a PUT
     * per small file.
     */
    private final class Writer implements BlobWriter {
        /** Grows to twice the largest chunk as bytes come (1 MiB zeroed per small file, before). */
        private byte[] buffer = new byte[0];
        private final boolean deferredFinish;
        private final Blake3.Hasher hasher = Blake3.newHasher();
        private final List<ChunkMeta> chunks = new ArrayList<>();
        private final Set<B3Digest> submitted = new HashSet<>();
        private final List<Future<?>> uploads = new ArrayList<>();
        private final Semaphore inFlight = new Semaphore(UPLOADS_PER_WRITER);
        private final AtomicLong stored = new AtomicLong();
        private volatile IOException failed;
        private int filled;
        private long size;
        private B3Digest result;
        private boolean closed;
        /** The write lease's generation when this writer began: its chunks are safe from gc only while it holds. */
        private final long generation;

        Writer(long generation, boolean deferredFinish) {
            this.generation = generation;
            this.deferredFinish = deferredFinish;
        }

        /** Fails if the lease lapsed since this writer began: a gc may have removed chunks it sent. */
        private void checkLease() throws IOException {
            if (lease.beforeWrite() != generation) {
                throw new IOException("the write lease on " + bucket.location().display() + " lapsed during this upload (no write for "
                        + WriteLease.STALE.toMinutes() + " minutes), and garbage collection may have removed chunks sent before; write the blob again");
            }
        }

        @Override
        public void write(ByteBuffer data) throws IOException {
            if (result != null || closed) {
                throw new IOException("blob writer already " + (closed ? "closed" : "finished"));
            }
            while (data.hasRemaining()) {
                if (filled == buffer.length) { // below one chunk: emit keeps it so
                    buffer = Arrays.copyOf(buffer, (int) Math.min(2L * chunker.maxSize(),
                            Math.max(4096L, Math.max(2L * buffer.length, (long) filled + data.remaining()))));
                }
                int n = Math.min(data.remaining(), buffer.length - filled);
                data.get(buffer, filled, n);
                hasher.update(buffer, filled, n);
                filled += n;
                size += n;
                while (filled >= chunker.maxSize()) {
                    emit(chunker.cut(buffer, 0, chunker.maxSize()));
                }
            }
        }

        private void emit(int length) throws IOException {
            byte[] chunk = Arrays.copyOf(buffer, length);
            System.arraycopy(buffer, length, buffer, 0, filled - length);
            filled -= length;
            B3Digest digest = ZeroDigests.digest(chunk, 0, length); // a chunk of zeros named from memory
            chunks.add(new ChunkMeta(digest, length));
            if (failed != null) {
                throw failed; // stop sending once an upload failed: finish would fail anyway
            }
            if (!submitted.add(digest)) {
                return;
            }
            try {
                inFlight.acquire();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while uploading");
            }
            uploads.add(executor.submit(() -> {
                try {
                    checkLease(); // keeps the lease fresh through a long upload, so gc stays out
                    String key = Keys.chunk(digest);
                    // Existence first: a chunk already stored costs a HEAD, not an upload.
                    if (!bucket.exists(key) && bucket.putIfAbsent(key, chunk)) {
                        stored.addAndGet(chunk.length);
                    }
                    return null;
                } catch (IOException e) {
                    failed = e;
                    throw e;
                } finally {
                    inFlight.release();
                }
            }));
        }

        @Override
        public B3Digest finish() throws IOException {
            if (result != null) {
                return result;
            }
            if (closed) {
                throw new IOException("blob writer already closed");
            }
            while (filled > 0) {
                emit(chunker.cut(buffer, 0, Math.min(chunker.maxSize(), filled)));
            }
            B3Digest digest = hasher.digest();
            if (chunks.size() == 1 && deferredFinish) {
                try {
                    deferredSlots.acquire();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new InterruptedIOException("interrupted while uploading");
                }
                Future<?> done;
                try {
                    done = executor.submit(() -> {
                        try {
                            awaitUploads();
                            checkLease(); // as a writer that waits checks it once its chunks are sent
                            return null;
                        } finally {
                            deferredSlots.release();
                        }
                    });
                } catch (RuntimeException e) { // the store is closing
                    deferredSlots.release();
                    throw e;
                }
                deferred.add(new Deferred(done, stored));
                result = digest;
                return digest;
            }
            awaitUploads();
            checkLease(); // the chunk list names chunks sent over the whole upload
            if (chunks.size() != 1) { // one chunk: the chunk is the blob
                String key = Keys.blob(digest);
                if (!bucket.exists(key)) {
                    bucket.putIfAbsent(key, ChunkList.encode(chunks));
                }
            }
            result = digest;
            return digest;
        }

        private void awaitUploads() throws IOException {
            IOException first = null;
            for (Future<?> f : uploads) {
                try {
                    f.get();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new InterruptedIOException("interrupted while uploading");
                } catch (ExecutionException e) {
                    if (first == null) {
                        first = e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
                    }
                }
            }
            uploads.clear();
            if (first != null) {
                throw first;
            }
        }

        @Override
        public long size() {
            return size;
        }

        @Override
        public long bytesStored() {
            return stored.get();
        }

        @Override
        public void close() throws IOException {
            if (closed) {
                return;
            }
            closed = true;
            if (result == null) {
                // Chunks already uploaded stay as unreferenced objects until GC; no blob appears.
                for (Future<?> f : uploads) {
                    f.cancel(true);
                }
            }
        }
    }
}

package castore.service.cache;

import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.service.BlobReader;
import castore.service.BlobService;
import castore.service.BlobWriter;
import castore.service.ChunkMeta;
import castore.service.DirectoryService;
import castore.service.memory.MemoryDirectoryService;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A stand-in for a remote store: blobs in fixed 64 KiB chunks, counting every chunk and
 * Directory it serves, and able to go offline, hold fetches at a gate, or list wrong chunks.
 */
final class FakeRemote {
    static final int CHUNK = 64 * 1024;

    final Map<B3Digest, List<ChunkMeta>> lists = new ConcurrentHashMap<>();
    final Map<B3Digest, byte[]> chunks = new ConcurrentHashMap<>();
    final AtomicInteger chunkReads = new AtomicInteger();
    /** Requests for a blob's chunk list: {@code chunks} and {@code open}. */
    final AtomicInteger listGets = new AtomicInteger();
    final AtomicInteger directoryGets = new AtomicInteger();
    /** Calls of {@code readBlobs} (each reads its blobs through {@code readChunk}, counted there too). */
    final AtomicInteger readBlobsCalls = new AtomicInteger();
    final AtomicInteger recursiveGets = new AtomicInteger();
    /** When not negative, recursive gets fail after sending this many Directories. */
    volatile int recursiveBreaksAfter = -1;
    /** Whether the remote says it streams a closure in one call (as gRPC does), so prefetch asks for that. */
    volatile boolean streamsClosures = true;
    volatile boolean offline;
    /** Whether chunks can be read by digest ({@link BlobService#readChunk}); if not, the cache reads blob ranges. */
    volatile boolean servesChunks = true;
    volatile CountDownLatch gate;
    /** Chunk reads that wait for their latch: a fetch that ends after others begun later. */
    final Map<B3Digest, CountDownLatch> holds = new ConcurrentHashMap<>();
    /** Whether a held read ignores interrupts (as a network call may, for a while). */
    volatile boolean holdsIgnoreInterrupts;
    /** Chunk reads waiting at a hold now. */
    final AtomicInteger atHold = new AtomicInteger();
    /** Chunks whose next read fails (once each). */
    final java.util.Set<B3Digest> failOnce = ConcurrentHashMap.newKeySet();
    /** Calls waiting at the gate now. */
    final AtomicInteger atGate = new AtomicInteger();
    final MemoryDirectoryService directoryStore = new MemoryDirectoryService();
    /** When set, every Directory get waits for it (counted before it waits). */
    volatile CountDownLatch directoryGate;
    /** When set, a recursive get sends its first Directory, then waits for it before the rest. */
    volatile CountDownLatch recursiveGate;
    /** Whether recursive gets come breadth-first, as a tvix server sends them (else depth-first, as a castore daemon). */
    volatile boolean breadthFirst;

    B3Digest add(byte[] data) {
        return add(data, CHUNK);
    }

    /** Adds a blob cut into chunks of {@code sizes}, taken in turn (content-defined chunks differ in size). */
    B3Digest add(byte[] data, int... sizes) {
        List<ChunkMeta> list = new ArrayList<>();
        for (int off = 0, i = 0; off < data.length; off += sizes[i++ % sizes.length]) {
            byte[] c = Arrays.copyOfRange(data, off, Math.min(data.length, off + sizes[i % sizes.length]));
            B3Digest d = Blake3.digest(c);
            chunks.put(d, c);
            list.add(new ChunkMeta(d, c.length));
        }
        B3Digest digest = Blake3.digest(data);
        lists.put(digest, List.copyOf(list));
        return digest;
    }

    private void awaitHold(CountDownLatch hold) throws java.io.InterruptedIOException {
        boolean interrupted = false;
        while (true) {
            try {
                hold.await();
                break;
            } catch (InterruptedException e) {
                if (!holdsIgnoreInterrupts) {
                    Thread.currentThread().interrupt();
                    throw new java.io.InterruptedIOException();
                }
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }

    private void check() throws IOException {
        if (offline) {
            throw new IOException("remote is offline");
        }
        CountDownLatch g = gate;
        if (g != null) {
            atGate.incrementAndGet();
            try {
                g.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException();
            } finally {
                atGate.decrementAndGet();
            }
        }
    }

    final BlobService blobs = new BlobService() {
        @Override
        public boolean has(B3Digest digest) throws IOException {
            check();
            return lists.containsKey(digest);
        }

        @Override
        public Optional<BlobReader> open(B3Digest digest) throws IOException {
            check();
            listGets.incrementAndGet();
            List<ChunkMeta> list = lists.get(digest);
            if (list == null) {
                return Optional.empty();
            }
            long size = list.stream().mapToLong(ChunkMeta::size).sum();
            return Optional.of(new BlobReader() {
                @Override
                public long size() {
                    return size;
                }

                @Override
                public int read(long position, ByteBuffer dst) throws IOException {
                    check();
                    if (position >= size) {
                        return -1;
                    }
                    int total = 0;
                    while (dst.hasRemaining() && position < size) {
                        int index = (int) (position / CHUNK);
                        byte[] c = chunks.get(list.get(index).digest());
                        chunkReads.incrementAndGet();
                        int within = (int) (position - (long) index * CHUNK);
                        int n = Math.min(dst.remaining(), c.length - within);
                        dst.put(c, within, n);
                        position += n;
                        total += n;
                    }
                    return total;
                }
            });
        }

        /** Counted, then read one by one as the default does. */
        @Override
        public Map<B3Digest, byte[]> readBlobs(List<ChunkMeta> blobs) throws IOException {
            readBlobsCalls.incrementAndGet();
            return BlobService.super.readBlobs(blobs);
        }

        @Override
        public Optional<byte[]> readChunk(ChunkMeta chunk) throws IOException {
            if (!servesChunks) {
                return Optional.empty();
            }
            check();
            CountDownLatch hold = holds.get(chunk.digest());
            if (hold != null) {
                atHold.incrementAndGet();
                try {
                    awaitHold(hold);
                } finally {
                    atHold.decrementAndGet();
                }
            }
            if (failOnce.remove(chunk.digest())) {
                throw new IOException("chunk read failed once");
            }
            byte[] c = chunks.get(chunk.digest());
            if (c == null) {
                return Optional.empty();
            }
            chunkReads.incrementAndGet();
            if (c.length != chunk.size()) { // as real services check
                throw new castore.service.CorruptedDataException("chunk " + chunk.digest() + " has " + c.length + " bytes, listed as " + chunk.size());
            }
            return Optional.of(c.clone());
        }

        @Override
        public BlobWriter create() {
            throw new UnsupportedOperationException();
        }

        @Override
        public Optional<List<ChunkMeta>> chunks(B3Digest digest) throws IOException {
            check();
            listGets.incrementAndGet();
            return Optional.ofNullable(lists.get(digest));
        }
    };

    final DirectoryService directories = new DirectoryService() {
        @Override
        public Optional<Directory> get(B3Digest digest) throws IOException {
            check();
            directoryGets.incrementAndGet();
            CountDownLatch gate = directoryGate;
            if (gate != null) {
                try {
                    gate.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new java.io.InterruptedIOException();
                }
            }
            return directoryStore.get(digest);
        }

        @Override
        public boolean has(B3Digest digest) throws IOException {
            check();
            return directoryStore.has(digest);
        }

        @Override
        public boolean streamsClosures() {
            return streamsClosures;
        }

        /** One call, counted apart from single gets; breaks after {@code recursiveBreaksAfter} Directories if that is set. */
        @Override
        public java.util.stream.Stream<Directory> getRecursive(B3Digest root) throws IOException {
            check();
            recursiveGets.incrementAndGet();
            int breakAfter = recursiveBreaksAfter;
            CountDownLatch held = recursiveGate;
            java.util.concurrent.atomic.AtomicInteger sent = new java.util.concurrent.atomic.AtomicInteger();
            var closure = breadthFirst ? breadthFirst(root).stream() : directoryStore.getRecursive(root);
            return closure.peek(d -> {
                int before = sent.getAndIncrement();
                if (breakAfter >= 0 && before >= breakAfter) {
                    throw new java.io.UncheckedIOException(new IOException("stream broken"));
                }
                if (held != null && before == 1) {
                    try {
                        held.await();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new java.io.UncheckedIOException(new java.io.InterruptedIOException());
                    }
                }
            });
        }

        private List<Directory> breadthFirst(B3Digest root) throws IOException {
            List<Directory> order = new ArrayList<>();
            java.util.ArrayDeque<B3Digest> queue = new java.util.ArrayDeque<>(List.of(root));
            java.util.Set<B3Digest> seen = new java.util.HashSet<>(List.of(root));
            while (!queue.isEmpty()) {
                Directory d = directoryStore.get(queue.poll()).orElseThrow(() -> new castore.service.NotFoundException("missing"));
                order.add(d);
                for (var node : d.entries().values()) {
                    if (node instanceof castore.model.DirectoryNode child && seen.add(child.digest())) {
                        queue.add(child.digest());
                    }
                }
            }
            return order;
        }

        @Override
        public B3Digest put(Directory directory) throws IOException {
            check();
            return directoryStore.put(directory);
        }
    };
}

package castore.ingest;

import castore.ingest.posix.Display;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.Name;
import castore.model.Node;
import castore.model.SymlinkNode;
import castore.service.BlobReader;
import castore.service.BlobService;
import castore.service.BlobWriter;
import castore.service.ChunkMeta;
import castore.service.ClosurePutter;
import castore.service.CorruptedDataException;
import castore.service.DirectoryService;
import castore.service.NotFoundException;
import castore.service.ParallelLookups;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;
import java.util.stream.Stream;

/**
 * Copies trees from one store to another (castore copy): only what the destination lacks, read
 * from the source and checked on the way. Top-down, a Directory the destination already has is
 * taken as complete with everything below it, as every castore writer stores blobs before the
 * Directories naming them and a Directory only after its children (`castore verify` on the
 * destination checks that), so copying a new version of a tree sends its changed part only, and
 * copying a tree again asks one question. Of the rest, the blobs the destination lacks are read
 * and written on {@code threads} virtual threads (small ones fetched in batches, written through
 * deferred writers: a remote takes them in batches too), flushed, and then the missing Directories
 * go as one closure, leaves first, so the destination never holds a Directory naming what it
 * lacks. The caller names the copy in the destination's roots after that.
 */
public final class Copier {
    /** Bytes of small blobs (BlobService.SMALL_BLOB_MAX) read in one batch and kept whole in memory. */
    static final long BATCH_BYTES = 8L << 20;
    static final int BATCH_BLOBS = 1024;
    /** Directory lookups in the destination at once (each a round trip to a remote). */
    private static final int LOOKUPS_IN_FLIGHT = 32;
    private static final int COPY_BUFFER = 1 << 20;

    private final BlobService fromBlobs;
    private final DirectoryService fromDirectories;
    private final BlobService toBlobs;
    private final DirectoryService toDirectories;
    private final int threads;

    private final LongAdder directories = new LongAdder();
    private final LongAdder directoriesSent = new LongAdder();
    private final LongAdder blobs = new LongAdder();
    private final LongAdder blobsToSend = new LongAdder();
    private final LongAdder blobsSent = new LongAdder();
    private final LongAdder bytesToSend = new LongAdder();
    private final LongAdder bytesSent = new LongAdder();
    private final LongAdder bytesStored = new LongAdder();

    public Copier(BlobService fromBlobs, DirectoryService fromDirectories, BlobService toBlobs, DirectoryService toDirectories,
            int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        }
        this.fromBlobs = fromBlobs;
        this.fromDirectories = fromDirectories;
        this.toBlobs = toBlobs;
        this.toDirectories = toDirectories;
        this.threads = threads;
    }

    /** What the copies so far found and sent. */
    public CopyStats stats() {
        return new CopyStats(directories.sum(), directoriesSent.sum(), blobs.sum(), blobsToSend.sum(), blobsSent.sum(),
                bytesToSend.sum(), bytesSent.sum(), bytesStored.sum());
    }

    /**
     * Makes sure the destination holds everything {@code node} refers to; {@code what} names the
     * node in messages (ROOT/PATH). A symlink refers to nothing.
     */
    public void copy(Node node, String what) throws IOException {
        switch (node) {
            case SymlinkNode symlink -> {
            }
            case FileNode file -> {
                blobs.increment();
                Map<B3Digest, Wanted> wanted = new LinkedHashMap<>();
                wanted.put(file.digest(), new Wanted(file.size(), what));
                copyBlobs(wanted);
            }
            case DirectoryNode directory -> copyTree(directory, what);
        }
    }

    /** A blob to copy: its size (from a verified node) and the first path naming it, for messages. */
    private record Wanted(long size, String path) {
    }

    private record Pending(B3Digest digest, String path) {
    }

    private void copyTree(DirectoryNode top, String what) throws IOException {
        if (toDirectories.has(top.digest())) {
            directories.increment();
            return; // copied before, or imported there too
        }
        // Held encoded, decoded again where used: a decoded Directory takes about 4.7 times its
        // encoded size (a name, a digest and a node object per entry), and a copy holds the closure.
        Map<B3Digest, byte[]> closure = new HashMap<>();
        try (Stream<Directory> all = fromDirectories.getRecursive(top.digest())) {
            all.forEach(d -> closure.put(d.digest(), d.encode()));
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
        // Breadth-first from the top, leaving out what the destination has; parents before children.
        Set<B3Digest> toSend = new HashSet<>();
        Map<B3Digest, Wanted> wanted = new LinkedHashMap<>();
        Set<B3Digest> seen = new HashSet<>();
        seen.add(top.digest());
        List<Pending> level = List.of(new Pending(top.digest(), what));
        boolean first = true;
        while (!level.isEmpty()) {
            List<Boolean> present = first ? List.of(false) : present(level); // the top is not there: asked above
            first = false;
            List<Pending> next = new ArrayList<>();
            for (int i = 0; i < level.size(); i++) {
                Pending pending = level.get(i);
                directories.increment();
                if (present.get(i)) {
                    continue;
                }
                byte[] encoded = closure.get(pending.digest());
                if (encoded == null) {
                    throw new NotFoundException("directory " + pending.digest() + " (" + pending.path() + ") is not in the source store");
                }
                Directory directory = Directory.decode(encoded);
                toSend.add(pending.digest());
                for (var entry : directory.entries().entrySet()) {
                    String path = pending.path() + "/" + display(entry.getKey());
                    switch (entry.getValue()) {
                        case DirectoryNode child -> {
                            if (seen.add(child.digest())) {
                                next.add(new Pending(child.digest(), path));
                            }
                        }
                        case FileNode file -> {
                            if (wanted.putIfAbsent(file.digest(), new Wanted(file.size(), path)) == null) {
                                blobs.increment();
                            }
                        }
                        case SymlinkNode symlink -> {
                        }
                    }
                }
            }
            level = next;
        }
        copyBlobs(wanted);
        // A tvix server wants every put to carry the whole closure, stored children too.
        Set<B3Digest> sent = toDirectories.acceptsStoredChildren() ? toSend : closure.keySet();
        try (ClosurePutter putter = toDirectories.putClosure()) { // closed unfinished if a put fails
            int put = putChildrenFirst(closure, top.digest(), sent, putter);
            B3Digest root = putter.finish();
            if (!root.equals(top.digest())) {
                throw new CorruptedDataException("the destination stored " + what + " as " + root + ", not " + top.digest());
            }
            directoriesSent.add(put);
        }
    }

    /**
     * Puts the Directories of {@code sent} below {@code top} (and {@code top}), each once, every
     * one after all of its children that are sent: depth-first, each put when its last child is
     * done; returns how many. Only the Directories on the current path are held decoded. Not
     * breadth-first reversed: a Directory that is both a child of the top and a grandchild
     * through a sibling (identical subtrees at two depths, common in real trees) is first met at
     * the shallower level, and reversed that order put the sibling first, naming a child not
     * stored yet, which every destination refused (before session 38).
     */
    private static int putChildrenFirst(Map<B3Digest, byte[]> closure, B3Digest top, Set<B3Digest> sent, ClosurePutter putter)
            throws IOException {
        /** A Directory on the depth-first path, and how many of its entries were looked at. */
        final class Frame {
            final Directory directory;
            int next;

            Frame(B3Digest digest) {
                this.directory = Directory.decode(closure.get(digest));
            }
        }
        int put = 0;
        Set<B3Digest> visited = new HashSet<>(Set.of(top));
        ArrayDeque<Frame> path = new ArrayDeque<>();
        path.push(new Frame(top));
        while (!path.isEmpty()) {
            Frame frame = path.peek();
            if (frame.next < frame.directory.entryCount()) {
                if (frame.directory.node(frame.next++) instanceof DirectoryNode child
                        && sent.contains(child.digest()) && visited.add(child.digest())) {
                    path.push(new Frame(child.digest()));
                }
            } else {
                putter.put(path.pop().directory);
                put++;
            }
        }
        return put;
    }

    /** Whether the destination has each Directory, asked {@value #LOOKUPS_IN_FLIGHT} at a time. */
    private List<Boolean> present(List<Pending> level) throws IOException {
        return ParallelLookups.map(level, LOOKUPS_IN_FLIGHT, pending -> toDirectories.has(pending.digest()),
                "looking up directories in the destination");
    }

    /** Copies the blobs the destination lacks, then waits until they are all stored there. */
    private void copyBlobs(Map<B3Digest, Wanted> wanted) throws IOException {
        List<B3Digest> missing = toBlobs.missing(new ArrayList<>(wanted.keySet()));
        List<Runnable> jobs = new ArrayList<>();
        List<ChunkMeta> batch = new ArrayList<>();
        long batchBytes = 0;
        for (B3Digest digest : missing) {
            Wanted w = wanted.get(digest);
            if (w == null) {
                continue; // a backend's answer names only what it was asked about; be sure
            }
            blobsToSend.increment();
            bytesToSend.add(w.size());
            if (w.size() > BlobService.SMALL_BLOB_MAX) {
                jobs.add(() -> copyLarge(digest, w));
                continue;
            }
            if (!batch.isEmpty() && (batch.size() == BATCH_BLOBS || batchBytes + w.size() > BATCH_BYTES)) {
                List<ChunkMeta> full = batch;
                jobs.add(() -> copySmall(full, wanted));
                batch = new ArrayList<>();
                batchBytes = 0;
            }
            batch.add(new ChunkMeta(digest, w.size()));
            batchBytes += w.size();
        }
        if (!batch.isEmpty()) {
            List<ChunkMeta> last = batch;
            jobs.add(() -> copySmall(last, wanted));
        }
        run(jobs);
        bytesStored.add(toBlobs.flushWrites());
    }

    /** Runs the jobs, {@code threads} at a time on virtual threads; the first failure stops the rest and is thrown. */
    private void run(List<Runnable> jobs) throws IOException {
        List<Future<?>> running = new ArrayList<>(jobs.size());
        Semaphore slots = new Semaphore(threads);
        AtomicBoolean failed = new AtomicBoolean();
        try (ExecutorService executor = Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("castore-copy-", 0).factory())) {
            try {
                for (Runnable job : jobs) {
                    slots.acquire();
                    if (failed.get()) {
                        break; // no more jobs once one failed: its failure is what the caller gets
                    }
                    running.add(executor.submit(() -> {
                        try {
                            job.run();
                        } catch (RuntimeException | Error e) {
                            failed.set(true);
                            throw e;
                        } finally {
                            slots.release();
                        }
                    }));
                }
                for (Future<?> f : running) {
                    f.get();
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new InterruptedIOException("interrupted while copying blobs");
            } catch (ExecutionException e) {
                Throwable cause = e.getCause() instanceof UncheckedIOException u ? u.getCause() : e.getCause();
                throw cause instanceof IOException io ? io : new IOException(cause);
            } finally {
                running.forEach(f -> f.cancel(true));
            }
        }
    }

    private void copySmall(List<ChunkMeta> batch, Map<B3Digest, Wanted> wanted) {
        try {
            Map<B3Digest, byte[]> read = fromBlobs.readBlobs(batch); // checked against digest and size
            for (ChunkMeta blob : batch) {
                Wanted w = wanted.get(blob.digest());
                byte[] data = read.get(blob.digest());
                if (data == null) { // left out of the batch: read it alone, and fail naming it if it is absent
                    data = fromBlobs.readChunk(blob)
                            .orElseThrow(() -> new NotFoundException("blob " + blob.digest() + " (" + w.path() + ") is not in the source store"));
                }
                try (BlobWriter writer = toBlobs.createDeferred()) {
                    writer.write(data, 0, data.length);
                    finish(writer, blob.digest(), w, true);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private void copyLarge(B3Digest digest, Wanted w) {
        try (BlobReader reader = fromBlobs.open(digest, w.size())
                .orElseThrow(() -> new NotFoundException("blob " + digest + " (" + w.path() + ") is not in the source store"));
                BlobWriter writer = toBlobs.createDeferred()) {
            ByteBuffer buffer = ByteBuffer.allocate((int) Math.min(COPY_BUFFER, Math.max(1, w.size())));
            long position = 0;
            while (position < w.size()) {
                buffer.clear().limit((int) Math.min(buffer.capacity(), w.size() - position));
                int n = reader.read(position, buffer);
                if (n < 0) {
                    throw new CorruptedDataException("blob " + digest + " (" + w.path() + ") ended after " + position + " of "
                            + w.size() + " bytes in the source store");
                }
                buffer.flip();
                writer.write(buffer);
                position += n;
                bytesSent.add(n); // as it goes: a progress line shows a large blob's copy move
            }
            finish(writer, digest, w, false);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Finishes a blob's writer; what the destination computed must be the digest copied.
     * {@code countBytes}: whether its bytes are still to be counted as sent.
     */
    private void finish(BlobWriter writer, B3Digest digest, Wanted w, boolean countBytes) throws IOException {
        B3Digest stored = writer.finish();
        if (!stored.equals(digest)) {
            throw new CorruptedDataException("blob " + digest + " (" + w.path() + ") was read from the source store as other bytes ("
                    + stored + ")");
        }
        blobsSent.increment();
        if (countBytes) {
            bytesSent.add(writer.size());
        }
        bytesStored.add(writer.bytesStored());
    }

    private static String display(Name name) {
        return Display.escape(name.bytesUnsafe());
    }
}

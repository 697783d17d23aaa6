package castore.s3;

import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.Name;
import castore.service.ChunkMeta;
import castore.service.CorruptedDataException;
import castore.service.ParallelLookups;
import castore.service.StoreBusyException;
import castore.service.StoreMaintenance;
import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.Consumer;

/** verify and gc over the bucket: everything is found by listing the store's prefix. */
final class S3Maintenance implements StoreMaintenance, AutoCloseable {
    /**
     * Objects verify checks at once: each is one GET or a few, which wait on the network. One at a
     * time, verify of a bucket of 56,000 objects on S3Proxy over loopback took 75 s.
     */
    static final int OBJECTS_IN_FLIGHT = 32;
    /** Listed objects held at a time for those checks. */
    static final int LISTED_AT_A_TIME = 1024;
    private final Bucket bucket;
    private final S3BlobService blobs;
    private final S3DirectoryService directories;
    private final S3RootService roots;
    /** The server's time when this process took the gc lock, while it holds it. */
    private volatile Instant lockedAt;

    S3Maintenance(Bucket bucket, S3BlobService blobs, S3DirectoryService directories, S3RootService roots) {
        this.bucket = bucket;
        this.blobs = blobs;
        this.directories = directories;
        this.roots = roots;
    }

    @Override
    public Closeable exclusive() throws IOException {
        // Unique to this attempt: a conditional write that finds exactly its own bytes counts as
        // its own (Bucket.put, for retried requests), so no other gc may ever write the same body.
        byte[] body = ("gc since " + Instant.now() + " by " + ProcessHandle.current().pid() + " (" + java.util.UUID.randomUUID() + ")\n")
                .getBytes(StandardCharsets.UTF_8);
        if (!bucket.putIfAbsent(Keys.GC_LOCK, body)) {
            throw new StoreBusyException("another garbage collection holds " + bucket.location().display() + Keys.GC_LOCK
                    + "; if none is running (a crashed gc), delete that object");
        }
        List<String> writers = new ArrayList<>();
        Instant now;
        try {
            // The server's clock, not ours: leases carry the server's times, and a gc whose clock
            // ran ahead would otherwise take a live writer's lease for a crashed one's.
            now = bucket.stat(Keys.GC_LOCK).orElseThrow(() -> new IOException(
                    bucket.location().display() + Keys.GC_LOCK + " vanished right after gc created it; is another gc deleting it?"))
                    .lastModified();
            try (var leases = bucket.list(Keys.LEASES)) {
                leases.filter(l -> Duration.between(l.lastModified(), now).compareTo(WriteLease.STALE_FOR_GC) < 0)
                        .forEach(l -> writers.add(l.key()));
            } catch (UncheckedIOException e) {
                throw e.getCause();
            }
        } catch (IOException | RuntimeException e) {
            bucket.delete(Keys.GC_LOCK, null);
            throw e;
        }
        if (!writers.isEmpty()) {
            bucket.delete(Keys.GC_LOCK, null);
            throw new StoreBusyException(writers.size() + " writer(s) active on " + bucket.location().display()
                    + " (" + writers.getFirst() + "); try again when the import has finished");
        }
        lockedAt = now;
        return () -> {
            lockedAt = null;
            bucket.delete(Keys.GC_LOCK, null);
        };
    }

    @Override
    public Verification verifyStored(Consumer<String> problem) throws IOException {
        try {
            return verify(problem);
        } catch (UncheckedIOException e) {
            throw e.getCause(); // a failed listing
        }
    }

    private Verification verify(Consumer<String> reported) throws IOException {
        // Objects are checked OBJECTS_IN_FLIGHT at once, so problems come from several threads.
        Consumer<String> problem = line -> {
            synchronized (this) {
                reported.accept(line);
            }
        };
        long checked = 0;
        // Blobs first: re-hash each blob whole through its chunks, checking every chunk on the way.
        Map<B3Digest, Long> goodChunks = new ConcurrentHashMap<>();
        Set<B3Digest> badChunks = ConcurrentHashMap.newKeySet();
        Map<B3Digest, Long> goodBlobs = new ConcurrentHashMap<>();
        checked += checkListed(Keys.BLOBS, listed -> {
            B3Digest blob = Keys.digestOf(Keys.BLOBS, listed.key()).orElse(null);
            if (blob == null) {
                problem.accept("unexpected object " + listed.key());
            } else {
                long size = verifyBlob(blob, goodChunks, badChunks, problem);
                if (size >= 0) {
                    goodBlobs.put(blob, size);
                }
            }
        });
        // Then every chunk no blob's list named (a blob of one chunk is that chunk alone).
        checked += checkListed(Keys.CHUNKS, listed -> {
            B3Digest chunk = Keys.digestOf(Keys.CHUNKS, listed.key()).orElse(null);
            if (chunk == null) {
                problem.accept("unexpected object " + listed.key());
            } else if (!goodChunks.containsKey(chunk) && !badChunks.contains(chunk)) {
                try {
                    blobs.readChunk(new ChunkMeta(chunk, listed.size()), chunk);
                    goodChunks.put(chunk, listed.size());
                } catch (CorruptedDataException e) {
                    problem.accept(e.getMessage());
                } catch (castore.service.NotFoundException gone) {
                    // Deleted since the listing (a gc elsewhere): nothing left to check here; a
                    // chunk list naming it is reported by the file checks below.
                }
            }
        });
        // Directories: files are checked as each Directory is read; what its subdirectories must
        // be is kept until every Directory was read. Only sizes and those references stay in
        // memory, not the Directories: a tree of millions of files is verified in a heap that
        // holds its directories' digests.
        Map<B3Digest, Long> dirs = new ConcurrentHashMap<>();
        Queue<Subdirectory> subdirectories = new ConcurrentLinkedQueue<>();
        checked += checkListed(Keys.DIRECTORIES, listed -> {
            B3Digest digest = Keys.digestOf(Keys.DIRECTORIES, listed.key()).orElse(null);
            if (digest == null) {
                problem.accept("unexpected object " + listed.key());
                return;
            }
            Directory directory;
            try {
                directory = directories.get(digest).orElse(null);
            } catch (CorruptedDataException e) {
                problem.accept(e.getMessage());
                return;
            }
            if (directory == null) {
                return; // deleted since listed
            }
            dirs.put(digest, directory.size());
            for (var entry : directory.entries().entrySet()) {
                switch (entry.getValue()) {
                    case DirectoryNode d -> subdirectories.add(new Subdirectory(digest, entry.getKey(), d));
                    case FileNode f -> checkFile(where(digest, entry.getKey()), f, goodBlobs, goodChunks, problem);
                    default -> {
                    }
                }
            }
        });
        for (Subdirectory s : subdirectories) {
            Long size = dirs.get(s.node().digest());
            if (size == null) {
                problem.accept(where(s.parent(), s.name()) + ": directory " + s.node().digest() + " missing or corrupted");
            } else if (size != s.node().size()) {
                problem.accept(where(s.parent(), s.name()) + ": size " + s.node().size() + " but directory has " + size);
            }
        }
        List<Bucket.Listed> rootKeys;
        try (var listing = bucket.list(Keys.ROOTS)) {
            rootKeys = listing.toList();
        }
        for (var listed : rootKeys) {
            checked++;
            Name name = Keys.rootName(listed.key()).orElse(null);
            if (name == null) {
                problem.accept("unexpected object " + listed.key());
                continue;
            }
            try {
                var node = roots.get(name);
                String where = "root '" + name + "'";
                if (node.isPresent() && node.get() instanceof DirectoryNode d && !dirs.containsKey(d.digest())) {
                    problem.accept(where + ": directory " + d.digest() + " missing or corrupted");
                } else if (node.isPresent() && node.get() instanceof FileNode f) {
                    checkFile(where, f, goodBlobs, goodChunks, problem);
                }
            } catch (CorruptedDataException e) {
                problem.accept(e.getMessage());
            }
        }
        // A chunk is a blob of one chunk (as open and has take it), so sound chunks are sound blobs.
        return new Verification(checked, blob -> {
            Long size = goodBlobs.get(blob);
            if (size == null) {
                size = goodChunks.get(blob);
            }
            return size != null ? size : -1;
        });
    }

    /** A check of one listed object; what it finds goes to the problem lines, an error reading it is thrown. */
    @FunctionalInterface
    private interface Check {
        void check(Bucket.Listed listed) throws IOException;
    }

    /**
     * Runs {@code check} on every object listed under {@code prefix}, {@value #OBJECTS_IN_FLIGHT}
     * at once, in batches of {@value #LISTED_AT_A_TIME} listed objects; returns how many were
     * listed. The first error is thrown once its batch is done (the rest of it cancelled).
     */
    private long checkListed(String prefix, Check check) throws IOException {
        long listedCount = 0;
        List<Bucket.Listed> batch = new ArrayList<>(LISTED_AT_A_TIME);
        try (var listing = bucket.listSharded(prefix)) {
            for (var it = listing.iterator(); it.hasNext(); ) {
                batch.add(it.next());
                listedCount++;
                if (batch.size() == LISTED_AT_A_TIME || !it.hasNext()) {
                    ParallelLookups.map(batch, OBJECTS_IN_FLIGHT, listed -> {
                        check.check(listed);
                        return Boolean.TRUE;
                    }, "verifying " + bucket.location().display() + prefix);
                    batch.clear();
                }
            }
        }
        return listedCount;
    }

    /** A Directory's entry naming a subdirectory, checked once every Directory was read. */
    private record Subdirectory(B3Digest parent, Name name, DirectoryNode node) {
    }

    private static String where(B3Digest directory, Name entry) {
        return "directory " + directory + " entry '" + entry + "'";
    }

    private static void checkFile(String where, FileNode f, Map<B3Digest, Long> goodBlobs, Map<B3Digest, Long> goodChunks,
            Consumer<String> problem) {
        Long size = goodBlobs.get(f.digest());
        if (size == null) {
            size = goodChunks.get(f.digest()); // a blob of one chunk is that chunk
        }
        if (size == null) {
            problem.accept(where + ": blob " + f.digest() + " missing or corrupted");
        } else if (size != f.size()) {
            problem.accept(where + ": blob " + f.digest() + " is " + size + " bytes but the entry says " + f.size());
        }
    }

    /** The blob's size if it re-hashes to its digest through its chunks, else -1 (each problem reported). */
    private long verifyBlob(B3Digest blob, Map<B3Digest, Long> goodChunks, Set<B3Digest> badChunks, Consumer<String> problem)
            throws IOException {
        List<ChunkMeta> chunks;
        try {
            chunks = blobs.chunks(blob).orElse(null);
        } catch (CorruptedDataException e) {
            problem.accept(e.getMessage());
            return -1;
        }
        if (chunks == null) {
            return -1; // deleted since listed
        }
        Blake3.Hasher hasher = Blake3.newHasher();
        long size = 0;
        for (ChunkMeta chunk : chunks) {
            if (badChunks.contains(chunk.digest())) {
                problem.accept("blob " + blob + ": chunk " + chunk.digest() + " is corrupted");
                return -1;
            }
            try {
                byte[] data = blobs.readChunk(chunk, blob);
                hasher.update(data, 0, data.length);
                goodChunks.put(chunk.digest(), chunk.size());
                size += chunk.size();
            } catch (CorruptedDataException | castore.service.NotFoundException e) {
                if (e instanceof CorruptedDataException) {
                    badChunks.add(chunk.digest());
                }
                problem.accept(e.getMessage());
                return -1;
            }
        }
        if (!hasher.digest().equals(blob)) {
            problem.accept("blob " + blob + ": its chunks do not hash to the blob digest");
            return -1;
        }
        return size;
    }

    @Override
    public SweepResult sweep(Set<B3Digest> liveBlobs, Set<B3Digest> liveDirectories) throws IOException {
        try {
            return sweepUnchecked(liveBlobs, liveDirectories);
        } catch (UncheckedIOException e) {
            throw e.getCause(); // a failed listing
        }
    }

    private SweepResult sweepUnchecked(Set<B3Digest> liveBlobs, Set<B3Digest> liveDirectories) throws IOException {
        Deletions garbage = new Deletions();
        try (var listing = bucket.listSharded(Keys.DIRECTORIES)) {
            for (var listed : (Iterable<Bucket.Listed>) listing::iterator) {
                var digest = Keys.digestOf(Keys.DIRECTORIES, listed.key());
                if (digest.isPresent() && !liveDirectories.contains(digest.get())) {
                    garbage.add(listed);
                }
            }
        }
        Set<B3Digest> liveChunks = new HashSet<>(liveBlobs);
        List<B3Digest> liveLists = new ArrayList<>(LISTED_AT_A_TIME);
        try (var listing = bucket.listSharded(Keys.BLOBS)) {
            for (var it = listing.iterator(); it.hasNext(); ) {
                var listed = it.next();
                var digest = Keys.digestOf(Keys.BLOBS, listed.key());
                if (digest.isPresent() && liveBlobs.contains(digest.get())) {
                    liveLists.add(digest.get());
                } else if (digest.isPresent()) {
                    garbage.add(listed);
                }
                if (liveLists.size() == LISTED_AT_A_TIME || !it.hasNext() && !liveLists.isEmpty()) {
                    readChunkLists(liveLists).forEach(list -> list.forEach(c -> liveChunks.add(c.digest())));
                    liveLists.clear();
                }
            }
        }
        try (var listing = bucket.listSharded(Keys.CHUNKS)) {
            for (var listed : (Iterable<Bucket.Listed>) listing::iterator) {
                var digest = Keys.digestOf(Keys.CHUNKS, listed.key());
                if (digest.isPresent() && !liveChunks.contains(digest.get())) {
                    garbage.add(listed);
                }
            }
        }
        Instant locked = lockedAt; // leases stale when gc began are stale now (server times both)
        if (locked != null) { // else no lock of ours to date the leases by
            try (var listing = bucket.list(Keys.LEASES)) {
                for (var listed : (Iterable<Bucket.Listed>) listing::iterator) {
                    if (Duration.between(listed.lastModified(), locked).compareTo(WriteLease.STALE_FOR_GC) >= 0) {
                        bucket.delete(listed.key(), null); // left by a crashed writer; not counted as garbage
                    }
                }
            }
        }
        garbage.flush();
        return new SweepResult(garbage.removed, garbage.freed);
    }

    /** The chunk lists of live blobs, {@value #OBJECTS_IN_FLIGHT} read at once; a corrupted one stops gc. */
    private List<List<ChunkMeta>> readChunkLists(List<B3Digest> live) throws IOException {
        return ParallelLookups.map(live, OBJECTS_IN_FLIGHT, blob -> {
            try {
                return blobs.chunks(blob).orElse(List.of());
            } catch (CorruptedDataException e) {
                // Keep whatever it might refer to; verify reports it.
                throw new CorruptedDataException(e.getMessage() + "; gc stopped, run verify");
            }
        }, "reading the chunk lists of " + bucket.location().display());
    }

    /**
     * Objects a sweep deletes, {@value #OBJECTS_IN_FLIGHT} at once in batches of
     * {@value #LISTED_AT_A_TIME}: one DELETE is a round trip, and a gc of a large tree deletes
     * tens of thousands. (S3's DeleteObjects would take 1,000 per request, but it needs a checksum
     * header that not every S3-compatible server understands.)
     */
    private final class Deletions {
        private final List<Bucket.Listed> batch = new ArrayList<>(LISTED_AT_A_TIME);
        private long removed;
        private long freed;

        void add(Bucket.Listed listed) throws IOException {
            batch.add(listed);
            if (batch.size() == LISTED_AT_A_TIME) {
                flush();
            }
        }

        void flush() throws IOException {
            ParallelLookups.map(batch, OBJECTS_IN_FLIGHT, listed -> bucket.delete(listed.key(), null),
                    "deleting garbage from " + bucket.location().display());
            for (Bucket.Listed listed : batch) {
                removed++;
                freed += listed.size();
            }
            batch.clear();
        }
    }

    /** For tests: the bucket it lists. */
    Bucket bucket() {
        return bucket;
    }

    @Override
    public void close() {
        // Nothing of its own: the shared client is closed with the store.
    }
}
